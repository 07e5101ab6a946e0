//! Issue 26, item 1: a change that is queued or running, or lies below one, is
//! on its way to the target, not drift; nor are rsync's temp files and partial
//! directories. verify says so (exit 0) and logs no bug.

use std::fs;
use std::os::unix::fs::PermissionsExt;
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
    assert!(!log.contains("a bug to report"), "{log}");
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
             i=0; while [ $i -lt 600 ] && pgrep -f -- --files-from=- >/dev/null; do \
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
    assert!(
        !daemon.log().contains("a bug to report"),
        "{}",
        daemon.log()
    );
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
    assert!(
        !daemon.log().contains("a bug to report"),
        "{}",
        daemon.log()
    );
}
