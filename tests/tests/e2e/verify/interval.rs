//! Issue 26, item 4: a periodic verify (`verify_interval`) that finds nothing
//! leaves the schedule alone: pending changes keep their `delay`, a failing
//! target keeps its retry backoff.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use inosync_tests::{Daemon, Fixture, poll_until, real_rsync};

/// Verifies finished so far, whatever their result.
fn verifies(daemon: &Daemon) -> f64 {
    daemon
        .ctl_ok(&["metrics"])
        .lines()
        .filter(|l| l.starts_with("inosync_verifies_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until `n` more verifies than `from` have finished.
fn wait_for_verifies(daemon: &Daemon, from: f64, n: f64) {
    let done = poll_until(Duration::from_secs(20), || verifies(daemon) >= from + n);
    assert!(done, "no periodic verify ran: {}", daemon.log());
}

/// `delay = 40`: a new file waits its 40 s, however many verifies run meanwhile.
#[test]
fn a_periodic_verify_keeps_the_delay_of_pending_changes() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.config("delay = 40\nverify_interval = 1"));
    // Not `wait`: a full sync started by another test's writes on this
    // filesystem (fanotify marks it whole) would wait its 40 s.
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
    let before = verifies(&daemon);
    fs::write(fx.src.join("new"), "new").unwrap();
    let pending = poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][0]["targets"][0]["pending"] == 1
    });
    assert!(pending, "{}", daemon.status());
    wait_for_verifies(&daemon, before, 2.0);
    let target = &daemon.status()["watches"][0]["targets"][0];
    assert_eq!(target["pending"], 1, "{target}");
    assert!(
        !fx.dst.join("new").exists(),
        "sent before its delay: {}",
        daemon.log()
    );
}

/// A target that fails with a configuration error (first retry in 30 s): the
/// periodic verifies do not make it retry every second.
#[test]
fn a_periodic_verify_keeps_a_failing_targets_backoff() {
    let fx = Fixture::new();
    let failing = fx.path("failing");
    let wrapper = fx.path("failing-rsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ -e '{}' ] && exit 5\nexec '{}' \"$@\"\n",
            failing.display(),
            real_rsync().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = fx.start_toml(&fx.config(&format!(
        "delay = 0\nverify_interval = 1\nrsync = \"{}\"",
        wrapper.display()
    )));
    daemon.wait_idle();
    fs::write(&failing, "").unwrap();
    fs::write(fx.src.join("new"), "new").unwrap();
    let failed = poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][0]["targets"][0]["failures"] == 1
    });
    assert!(failed, "{}", daemon.status());
    let before = verifies(&daemon);
    wait_for_verifies(&daemon, before, 2.0);
    let target = &daemon.status()["watches"][0]["targets"][0];
    assert_eq!(target["failures"], 1, "retried early: {target}");
    let retry_in = target["next_retry_in"].as_f64().unwrap_or(0.0);
    assert!(retry_in > 20.0, "backoff cleared: {target}");
}
