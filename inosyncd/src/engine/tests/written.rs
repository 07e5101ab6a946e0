//! Files written and not closed, and directories compared as whole trees.

use std::time::Duration;

use super::fake::{failed, synced};
use super::{Harness, Spec, paths};
use crate::engine::settle::{LONGEST, QUIET};
use crate::watcher::Change;

const MS: Duration = Duration::from_millis(1);

fn written(rel: &str) -> Change {
    Change::Written {
        watch: 0,
        rel: rel.as_bytes().to_vec(),
        linked: false,
    }
}

fn tree(rel: &str) -> Change {
    Change::Tree {
        watch: 0,
        rel: rel.as_bytes().to_vec(),
    }
}

fn trees(h: &Harness, run: usize) -> Vec<String> {
    h.job(run)
        .trees
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_written_file_goes_out_once_quiet_and_counts_as_pending_until_then() {
    let h = Harness::start(Spec::default()).await;
    h.inject(vec![written("log")]).await;
    h.advance(QUIET / 2).await;
    h.inject(vec![written("log")]).await;
    assert!(
        h.status().await.watches[0].pending > 0,
        "a settling file is pending"
    );
    h.advance(QUIET - MS).await;
    assert_eq!(h.started(), 0, "sent while still being written");
    h.advance(MS * 2).await;
    assert_eq!(h.started(), 1);
    assert_eq!(paths(&h.job(0)), Some(vec!["log".into()]));
}

#[tokio::test(start_paused = true)]
async fn a_close_sends_at_once_and_a_file_never_quiet_goes_out_after_the_longest_wait() {
    let h = Harness::start(Spec::default()).await;
    h.inject(vec![written("closed")]).await;
    h.change(0, "closed").await;
    assert_eq!(h.started(), 1, "a close is an ordinary change");
    h.finish(0, synced()).await;
    // Written every 100 ms, never quiet.
    let mut elapsed = Duration::ZERO;
    while elapsed < LONGEST - MS * 100 {
        h.inject(vec![written("busy")]).await;
        h.advance(MS * 100).await;
        elapsed += MS * 100;
    }
    assert_eq!(h.started(), 1, "sent on a write");
    h.inject(vec![written("busy")]).await;
    h.advance(MS * 200).await;
    assert_eq!(h.started(), 2);
    assert_eq!(paths(&h.job(1)), Some(vec!["busy".into()]));
}

#[tokio::test(start_paused = true)]
async fn a_tree_is_listed_and_carried_and_follows_a_move_and_a_failure() {
    let h = Harness::start(Spec {
        files: &["d/f"],
        ..Spec::default()
    })
    .await;
    h.pause(true).await;
    h.inject(vec![tree("a/old")]).await;
    h.inject(vec![Change::Move {
        watch: 0,
        from: b"a".to_vec(),
        to: b"d".to_vec(),
        implied: vec![b"d/f".to_vec()],
    }])
    .await;
    h.pause(false).await;
    // The tree follows the move, and stays where it was (gone, it is only a
    // deletion there; should the move have been half of an exchange, whatever
    // took its place is covered).
    assert_eq!(trees(&h, 0), ["a/old", "d/old"]);
    assert!(paths(&h.job(0)).is_some_and(|p| p.contains(&"d/old".to_string())));
    h.finish(0, failed(10)).await;
    h.advance(Duration::from_secs(2)).await;
    // A failed batch keeps its trees, and its move's new and old places are
    // compared whole (it was not renamed on the target, and the old name may
    // be made again).
    assert_eq!(trees(&h, 1), ["a", "a/old", "d", "d/old"]);
}

/// A file still being written when it (or its directory) is renamed goes out
/// under its new name once quiet: it settled under its old name, which the
/// rename replayed on the target made a no-op, and the target kept the copy it
/// had before the writes (the renamed tree's size-and-time check misses a
/// same-size rewrite).
#[tokio::test(start_paused = true)]
async fn a_file_renamed_while_being_written_goes_out_under_its_new_name() {
    let h = Harness::start(Spec {
        files: &["archive/logs/db", "app.log.1"],
        ..Spec::default()
    })
    .await;
    h.pause(true).await;
    h.inject(vec![written("logs/db"), written("app.log")]).await;
    let moved = |from: &str, to: &str| Change::Move {
        watch: 0,
        from: from.as_bytes().to_vec(),
        to: to.as_bytes().to_vec(),
        implied: Vec::new(),
    };
    h.inject(vec![
        moved("logs", "archive/logs"),
        moved("app.log", "app.log.1"),
    ])
    .await;
    h.advance(QUIET + MS).await;
    h.pause(false).await;
    let listed = paths(&h.job(0)).unwrap_or_default();
    for new_name in ["archive/logs/db", "app.log.1"] {
        assert!(
            listed.iter().any(|p| p == new_name),
            "{new_name} not listed: {listed:?}"
        );
    }
}
