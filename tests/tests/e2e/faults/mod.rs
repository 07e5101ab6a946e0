//! Faults that must not lose a change: queue overflow, the watch limit, kill -9,
//! SIGTERM with work pending, and symlinks pointing out of the tree; the
//! target's filesystem full and a stopped daemon (`local`); remote targets
//! failing mid-transfer (`remote`). Each fault of the soak (`nemesis`) is here
//! on its own, or in `stopped_transfers` (rsync killed mid-transfer).

mod left_running;
mod local;
mod remote;

use std::fs;
use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inosync_tests::{Fixture, assert_trees_equal, bin, compare_trees, poll_until};

fn signal(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on a process this test started.
    unsafe { libc::kill(pid as i32, sig) };
}

fn write_files(root: &std::path::Path, dirs: usize, per_dir: usize, tag: &str) {
    for d in 0..dirs {
        let dir = root.join(format!("{tag}{d:03}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..per_dir {
            fs::write(dir.join(format!("f{f:03}")), format!("{tag} {d} {f}")).unwrap();
        }
    }
}

/// Overflow: with the daemon stopped, more events than `max_queued_events` pile up;
/// after SIGCONT it rescans, syncs everything and the target converges. (fanotify's
/// queue is unbounded: nothing overflows, and every event is still read.)
#[test]
fn queue_overflow_leads_to_a_full_sync_not_a_loss() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    // Watched directories first: events are only queued for directories with a watch.
    write_files(&fx.src, 50, 0, "o");
    daemon.wait_idle();
    let queued: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384);
    signal(daemon.pid(), libc::SIGSTOP);
    // Each file makes at least two events (create, close-write).
    let files = queued / 2 + 2000;
    write_files(&fx.src, 50, files / 50 + 1, "o");
    signal(daemon.pid(), libc::SIGCONT);
    let resumed = Instant::now();
    daemon.wait_idle();
    let on_fanotify = daemon.status()["watches"][0]["backend"] == "fanotify";
    assert_eq!(
        daemon.log().contains("queue overflow"),
        !on_fanotify,
        "{}",
        daemon.log()
    );
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    eprintln!(
        "overflow: {} files written while stopped (max_queued_events {queued}), target equal {:.2?} after SIGCONT, 0 lost",
        (files / 50 + 1) * 50,
        resumed.elapsed()
    );
    // Directories created during the overflow are watched after the rescan.
    write_files(&fx.src, 3, 2, "new-during-stop");
    signal(daemon.pid(), libc::SIGSTOP);
    write_files(&fx.src, 50, files / 50 + 1, "o");
    signal(daemon.pid(), libc::SIGCONT);
    daemon.wait_idle();
    fs::write(fx.src.join("o049/after"), "after overflow").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// kill -9 in the middle of a 10,000-file burst, then a restart: the initial full
/// sync brings the target to the source; nothing that exists at the source is
/// deleted on the target.
#[test]
fn kill_9_mid_burst_then_restart_converges() {
    let fx = Fixture::new();
    let config = fx.simple_config("");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    write_files(&fx.src, 50, 100, "a");
    signal(daemon.pid(), libc::SIGKILL);
    write_files(&fx.src, 50, 100, "b");
    assert!(!daemon.terminate().success(), "daemon survived kill -9");
    let restarted = Instant::now();
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    eprintln!(
        "kill -9: 10,000 files, target equal {:.2?} after the restart, 0 lost",
        restarted.elapsed()
    );
}

/// SIGTERM with a change held by a long delay: it is synced before the exit, and
/// the socket is removed.
#[test]
fn sigterm_syncs_pending_changes_then_exits_cleanly() {
    let fx = Fixture::new();
    let mut daemon = fx.start_toml(&fx.config("delay = 3600"));
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
    fs::write(fx.src.join("pending"), "synced at exit").unwrap();
    assert!(poll_until(
        Duration::from_secs(10),
        || daemon.status()["watches"][0]["pending"] == 1
    ));
    let status = daemon.terminate();
    assert!(status.success(), "{status}\n{}", daemon.log());
    assert_eq!(
        fs::read_to_string(fx.dst.join("pending")).unwrap(),
        "synced at exit"
    );
    assert!(!fx.socket.exists());
    assert!(
        daemon.log().contains("pending changes synced; stopping"),
        "{}",
        daemon.log()
    );
}

/// A second SIGTERM does not wait for a target that hangs.
#[test]
fn second_sigterm_stops_at_once() {
    let fx = Fixture::new();
    let hang = fx.path("hang-rsync");
    fs::write(&hang, "#!/bin/sh\nexec sleep 600\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hang, fs::Permissions::from_mode(0o755)).unwrap();
    let mut daemon = fx.start_toml(&fx.simple_config(&format!("rsync = \"{}\"", hang.display())));
    assert!(poll_until(
        Duration::from_secs(10),
        // (A first sync into an empty target may hold more than one slot.)
        || daemon.status()["running"].as_u64().is_some_and(|n| n >= 1)
    ));
    let started = Instant::now();
    signal(daemon.pid(), libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    signal(daemon.pid(), libc::SIGTERM);
    let status = daemon.terminate();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// A daemon on `fx`'s config (`top` lines and the fixture's watch) inside a
/// user namespace of its own whose inotify watch limit is 20, with a tree of
/// 61 directories: the limit is lowered for it alone. Answers once it does.
fn start_past_the_watch_limit(fx: &Fixture, top: &str) -> std::process::Child {
    for d in 0..30 {
        fs::create_dir_all(fx.src.join(format!("d{d:02}/sub"))).unwrap();
    }
    let config_path = fx.path("inosync.toml");
    fs::write(&config_path, fx.simple_config(top)).unwrap();
    let log = fs::File::create(fx.path("inosyncd.log")).unwrap();
    let script = format!(
        "echo 20 > /proc/sys/user/max_inotify_watches && exec '{}' -c '{}' -s '{}' --state '{}' --backend inotify -v",
        bin("inosyncd").display(),
        config_path.display(),
        fx.socket.display(),
        fx.state_file().display()
    );
    let mut child = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let up = poll_until(Duration::from_secs(20), || {
        inosync_tests::ctl_at(&fx.socket, &["status"])
            .status
            .success()
    });
    if !up {
        inosync_tests::processes::kill_with_children(&mut child);
        panic!(
            "daemon did not start in a user namespace:\n{}",
            namespace_log(fx)
        );
    }
    child
}

/// What the daemon of [`start_past_the_watch_limit`] logged.
fn namespace_log(fx: &Fixture) -> String {
    fs::read_to_string(fx.path("inosyncd.log")).unwrap_or_default()
}

/// The watch limit: a tree with more directories than the limit allows. The error
/// names fs.inotify.max_user_watches, status marks the watch degraded, and periodic
/// full syncs keep the target right, also for changes deep in unwatched directories.
/// The limit is lowered only inside a user namespace of the daemon's own.
#[test]
fn watch_limit_degrades_one_watch_and_full_syncs_keep_it_right() {
    let fx = Fixture::new();
    let mut child = start_past_the_watch_limit(&fx, "full_sync_interval = 1");
    let ctl = |args: &[&str]| inosync_tests::ctl_at(&fx.socket, args);
    let status: serde_json::Value =
        serde_json::from_slice(&ctl(&["--json", "status"]).stdout).unwrap();
    let degraded = status["watches"][0]["degraded"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // A change deep in a directory that has no watch still arrives.
    fs::write(fx.src.join("d29/sub/deep"), "no watch here").unwrap();
    let converged = poll_until(Duration::from_secs(30), || {
        compare_trees(&fx.src, &fx.dst).is_ok()
    });
    inosync_tests::processes::kill_with_children(&mut child);
    assert!(
        degraded.contains("fs.inotify.max_user_watches"),
        "not degraded: {status}"
    );
    let log = namespace_log(&fx);
    assert!(
        log.contains("61 needed") && log.contains("Raise the limit to at least 61"),
        "{log}"
    );
    assert!(converged, "{:?}\n{log}", compare_trees(&fx.src, &fx.dst));
}

/// `wait` on a watch past the watch limit: a file written in a directory
/// that has no watch is on the target when `wait` answers, without waiting
/// for the periodic full sync (found by a black-box attack: `wait` said idle
/// while the file was missing, for up to a minute).
#[test]
fn wait_on_a_watch_past_the_watch_limit_covers_unwatched_directories() {
    let fx = Fixture::new();
    let mut child = start_past_the_watch_limit(&fx, "");
    let ctl = |args: &[&str]| inosync_tests::ctl_at(&fx.socket, args);
    ctl(&["wait", "--timeout", "20"]);
    fs::write(fx.src.join("d29/sub/deep"), "no watch here").unwrap();
    let waited = ctl(&["wait", "--timeout", "30"]);
    let arrived = fx.dst.join("d29/sub/deep").exists();
    inosync_tests::processes::kill_with_children(&mut child);
    assert!(
        waited.status.success(),
        "{waited:?}\n{}",
        namespace_log(&fx)
    );
    assert!(
        arrived,
        "wait said idle before the file arrived\n{}",
        namespace_log(&fx)
    );
}

/// The watch limit already reached at the root itself: the start fails naming
/// fs.inotify.max_user_watches, not "No space left on device" (the kernel's
/// ENOSPC), which sends an administrator to the disks (found by a black-box
/// attack). The limit is lowered only inside a user namespace of its own.
#[test]
fn a_watch_limit_reached_at_the_root_is_named() {
    let fx = Fixture::new();
    let script = format!(
        "echo 0 > /proc/sys/user/max_inotify_watches && exec '{}' '{}' '{}' -s '{}' --backend inotify",
        bin("inosyncd").display(),
        fx.src.display(),
        fx.dst.display(),
        fx.socket.display(),
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("fs.inotify.max_user_watches"), "{stderr}");
}

/// Symlinks are synced as links and never followed out of the tree.
#[test]
fn symlinks_are_copied_as_links_and_never_followed() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), "not part of the tree").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    symlink(&outside, fx.src.join("link-to-outside")).unwrap();
    symlink("../../etc/passwd", fx.src.join("relative-link")).unwrap();
    daemon.wait_idle();
    fs::write(outside.join("written-later"), "still not ours").unwrap();
    daemon.wait_idle();
    assert!(
        fs::symlink_metadata(fx.dst.join("link-to-outside"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!fx.dst.join("secret").exists());
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    // No watch through the symlink (under fanotify there are no watches at all).
    inosync_tests::assert_watched(&daemon.status()["watches"][0], 1);
}

/// Start-up: the initial full sync runs beside the watch set-up. Files written,
/// rewritten and deleted all through that window still end up right.
#[test]
fn changes_during_start_up_are_not_lost() {
    let fx = Fixture::new();
    write_files(&fx.src, 40, 25, "s");
    for d in 0..40 {
        for sub in 0..50 {
            fs::create_dir(fx.src.join(format!("s{d:03}/sub{sub}"))).unwrap();
        }
    }
    let config_path = fx.path("inosync.toml");
    fs::write(&config_path, fx.simple_config("")).unwrap();
    let log = fs::File::create(fx.path("inosyncd.log")).unwrap();
    let mut child = Command::new(bin("inosyncd"))
        .arg("-c")
        .arg(&config_path)
        .arg("-s")
        .arg(&fx.socket)
        .arg("--state")
        .arg(fx.state_file())
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // Write through the start-up window, before the daemon even answers.
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_millis(600) {
        let d = round % 40;
        fs::write(
            fx.src.join(format!("s{d:03}/sub{}/new{round}", round % 50)),
            format!("{round}"),
        )
        .unwrap();
        fs::write(
            fx.src.join(format!("s{d:03}/f{:03}", round % 25)),
            format!("rewritten {round}"),
        )
        .unwrap();
        if round % 7 == 0 {
            let _ = fs::remove_file(fx.src.join(format!(
                "s{:03}/f{:03}",
                (round + 3) % 40,
                round % 25
            )));
        }
        round += 1;
    }
    let waited = Command::new(bin("inosyncctl"))
        .arg("-s")
        .arg(&fx.socket)
        .args(["wait", "--timeout", "60"])
        .status();
    let up = waited.is_ok_and(|s| s.success())
        || (poll_until(Duration::from_secs(20), || fx.socket.exists())
            && Command::new(bin("inosyncctl"))
                .arg("-s")
                .arg(&fx.socket)
                .args(["wait", "--timeout", "60"])
                .status()
                .is_ok_and(|s| s.success()));
    let result = compare_trees(&fx.src, &fx.dst);
    inosync_tests::processes::kill_with_children(&mut child);
    let log = fs::read_to_string(fx.path("inosyncd.log")).unwrap_or_default();
    assert!(up, "daemon never idle\n{log}");
    if let Err(problems) = result {
        panic!("{round} writes during start-up: {problems}\n{log}");
    }
}

/// A file written right before SIGTERM: its event may still be queued, unread,
/// when the signal comes. It is read and synced before the exit (with
/// `initial_sync = false` the next start would not send it).
#[test]
fn a_change_written_right_before_sigterm_is_synced_before_the_exit() {
    for round in 0..5 {
        let fx = Fixture::new();
        let mut daemon = fx.start_toml(&fx.config("delay = 0\ninitial_sync = false"));
        daemon.wait_idle();
        let name = format!("last-{round}");
        fs::write(fx.src.join(&name), "written last").unwrap();
        let status = daemon.terminate();
        assert!(status.success(), "{status}\n{}", daemon.log());
        assert_eq!(
            fs::read_to_string(fx.dst.join(&name)).ok().as_deref(),
            Some("written last"),
            "round {round}: the last change was lost\n{}",
            daemon.log()
        );
    }
}
