//! Faults of the mirror host itself, each fault of the soak on its own: the
//! local target's filesystem full, then grown; the daemon stopped (SIGSTOP)
//! for seconds while a transfer runs and the tree changes.

use std::fs;
use std::time::Duration;

use inosync_tests::processes::signal;
use inosync_tests::versions::{is_version, temp_file, write_version};
use inosync_tests::{Fixture, Mount, assert_trees_equal, compare_trees, poll_until};

/// A target filesystem that fills up: the run fails with "No space left on
/// device" in `last_error` and is retried with backoff, the mirror shows no
/// part of the file that did not fit, and once the filesystem is grown
/// everything arrives by itself.
#[test]
fn a_full_target_filesystem_then_grown_gets_everything() {
    let fx = Fixture::new();
    let disk = Mount::tmpfs_sized(&fx.dst, "1m");
    let daemon = fx.start_toml(&fx.simple_config(""));
    for i in 0..20 {
        fs::write(fx.src.join(format!("small{i}")), format!("{i}")).unwrap();
    }
    daemon.wait_idle();
    // A 4 MB file does not fit.
    write_version(&fx.src.join("big"), 1, 4);
    fs::write(fx.src.join("small0"), "changed beside it").unwrap();
    let full = poll_until(Duration::from_secs(30), || {
        daemon.status()["watches"][0]["targets"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device"))
    });
    assert!(full, "{}", daemon.status());
    // What was written of big is not in its place, nor beside it.
    assert!(
        !fx.dst.join("big").exists(),
        "a truncated big on the mirror"
    );
    assert!(temp_file(&fx.dst, "big").is_none(), "rsync's temp file");
    disk.resize("64m").unwrap();
    // Retried by itself (backoff), not by a new change.
    let arrived = poll_until(Duration::from_secs(60), || {
        is_version(&fx.dst.join("big"), 1, 4).is_ok()
    });
    assert!(arrived, "{}", daemon.log());
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A file too big for the target is removed from the source before it ever
/// fitted: what rsync kept of it (its partial file) must not fill the target
/// for good. The next change arrives without growing the filesystem, and an
/// explicit full sync does too (found by a black-box attack: every run failed
/// with "No space left on device" while the partial file of a file that no
/// longer exists took the space, `sync` included).
#[test]
fn the_partial_file_of_a_file_gone_from_the_source_does_not_keep_the_target_full() {
    let fx = Fixture::new();
    let _disk = Mount::tmpfs_sized(&fx.dst, "2m");
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    write_version(&fx.src.join("big"), 1, 3);
    let full = poll_until(Duration::from_secs(30), || {
        daemon.status()["watches"][0]["targets"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device"))
    });
    assert!(full, "{}", daemon.status());
    fs::remove_file(fx.src.join("big")).unwrap();
    fs::write(fx.src.join("small"), "after the big one went").unwrap();
    let arrived = poll_until(Duration::from_secs(30), || {
        fs::read_to_string(fx.dst.join("small")).is_ok_and(|s| s == "after the big one went")
    });
    assert!(arrived, "{}\n{}", daemon.status(), daemon.log());
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// The daemon stopped for 3 s (a stalled machine) while rsync runs and the
/// tree keeps changing: rsync goes on by itself, the changes made meanwhile
/// are read after SIGCONT, and the target converges.
#[test]
fn a_daemon_stopped_for_seconds_mid_transfer_converges() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config("speed = 10000"));
    daemon.wait_idle();
    write_version(&fx.src.join("big"), 1, 20);
    let started = poll_until(Duration::from_secs(30), || {
        temp_file(&fx.dst, "big").is_some()
    });
    assert!(started, "{}", daemon.log());
    signal(daemon.pid(), libc::SIGSTOP);
    for i in 0..50 {
        let dir = fx.src.join(format!("d{}", i % 5));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i}")), format!("while stopped {i}")).unwrap();
    }
    fs::remove_dir_all(fx.src.join("d4")).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let healed = std::time::Instant::now();
    signal(daemon.pid(), libc::SIGCONT);
    daemon.ctl_ok(&["speed", "0"]);
    daemon.wait_idle();
    if let Err(diff) = compare_trees(&fx.src, &fx.dst) {
        panic!("{diff}\n{}", daemon.log());
    }
    eprintln!(
        "stopped 3 s mid-transfer: target equal {:.2?} after SIGCONT",
        healed.elapsed()
    );
}

/// A target filesystem made read-only under a burst: every path's error is
/// the target's ("Read-only file system"), not its own. Each path was held
/// apart and retried on its own backoff, so after the filesystem was made
/// writable again a 5,000-file burst trickled back over five minutes, while
/// `status` said `retrying` with 0 failures and no error (found by a black-box
/// attack). The run fails as a whole: the target's failures and error show
/// what is wrong, and it is retried as a whole.
#[test]
fn a_read_only_target_fails_as_a_whole_and_takes_everything_once_writable() {
    let fx = Fixture::new();
    let disk = Mount::tmpfs(&fx.dst);
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let remount = |how: &str| remount(&disk, how);
    remount("ro");
    for d in 0..4 {
        fs::create_dir(fx.src.join(format!("d{d}"))).unwrap();
        for i in 0..50 {
            fs::write(fx.src.join(format!("d{d}/f{i}")), format!("{d} {i}")).unwrap();
        }
    }
    for i in 0..20 {
        fs::write(fx.src.join(format!("top{i}")), format!("{i}")).unwrap();
    }
    let target = || daemon.status()["watches"][0]["targets"][0].clone();
    let failing = poll_until(Duration::from_secs(30), || {
        let t = target();
        t["failures"].as_u64().is_some_and(|n| n >= 1)
            && t["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("Read-only file system"))
    });
    assert!(failing, "{}\n{}", target(), daemon.log());
    let held = target()["held"].as_array().cloned().unwrap_or_default();
    assert!(
        held.is_empty(),
        "{} path(s) held apart for the target's fault, the first: {}",
        held.len(),
        held[0]
    );
    remount("rw");
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A directory moved while its target fails, its old name made again (`mv g
/// g_mv; mkdir g`): once the target is back, the move is transferred and the
/// old name compared whole. Before, the target kept the old tree's files
/// below the new `g` while `wait` said idle (found by a black-box attack on
/// `rsync://` and local targets, 5 of 5).
#[test]
fn a_move_while_the_target_fails_leaves_nothing_of_the_old_tree() {
    let fx = Fixture::new();
    let disk = Mount::tmpfs(&fx.dst);
    fs::create_dir(fx.src.join("g")).unwrap();
    for i in 0..20 {
        fs::write(fx.src.join(format!("g/f{i}")), format!("{i}")).unwrap();
    }
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let remount = |how: &str| remount(&disk, how);
    let failures_reach = |n: u64| {
        let reached = poll_until(Duration::from_secs(30), || {
            daemon.status()["watches"][0]["targets"][0]["failures"]
                .as_u64()
                .is_some_and(|f| f >= n)
        });
        assert!(reached, "{}", daemon.log());
    };
    remount("ro");
    fs::write(fx.src.join("first"), "fails first").unwrap();
    failures_reach(1);
    fs::rename(fx.src.join("g"), fx.src.join("g_mv")).unwrap();
    fs::create_dir(fx.src.join("g")).unwrap();
    fs::write(fx.src.join("g/fnew"), "new").unwrap();
    failures_reach(2);
    remount("rw");
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// `mount -o remount,HOW` of a test's mount (`ro`, `rw`).
fn remount(disk: &Mount, how: &str) {
    let ok = std::process::Command::new("mount")
        .args(["-o", &format!("remount,{how}")])
        .arg(disk.path())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mount -o remount,{how}");
}
