//! Remote targets failing mid-transfer, each fault of the soak on its own: the
//! `rsync://` server killed with its transfers, sshd down with its sessions,
//! ssh's shared connection killed, the ssh under rsync killed. Each time a
//! 40 MB file is on its way (rsync at 10 MB/s, the watch paused meanwhile so
//! no retry starts); during the fault the target keeps the old version,
//! whole; once it heals, the new version arrives and the target holds
//! nothing else (no temp file, no partial directory).

use std::fs;
use std::path::Path;
use std::time::Duration;

use inosync_tests::processes::{self, control_masters, signal};
use inosync_tests::remote::{RsyncDaemon, Sshd};
use inosync_tests::versions::{is_version, temp_file, write_version};
use inosync_tests::{Daemon, Fixture, compare_trees, poll_until, run_ok};

const MIB: usize = 40;
/// How far the transfer gets before the fault.
const MID_WAY: u64 = 8 << 20;

/// `big` in version 1 in the source and already on the target (copied with
/// its mtime: nothing to do at start), and the target directory.
fn tree_with_old_version(fx: &Fixture) -> std::path::PathBuf {
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    write_version(&fx.src.join("big"), 1, MIB);
    run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(fx.src.join("big"))
            .arg(&remote),
    );
    remote
}

/// Puts version 2 in place (written beside the tree, moved in), waits until
/// the target's receiver has written part of it, and pauses the watch (the
/// running transfer goes on; nothing starts again until `converges`).
fn new_version_half_sent(fx: &Fixture, daemon: &Daemon, remote: &Path) {
    let staged = fx.path("staged");
    write_version(&staged, 2, MIB);
    fs::rename(&staged, fx.src.join("big")).unwrap();
    let half = poll_until(Duration::from_secs(60), || {
        temp_file(remote, "big").is_some_and(|(_, len)| len >= MID_WAY)
    });
    assert!(half, "the transfer never got going\n{}", daemon.log());
    daemon.ctl_ok(&["pause"]);
}

/// During the fault: the target's `big` is still version 1.
fn old_version_kept(remote: &Path, daemon: &Daemon, fault: &str) {
    assert!(
        processes::wait_for_writers_gone(remote),
        "{fault}: rsync still writes"
    );
    if let Err(e) = is_version(&remote.join("big"), 1, MIB) {
        panic!(
            "{fault}: the target's big is not the old version: {e}\n{}",
            daemon.log()
        );
    }
}

/// After the heal: version 2 arrives, and the target is exactly the source.
fn converges(fx: &Fixture, remote: &Path, daemon: &Daemon, fault: &str) {
    daemon.ctl_ok(&["speed", "0"]);
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    is_version(&remote.join("big"), 2, MIB).unwrap_or_else(|e| panic!("{fault}: {e}"));
    if let Err(diff) = compare_trees(&fx.src, remote) {
        panic!("{fault}: {diff}\n{}", daemon.log());
    }
}

#[test]
fn an_rsync_daemon_killed_mid_transfer_then_back_keeps_the_old_file_and_converges() {
    let fx = Fixture::new();
    let remote = tree_with_old_version(&fx);
    let mut rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
    let config = format!(
        "delay = 0\nspeed = 10000\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}\"]\n",
        fx.src.display(),
        rsyncd.url()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    new_version_half_sent(&fx, &daemon, &remote);
    // Killed with its receiver: nothing of rsync cleans up on the target.
    rsyncd.stop();
    old_version_kept(&remote, &daemon, "rsync:// down");
    assert!(
        temp_file(&remote, "big").is_some(),
        "the receiver's temp file"
    );
    let failed = poll_until(Duration::from_secs(30), || {
        daemon.status()["watches"][0]["targets"][0]["failures"]
            .as_u64()
            .is_some_and(|f| f > 0)
    });
    assert!(failed, "{}", daemon.status());
    rsyncd.restart();
    converges(&fx, &remote, &daemon, "rsync:// down");
}

/// An ssh target's daemon (the local rsync and its ssh run on at 10 MB/s).
fn ssh_target(fx: &Fixture, sshd: &Sshd, remote: &Path) -> Daemon {
    let daemon = fx.start_toml(&sshd.config("delay = 0\nspeed = 10000", &fx.src, remote));
    daemon.wait_idle();
    daemon
}

#[test]
fn sshd_down_mid_transfer_then_back_keeps_the_old_file_and_converges() {
    let fx = Fixture::new();
    let remote = tree_with_old_version(&fx);
    let mut sshd = Sshd::start(fx.dir.path());
    let daemon = ssh_target(&fx, &sshd, &remote);
    new_version_half_sent(&fx, &daemon, &remote);
    // The host goes down: sshd, its sessions and the receiver, with SIGKILL.
    sshd.stop();
    old_version_kept(&remote, &daemon, "sshd down");
    let failed = poll_until(Duration::from_secs(30), || {
        daemon.status()["watches"][0]["targets"][0]["failures"]
            .as_u64()
            .is_some_and(|f| f > 0)
    });
    assert!(failed, "{}", daemon.status());
    sshd.restart();
    converges(&fx, &remote, &daemon, "sshd down");
}

#[test]
fn a_killed_ssh_control_master_mid_transfer_keeps_the_old_file_and_converges() {
    let fx = Fixture::new();
    let remote = tree_with_old_version(&fx);
    let sshd = Sshd::start(fx.dir.path());
    let daemon = ssh_target(&fx, &sshd, &remote);
    new_version_half_sent(&fx, &daemon, &remote);
    let masters = control_masters(&fx.dir.path().join("ssh"));
    assert_eq!(masters.len(), 1, "one shared connection: {masters:?}");
    signal(masters[0].pid, libc::SIGKILL);
    // The connection is gone: the receiver puts its part away, the file stays.
    old_version_kept(&remote, &daemon, "ControlMaster killed");
    converges(&fx, &remote, &daemon, "ControlMaster killed");
}

#[test]
fn a_killed_ssh_under_rsync_keeps_the_old_file_and_converges() {
    let fx = Fixture::new();
    let remote = tree_with_old_version(&fx);
    let sshd = Sshd::start(fx.dir.path());
    let daemon = ssh_target(&fx, &sshd, &remote);
    new_version_half_sent(&fx, &daemon, &remote);
    let ssh: Vec<_> = processes::descendants(daemon.pid())
        .into_iter()
        .filter(|p| p.cmdline.starts_with("ssh ") && p.ppid != daemon.pid())
        .collect();
    assert!(!ssh.is_empty(), "no ssh under rsync");
    for p in ssh {
        signal(p.pid, libc::SIGKILL);
    }
    old_version_kept(&remote, &daemon, "ssh killed");
    converges(&fx, &remote, &daemon, "ssh killed");
}
