//! Never destroy, never leak: overlapping layouts, vanished and replaced roots,
//! symlink swaps, a second daemon, the daemon's own files, and who may choose what
//! is read and written. Each test asserts on the filesystem: what must still
//! exist, what must not have been written.

mod layout;
mod own_files;
mod planted;
mod roots;
mod swapped_source;

use std::fs;
use std::path::Path;
use std::time::Duration;

use inosync_tests::{Daemon, poll_until};

/// Mounts are the library's (a tmpfs, a bind mount), unmounted on drop.
pub(crate) use inosync_tests::Mount;

pub(super) fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |entries| entries.count())
}

pub(super) fn target_state(daemon: &Daemon) -> String {
    daemon.status()["watches"][0]["targets"][0]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub(super) fn poll_state(daemon: &Daemon, wanted: &str) {
    let reached = poll_until(Duration::from_secs(20), || target_state(daemon) == wanted);
    assert!(
        reached,
        "state never became {wanted:?}: {}\n--- daemon log ---\n{}",
        daemon.status(),
        daemon.log()
    );
}

pub(super) fn s(path: &Path) -> String {
    path.display().to_string()
}
