//! A daemon killed (the OOM killer, a crash) leaves the rsync processes it
//! started running: each has its own process group. One that is still sending
//! an old version when the restarted daemon has mirrored the new one puts the
//! old version back after it, and nothing tells the daemon. A restart stops
//! them first.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use inosync_tests::processes::{self, child_groups};
use inosync_tests::{Fixture, assert_trees_equal, poll_until};

/// Whether any process is left in group `pgrp`.
fn group_alive(pgrp: u32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the group exists.
    unsafe { libc::kill(-(pgrp as i32), 0) == 0 }
}

#[test]
fn a_restart_stops_the_transfers_a_killed_daemon_left_running() {
    let fx = Fixture::new();
    // 8 MB at 500 KB/s: the transfer takes 16 s.
    let mut daemon = fx.start_toml(&fx.simple_config("speed = 500"));
    daemon.wait_idle();
    fs::write(fx.src.join("big"), vec![b'1'; 8_000_000]).unwrap();
    let sending = poll_until(Duration::from_secs(10), || {
        !child_groups(daemon.pid()).is_empty()
    });
    assert!(sending, "no transfer started: {}", daemon.log());
    let left = child_groups(daemon.pid());
    daemon.kill();
    assert!(
        left.iter().any(|g| group_alive(*g)),
        "the transfer died with the daemon"
    );
    fs::write(fx.src.join("big"), "version 2").unwrap();
    let daemon = fx.restart_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let deadline = Instant::now() + Duration::from_secs(5);
    while left.iter().any(|g| group_alive(*g)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let alive: Vec<u32> = left.iter().copied().filter(|g| group_alive(*g)).collect();
    assert!(
        alive.is_empty(),
        "process group(s) {alive:?} of the killed daemon still run after the restart: {}",
        daemon.log()
    );
    assert_eq!(fs::read(fx.dst.join("big")).unwrap(), b"version 2");
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// The process the daemon started (here a wrapper script, as `rsync = ` may
/// name) dies while the rsync it ran goes on: the run has ended for the
/// daemon, which retries it, so that rsync must not go on writing beside the
/// retry. What is left of a run's process group is stopped when the run ends.
#[test]
fn what_a_run_leaves_of_its_process_group_is_stopped() {
    let fx = Fixture::new();
    let wrapper = fx.path("wrapping-rsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n'{}' \"$@\"\n",
            inosync_tests::real_rsync().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let config = fx.simple_config(&format!("speed = 500\nrsync = \"{}\"", wrapper.display()));
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    fs::write(fx.src.join("big"), vec![b'1'; 8_000_000]).unwrap();
    let sending = poll_until(Duration::from_secs(10), || {
        child_groups(daemon.pid()).iter().any(|g| {
            processes::all()
                .iter()
                .any(|p| p.pgrp == *g && p.pid != *g && p.cmdline.contains("rsync"))
        })
    });
    assert!(sending, "no transfer started: {}", daemon.log());
    let runs = child_groups(daemon.pid());
    // The wrapper alone: the rsync it started is left without it.
    for group in &runs {
        processes::signal(*group, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs.iter().any(|g| group_alive(*g)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let alive: Vec<u32> = runs.iter().copied().filter(|g| group_alive(*g)).collect();
    assert!(
        alive.is_empty(),
        "the rsync of a run that ended still runs in group(s) {alive:?}: {}",
        daemon.log()
    );
    daemon.ctl_ok(&["speed", "0"]);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}
