//! Moves: carried by the batch to be renamed on the target, with the paths that
//! changed below them following them to their new name.

use super::fake::{failed, synced};
use super::{Harness, Spec, paths};
use crate::watcher::Change;

fn moved(from: &str, to: &str, implied: &[&str]) -> Change {
    Change::Move {
        watch: 0,
        from: from.as_bytes().to_vec(),
        to: to.as_bytes().to_vec(),
        implied: implied.iter().map(|p| p.as_bytes().to_vec()).collect(),
    }
}

fn moves(h: &Harness, run: usize) -> Vec<(String, String)> {
    h.job(run)
        .moves
        .iter()
        .map(|m| {
            (
                String::from_utf8_lossy(&m.from).into_owned(),
                String::from_utf8_lossy(&m.to).into_owned(),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_move_is_carried_by_the_batch_and_what_lies_below_is_not_listed() {
    let h = Harness::start(Spec {
        files: &["b/big", "b/changed", "b/new"],
        ..Spec::default()
    })
    .await;
    h.pause(true).await;
    h.change(0, "a/changed").await;
    h.inject(vec![moved("a", "b", &["b/big", "b/changed"])])
        .await;
    h.change(0, "b/new").await;
    h.pause(false).await;
    assert_eq!(moves(&h, 0), [("a".to_string(), "b".to_string())]);
    // The change made before the move follows it (its old place stays listed:
    // gone, it is only a deletion, a no-op after the rename); the moved files
    // are not sent.
    assert_eq!(
        paths(&h.job(0)),
        Some(vec!["a".into(), "b/changed".into(), "b/new".into()])
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_turns_its_moves_into_transfers() {
    let h = Harness::start(Spec {
        files: &["b/f"],
        ..Spec::default()
    })
    .await;
    h.pause(true).await;
    h.inject(vec![moved("a", "b", &["b/f"])]).await;
    h.pause(false).await;
    h.finish(0, failed(10)).await;
    h.advance(std::time::Duration::from_secs(2)).await;
    assert!(h.job(1).moves.is_empty());
    assert_eq!(
        paths(&h.job(1)),
        Some(vec!["a".into(), "b".into(), "b/f".into()])
    );
}

#[tokio::test(start_paused = true)]
async fn a_move_while_a_batch_below_it_runs_sends_those_paths_again() {
    let h = Harness::start(Spec {
        files: &["b/x"],
        ..Spec::default()
    })
    .await;
    h.change(0, "a/x").await;
    // "a/x" is in flight when "a" becomes "b": whether it reached the target
    // before the rename there is unknown, so "b/x" goes in the next batch.
    h.inject(vec![moved("a", "b", &["b/x"])]).await;
    h.finish(0, synced()).await;
    assert_eq!(moves(&h, 1), [("a".to_string(), "b".to_string())]);
    assert_eq!(paths(&h.job(1)), Some(vec!["b/x".into()]));
}

/// `RENAME_EXCHANGE` seen as two moves, each the reverse of the other, while a
/// full sync runs (so neither is renamed on the target): both places must be
/// compared whole afterwards. The second move used to carry the first one's
/// tree back, leaving one place uncompared (convergence soak, inotify seed 43).
#[tokio::test(start_paused = true)]
async fn two_moves_that_swap_two_places_during_a_full_sync_compare_both() {
    let h = Harness::start(Spec {
        files: &["x/f", "y/g"],
        ..Spec::default()
    })
    .await;
    h.sync_now().await;
    assert!(h.job(0).paths.is_none(), "a full sync runs");
    h.inject(vec![moved("x", "y", &["y/g"]), moved("y", "x", &["x/f"])])
        .await;
    h.finish(0, synced()).await;
    let trees: Vec<String> = h
        .job(1)
        .trees
        .iter()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    assert_eq!(trees, ["x", "y"]);
}
