//! Issue 26, item 1: a change that is queued or running, or lies below one, is
//! on its way to the target, not drift; nor are rsync's temp files and partial
//! directories. verify says so (exit 0) and logs no bug.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use inosync_tests::{Fixture, poll_until};

/// The `pending` count of the first watch's first target.
fn pending(daemon: &inosync_tests::Daemon) -> u64 {
    daemon.status()["watches"][0]["targets"][0]["pending"]
        .as_u64()
        .unwrap_or(0)
}

/// While a watch is paused, a moved directory (the queued move names only the
/// directory) and new files below it are on their way: verify reports no
/// drift, exit 0, says how many differing paths are queued, and logs no WARN.
#[test]
fn a_paused_watch_with_a_queued_directory_move_has_no_drift() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("dir/sub")).unwrap();
    for name in ["a", "b", "sub/c"] {
        fs::write(fx.src.join("dir").join(name), name).unwrap();
    }
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    daemon.ctl_ok(&["pause"]);
    fs::rename(fx.src.join("dir"), fx.src.join("moved")).unwrap();
    assert!(
        poll_until(Duration::from_secs(10), || pending(&daemon) >= 1),
        "the move was never queued: {}",
        daemon.status()
    );
    let before = pending(&daemon);
    fs::write(fx.src.join("moved/sub/new"), "new").unwrap();
    assert!(
        poll_until(Duration::from_secs(10), || pending(&daemon) > before),
        "the new file was never queued: {}",
        daemon.status()
    );
    let out = daemon.ctl(&["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", daemon.log());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let head = format!("{} -> {}/: no drift; ", fx.src.display(), fx.dst.display());
    assert!(
        lines[0].starts_with(&head) && lines[0].ends_with(" differing path(s) are on their way"),
        "{stdout}"
    );
    let log = daemon.log();
    assert!(!log.contains("verify found"), "{log}");
    assert_eq!(
        daemon.status()["watches"][0]["targets"][0]["last_verify"]["drift"],
        0
    );
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    assert_eq!(
        daemon.ctl_ok(&["verify"]),
        format!("{} -> {}/: equal\n", fx.src.display(), fx.dst.display())
    );
}

/// A transfer running while the dry run looks, and over before its result is
/// read: its file and rsync's temp file for it were on their way when the
/// comparison started. (The rsync wrapper holds the dry run's result back
/// until the transfer's rsync has exited.)
#[test]
fn a_transfer_that_ends_during_the_comparison_is_not_drift() {
    let fx = Fixture::new();
    let wrapper = fx.path("slow-verify-rsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$*\" in *--dry-run*)\n  '{rsync}' \"$@\"; rc=$?\n  \
             i=0; while [ $i -lt 600 ] && pgrep -f -- --ignore-missing-args >/dev/null; do \
             sleep 0.05; i=$((i+1)); done\n  exit $rc;;\nesac\nexec '{rsync}' \"$@\"\n",
            rsync = inosync_tests::real_rsync().display(),
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    // 2,000 KB/s: the 6 MB file takes about 3 s.
    let daemon = fx
        .start_toml(&fx.simple_config(&format!("speed = 2000\nrsync = \"{}\"", wrapper.display())));
    daemon.wait_idle();
    fs::create_dir(fx.src.join("new")).unwrap();
    let data: Vec<u8> = (0..6_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(fx.src.join("new/big.bin"), &data).unwrap();
    let temp_seen = poll_until(Duration::from_secs(20), || {
        fs::read_dir(fx.dst.join("new")).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".big.bin."))
        })
    });
    assert!(temp_seen, "no transfer seen: {}", daemon.log());
    let out = daemon.ctl(&["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        fx.dst.join("new/big.bin").is_file(),
        "the transfer had not ended when verify did: the test proved nothing"
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", daemon.log());
    assert!(!stdout.contains(".big.bin."), "{stdout}");
    assert!(!daemon.log().contains("verify found"), "{}", daemon.log());
}

/// What a killed receiver leaves (a temp file, a partial directory) is rsync's,
/// never drift; the next full sync or sweep removes it.
#[test]
fn temp_files_left_by_a_killed_rsync_are_not_drift() {
    let fx = Fixture::new();
    fs::write(fx.src.join("keep"), "keep").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    fs::write(fx.dst.join(".keep.AbC123"), "half").unwrap();
    fs::create_dir(fx.dst.join(".inosync-partial")).unwrap();
    fs::write(fx.dst.join(".inosync-partial/keep"), "half").unwrap();
    let out = daemon.ctl(&["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", daemon.log());
    assert!(!daemon.log().contains("verify found"), "{}", daemon.log());
}

/// A file still being written (a log, appended to without a close) waits
/// for a quiet second before it is listed: while it grows it is on its way,
/// not drift, though no pair has it pending yet.
#[test]
fn a_file_still_being_written_is_not_drift() {
    let fx = Fixture::new();
    let daemon = fx.start_toml_with_env(
        &fx.simple_config(""),
        &[("RUST_LOG", "debug,inosyncd::engine=trace,tarpc=warn")],
    );
    // On the mirror as it was, then appended to without a close.
    fs::write(fx.src.join("growing.log"), "first line\n").unwrap();
    daemon.wait_idle();
    let mut log = fs::OpenOptions::new()
        .append(true)
        .open(fx.src.join("growing.log"))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = log.write_all(b"another line\n");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let settling = poll_until(Duration::from_secs(10), || {
        daemon.log().contains("change: written")
    });
    assert!(settling, "{}", daemon.log());
    let out = daemon.ctl(&["verify"]);
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", daemon.log());
    assert!(!daemon.log().contains("verify found"), "{}", daemon.log());
}

/// A change made after the comparison started and synced before it ended is
/// in neither look at what is on its way, yet the dry run may have seen it:
/// what the pairs record while a comparison runs is on its way too. (The
/// wrapper makes the order certain: the dry run waits for the file to exist,
/// compares, then waits for its transfer to end.)
#[test]
fn a_change_made_and_synced_during_the_comparison_is_not_drift() {
    let fx = Fixture::new();
    let wrapper = fx.path("waiting-verify-rsync");
    // The one file a sandboxed rsync of a debug build may write besides its
    // target: the wrapper says there that the dry run started.
    let started = fx.calls_log();
    fs::write(&started, "").unwrap();
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$*\" in *--dry-run*)\n  echo started >> '{started}'\n  \
             i=0; while [ $i -lt 400 ] && [ ! -e '{src}/late' ]; do sleep 0.05; i=$((i+1)); done\n  \
             '{rsync}' \"$@\"; rc=$?\n  \
             i=0; while [ $i -lt 400 ] && [ ! -e '{dst}/late' ]; do sleep 0.05; i=$((i+1)); done\n  \
             i=0; while [ $i -lt 400 ] && pgrep -f -- --ignore-missing-args >/dev/null; do sleep 0.05; i=$((i+1)); done\n  \
             exit $rc;;\nesac\nexec '{rsync}' \"$@\"\n",
            started = started.display(),
            src = fx.src.display(),
            dst = fx.dst.display(),
            rsync = inosync_tests::real_rsync().display(),
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let config = fx.config(&format!("delay = 0.5\nrsync = \"{}\"", wrapper.display()));
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    let verify = {
        let socket = daemon.socket.clone();
        std::thread::spawn(move || inosync_tests::ctl_at(&socket, &["verify"]))
    };
    assert!(
        poll_until(Duration::from_secs(10), || fs::read(&started)
            .is_ok_and(|s| !s.is_empty())),
        "{}",
        daemon.log()
    );
    fs::write(fx.src.join("late"), "made while verify compares").unwrap();
    let out = verify.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        fx.dst.join("late").is_file(),
        "the test proved nothing: {stdout}"
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", daemon.log());
    assert!(!daemon.log().contains("verify found"), "{}", daemon.log());
}
