//! Nothing escapes the watcher: every kind of change a filesystem can make, on
//! either backend, reaches the mirror, or the daemon says why it cannot (see
//! docs/RELIABILITY.md, "Every kind of change"). Each test runs under both
//! backends (the suite runs twice; `INOSYNC_TEST_BACKEND`).

mod gone_names;
mod hard_links;
mod identity;
mod long_paths;
mod mounts;
mod new_directories;
mod own_writes;
mod specials;
mod unclosed_writes;

use inosync_tests::Daemon;
use inosync_tests::processes::signal;

/// Runs `ops` while the daemon is stopped (SIGSTOP), then lets it read them
/// all at once: the order the kernel queued them in is all it has.
fn while_stopped(daemon: &Daemon, ops: impl FnOnce()) {
    signal(daemon.pid(), libc::SIGSTOP);
    ops();
    signal(daemon.pid(), libc::SIGCONT);
    daemon.wait_idle();
}

/// Whether the daemon watches its first tree with fanotify.
fn on_fanotify(daemon: &Daemon) -> bool {
    daemon.status()["watches"][0]["backend"] == "fanotify"
}
