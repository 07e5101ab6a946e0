//! Never destroy, never leak: overlapping layouts, vanished and replaced roots,
//! symlink swaps, a second daemon, the daemon's own files, and who may choose what
//! is read and written. Each test asserts on the filesystem: what must still
//! exist, what must not have been written.

mod layout;
mod own_files;
mod roots;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use inosync_tests::{Daemon, poll_until, run_ok};

/// A mount made by a test, lazily unmounted when dropped (so a failed test does
/// not leave it behind).
pub(super) struct Mount(PathBuf);

impl Mount {
    pub(super) fn tmpfs(at: &Path) -> Mount {
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "inosync-test"])
                .arg(at),
        );
        Mount(at.to_path_buf())
    }

    pub(super) fn bind(from: &Path, at: &Path) -> Mount {
        run_ok(Command::new("mount").arg("--bind").arg(from).arg(at));
        Mount(at.to_path_buf())
    }

    /// A mount the test made itself, to be unmounted on drop.
    pub(super) fn adopt(at: &Path) -> Mount {
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

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
