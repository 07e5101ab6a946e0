//! `add` and `reload` in the engine: a tree added at runtime gets its full
//! sync; an overlapping one is refused; a reload brings new watches and
//! leaves unchanged ones (and their pending changes) alone; a reload without a
//! config file says so and changes nothing.

use std::time::Duration;

use inosync_proto::AddWatch;

use super::super::Command;
use super::{Harness, Spec, paths, watch_toml};

/// `add` of `path` with `target` as the destination itself.
async fn add(h: &Harness, path: &std::path::Path, target: &std::path::Path) -> Result<(), String> {
    let watch = AddWatch {
        path: path.display().to_string(),
        remote_path: None,
        targets: vec![format!("{}/", target.display())],
        excludes: Vec::new(),
        delay: None,
        speed: None,
    };
    let answer = h.ask(|reply| Command::Add { watch, reply }).await;
    h.settle().await;
    answer.map(|_| ())
}

async fn reload(h: &Harness) -> Result<String, String> {
    let answer = h.ask(|reply| Command::Reload { reply: Some(reply) }).await;
    h.settle().await;
    answer
}

#[tokio::test(start_paused = true)]
async fn a_tree_added_at_runtime_gets_a_full_sync_to_its_target() {
    let h = Harness::start(Spec::default()).await;
    let tree = h.dir.path().join("blog");
    std::fs::create_dir(&tree).expect("mkdir");
    add(&h, &tree, &h.dir.path().join("blog-mirror"))
        .await
        .expect("added");
    assert_eq!(h.started(), 1);
    assert!(h.job(0).source.ends_with("blog"), "{:?}", h.job(0).source);
    assert_eq!(paths(&h.job(0)), None, "not a full sync");
    assert_eq!(h.status().await.watches.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_tree_inside_a_watched_one_is_refused() {
    let h = Harness::start(Spec::default()).await;
    let inner = h.root(0).join("inner");
    std::fs::create_dir(&inner).expect("mkdir");
    let refused = add(&h, &inner, &h.dir.path().join("elsewhere")).await;
    assert!(refused.is_err(), "{refused:?}");
    // (The mkdir itself is a change of watch 0, seen by its inotify watch.)
    for run in 0..h.started() {
        assert_eq!(h.job(run).source, h.root(0), "a run for the refused tree");
    }
    assert_eq!(h.status().await.watches.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reload_adds_new_watches_and_leaves_unchanged_ones_alone() {
    let h = Harness::start(Spec {
        delay: 10.0,
        config_file: true,
        ..Spec::default()
    })
    .await;
    h.change(0, "a").await;
    let extra = h.dir.path().join("extra");
    std::fs::create_dir(&extra).expect("mkdir");
    let file = h.dir.path().join("inosync.toml");
    let mut text = std::fs::read_to_string(&file).expect("config");
    text.push_str(&watch_toml(
        &extra.canonicalize().expect("canonical"),
        &[format!("{}/", h.dir.path().join("extra-mirror").display())],
    ));
    std::fs::write(&file, text).expect("rewrite config");
    reload(&h).await.expect("reloaded");
    assert_eq!(
        h.started(),
        1,
        "the new watch's full sync, and nothing else"
    );
    assert!(h.job(0).source.ends_with("extra"), "{:?}", h.job(0).source);
    assert_eq!(paths(&h.job(0)), None);
    // The unchanged watch kept its pending change and its delay: no resync.
    h.advance(Duration::from_secs(10)).await;
    assert_eq!(h.started(), 2);
    assert_eq!(paths(&h.job(1)), Some(vec!["a".to_string()]));
}

#[tokio::test(start_paused = true)]
async fn a_reload_without_a_config_file_says_so_and_changes_nothing() {
    let h = Harness::start(Spec::default()).await;
    let answer = reload(&h).await;
    assert!(
        answer.as_ref().is_err_and(|e| e.contains("config file")),
        "{answer:?}"
    );
    h.change(0, "a").await;
    assert_eq!(paths(&h.job(0)), Some(vec!["a".to_string()]));
}

/// A reload that makes full syncs delete (`delete = false` to `true`) gives
/// every pair of the watch a full sync: what the source lacks goes from the
/// target now, not at some later full sync, and the reply counts the watch
/// as changed (before: "0 changed", and the mirror kept the files deleted
/// under the old mode while `wait` said idle; found by a black-box attack).
#[tokio::test(start_paused = true)]
async fn a_reload_that_makes_full_syncs_delete_gives_a_full_sync() {
    let h = Harness::start(Spec {
        delete: crate::config::DeleteMode::Never,
        config_file: true,
        ..Spec::default()
    })
    .await;
    // The config file says nothing of `delete`: the default, `true`.
    let answer = reload(&h).await.expect("reloaded");
    assert!(answer.contains("1 changed"), "{answer}");
    assert_eq!(h.started(), 1, "no full sync after `delete` became true");
    assert_eq!(paths(&h.job(0)), None, "not a full sync");
    assert!(!h.job(0).keep_deleted, "the full sync deletes nothing");
}

/// `add` of a watch still being removed (its last changes not synced yet)
/// says so and what to do (it said "watch X is the same directory as watch
/// X"; found by a black-box attack).
#[tokio::test(start_paused = true)]
async fn adding_a_watch_still_being_removed_says_so() {
    let h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    let root = h.root(0);
    let (reply, _answer) = tokio::sync::oneshot::channel();
    h.commands
        .send(Command::Remove {
            path: root.display().to_string(),
            discard: false,
            deadline: tokio::time::Instant::now() + Duration::from_secs(600),
            reply,
        })
        .await
        .expect("engine alive");
    h.settle().await;
    let refused = add(&h, &root, &h.dir.path().join("elsewhere"))
        .await
        .expect_err("added twice");
    assert!(refused.contains("still being removed"), "{refused}");
    assert!(refused.contains("--discard"), "{refused}");
}
