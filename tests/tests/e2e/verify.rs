//! `inosyncctl verify`: a dry-run comparison that finds what differs between a
//! target and its source, repairs it on request, and runs by itself with
//! `verify_interval`.

use std::fs;
use std::process::Command;
use std::time::Duration;

use inosync_tests::{Fixture, assert_trees_equal, poll_until, run_ok};

fn tampered(fx: &Fixture) {
    fs::write(fx.dst.join("extra"), "not in the source").unwrap();
    fs::write(fx.dst.join("file"), "changed behind our back").unwrap();
}

#[test]
fn verify_lists_drift_and_repair_fixes_it() {
    let fx = Fixture::new();
    fs::write(fx.src.join("file"), "source").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    let out = daemon.ctl_ok(&["verify"]);
    assert!(out.contains("equal"), "{out}");
    tampered(&fx);
    let out = daemon.ctl(&["verify"]);
    assert_eq!(out.status.code(), Some(4));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("2 path(s) differ"), "{listed}");
    assert!(
        listed.contains("*deleting") && listed.contains("extra"),
        "{listed}"
    );
    assert!(listed.contains(" file"), "{listed}");
    let last = &daemon.status()["watches"][0]["targets"][0]["last_verify"];
    assert_eq!(last["drift"], 2, "{last}");
    // --json for scripts.
    let out = daemon.ctl(&["--json", "verify"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["pairs"][0]["count"], 2);
    // Repair: the differing paths are synced.
    assert_eq!(daemon.ctl(&["verify", "--repair"]).status.code(), Some(4));
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    daemon.ctl_ok(&["verify"]);
}

#[test]
fn checksum_finds_what_size_and_mtime_hide() {
    let fx = Fixture::new();
    fs::write(fx.src.join("same"), "aaaa").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    fs::write(fx.dst.join("same"), "bbbb").unwrap();
    run_ok(
        Command::new("touch")
            .arg("-r")
            .arg(fx.src.join("same"))
            .arg(fx.dst.join("same")),
    );
    daemon.ctl_ok(&["verify"]);
    assert_eq!(daemon.ctl(&["verify", "--checksum"]).status.code(), Some(4));
}

#[test]
fn verify_interval_finds_and_repairs_drift_by_itself() {
    let fx = Fixture::new();
    fs::write(fx.src.join("file"), "source").unwrap();
    let daemon = fx.start_toml(&fx.simple_config("verify_interval = 1"));
    daemon.wait_idle();
    tampered(&fx);
    let repaired = poll_until(Duration::from_secs(20), || {
        inosync_tests::compare_trees(&fx.src, &fx.dst).is_ok()
    });
    assert!(repaired, "{}", daemon.log());
    assert!(
        daemon.log().contains("verify found 2 differing path(s)"),
        "{}",
        daemon.log()
    );
}
