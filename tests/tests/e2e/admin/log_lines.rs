//! What an administrator reads in the log: each control command once, as who
//! did what, without the RPC library's span; rsync's lines with one `rsync:`;
//! a drift that says what it may be and how to repair it.

use std::fs;
use std::time::Duration;

use inosync_tests::{Fixture, poll_until};

#[test]
fn control_commands_are_logged_once_without_rpc_spans() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let other_s = other.to_str().unwrap();
    daemon.ctl_ok(&["speed", "500"]);
    daemon.ctl_ok(&["pause"]);
    daemon.ctl_ok(&["resume"]);
    // Refused first (no target), then done: one line each, the first saying so.
    daemon.ctl_fails(1, &["add", other_s]);
    daemon.ctl_ok(&[
        "add",
        other_s,
        "--target",
        fx.path("other-mirror").to_str().unwrap(),
    ]);
    daemon.wait_idle();
    let log = daemon.log();
    assert!(!log.contains("RPC{"), "{log}");
    assert!(!log.contains("otel."), "{log}");
    // What is logged at the default level (the tests run the daemon at -v).
    let count = |what: &dyn Fn(&str) -> bool| {
        log.lines()
            .filter(|l| !l.contains(" DEBUG ") && what(l))
            .count()
    };
    assert_eq!(
        count(&|l| l.contains("speed 500 KB/s") && l.contains("by uid")),
        1,
        "{log}"
    );
    assert_eq!(count(&|l| l.contains("pause")), 1, "{log}");
    assert_eq!(count(&|l| l.contains("resume")), 1, "{log}");
    assert_eq!(
        count(&|l| l.contains(other_s) && (l.contains("add ") || l.contains("added"))),
        2,
        "{log}"
    );
    assert_eq!(
        count(&|l| l.contains(other_s) && l.contains("refused: ")),
        1,
        "{log}"
    );
}

#[test]
fn rsync_lines_have_one_prefix_and_a_drift_says_how_to_repair_it() {
    let fx = Fixture::new();
    fs::write(fx.src.join("page"), "source").unwrap();
    // A target that breaks at runtime: rsync's own error lines are logged.
    let broken = fx.path("broken");
    fs::create_dir(&broken).unwrap();
    let config = format!(
        "delay = 0\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\", \"{}/dst\"]\n",
        fx.src.display(),
        fx.dst.display(),
        broken.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    fs::remove_dir_all(&broken).unwrap();
    fs::write(&broken, "a regular file").unwrap();
    fs::write(fx.src.join("more"), "x").unwrap();
    let failed = poll_until(Duration::from_secs(30), || {
        daemon.log().contains("failed: ")
    });
    assert!(failed, "{}", daemon.log());
    let log = daemon.log();
    assert!(!log.contains("rsync: rsync:"), "{log}");
    assert!(
        log.lines().any(|l| l.contains(": rsync: [Receiver] mkdir")
            || l.contains(": rsync: mkdir")
            || l.contains("rsync: [Receiver]")),
        "{log}"
    );

    // The administrator edits the mirror by hand; a manual verify finds it.
    fs::write(fx.dst.join("page"), "edited on the target").unwrap();
    let out = daemon.ctl(&["verify", fx.src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4));
    let log = daemon.log();
    let drift = log
        .lines()
        .find(|l| l.contains("differing path"))
        .unwrap_or_else(|| panic!("no drift line: {log}"));
    assert!(!drift.contains("a bug to report"), "{drift}");
    assert!(drift.contains("changed on the target"), "{drift}");
    assert!(drift.contains("--repair"), "{drift}");
}
