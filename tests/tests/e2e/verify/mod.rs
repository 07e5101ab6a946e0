//! `inosyncctl verify`: a dry-run comparison that finds what differs between a
//! target and its source, repairs it on request, and runs by itself with
//! `verify_interval`.

use std::fs;
use std::process::Command;
use std::time::Duration;

use inosync_tests::{Fixture, assert_trees_equal, poll_until, run_ok};

mod interval;
mod names;
mod on_the_way;
mod unreachable;

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
    // A timeout too short to answer in is given the moment the daemon needs
    // (it said "did not answer in time: it is stopped, hung or overloaded",
    // exit 3; found by a black-box attack).
    let out = daemon.ctl_ok(&["verify", "--timeout", "0"]);
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

/// The value of one series of the daemon's metrics (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Each verify says in the log and the metrics what it found: equal, drift
/// (with the number of paths), or a comparison that failed.
#[test]
fn every_verify_is_logged_and_counted_by_result() {
    let fx = Fixture::new();
    fs::write(fx.src.join("file"), "source").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    daemon.ctl_ok(&["verify"]);
    tampered(&fx);
    assert_eq!(daemon.ctl(&["verify"]).status.code(), Some(4));
    let text = daemon.ctl_ok(&["metrics"]);
    // Labels in the exposition's (alphabetical) order.
    let labels = format!(
        "target=\"{}/\",watch=\"{}\"}}",
        fx.dst.display(),
        fx.src.display()
    );
    let result = |r: &str| {
        metric(
            &text,
            &format!("inosync_verifies_total{{result=\"{r}\",{labels}"),
        )
    };
    assert_eq!(result("equal"), 1.0, "{text}");
    assert_eq!(result("drift"), 1.0, "{text}");
    assert_eq!(
        metric(
            &text,
            &format!("inosync_verify_differing_paths_total{{{labels}")
        ),
        2.0,
        "{text}"
    );
    let log = daemon.log();
    assert!(log.contains("verify: equal ("), "{log}");
    assert!(
        log.contains("verify found 2 differing path(s) in "),
        "{log}"
    );
}

/// verify's dry run yields to everything else: nice 19, I/O best effort 7;
/// the transfers run as the daemon does.
#[test]
fn the_verify_dry_run_runs_niced() {
    let fx = Fixture::new();
    let wrapper = fx.path("priority-rsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$*\" in *--dry-run*) what=verify;; *) what=sync;; esac\n\
             echo \"$what nice=$(cut -d' ' -f19 /proc/$$/stat) io=$(ionice -p $$)\" >> '{}'\n\
             exec '{}' \"$@\"\n",
            fx.calls_log().display(),
            inosync_tests::real_rsync().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = fx.start_toml(&fx.simple_config(&format!("rsync = \"{}\"", wrapper.display())));
    daemon.wait_idle();
    daemon.ctl_ok(&["verify"]);
    let calls = fx.rsync_calls();
    assert!(
        calls
            .iter()
            .any(|c| c == "verify nice=19 io=best-effort: prio 7"),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|c| c.starts_with("sync nice=0 ")),
        "{calls:?}"
    );
}
