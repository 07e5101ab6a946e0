//! A daemon whose user has no inotify instance left (`fs.inotify.max_user_instances`
//! used up by other programs, common on hosts running many containers as
//! root): it refused to start at all, even as root where fanotify watches
//! every tree (found while a black-box tester had lowered the limit).

use std::io;

use super::*;

fn without_instance() -> InotifyWatcher {
    InotifyWatcher::with_instance(
        EventSet::default(),
        Err(io::Error::from_raw_os_error(libc::EMFILE)),
    )
}

#[test]
fn fanotify_watches_a_tree_without_an_inotify_instance() {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let mut watcher = Watcher::with_inotify(EventSet::default(), Backend::Auto, without_instance())
        .expect("a watcher without inotify");
    watcher
        .add_root(0, &root, ExcludeSet::new(&[]).unwrap())
        .expect("watched by fanotify");
    std::fs::write(root.join("f"), "x").unwrap();
    let mut changes = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while changes.is_empty() && std::time::Instant::now() < deadline {
        watcher.read_queued(&mut changes).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!changes.is_empty(), "the write was not seen");
}

#[test]
fn a_tree_that_needs_inotify_is_refused_saying_why() {
    let refused = Watcher::with_inotify(EventSet::default(), Backend::Inotify, without_instance())
        .err()
        .expect("backend = inotify without an instance");
    assert!(
        refused.to_string().contains("max_user_instances"),
        "{refused}"
    );
}
