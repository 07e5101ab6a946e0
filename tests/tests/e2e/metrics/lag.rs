//! Issue 26, item 5: `inosync_oldest_pending_seconds` is the age of the oldest
//! change not yet on the target, counted from when it happened, whatever it
//! waits for: a pause, a target that keeps failing, a path held apart, the
//! backoff after a delay. Each test samples the gauge twice, at least 1.5 s
//! of wall time apart, and asserts both times that it equals the change's age
//! (within half a second): it grows with wall time and never restarts.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use inosync_tests::{Daemon, Fixture, poll_until};

use super::{free_port, sample};

/// The lag of the fixture's one pair.
fn lag(daemon: &Daemon, fx: &Fixture, target: &str) -> Option<f64> {
    let text = daemon.ctl_ok(&["metrics"]);
    let labels = format!("target=\"{target}\",watch=\"{}\"", fx.src.display());
    sample(&text, "inosync_oldest_pending_seconds", &labels)
}

/// Samples the lag at 2.5 s and 4 s after `made` (the change happened between
/// `made` and `seen`) and asserts each sample is the change's age, while
/// `still` (the reason it waits) holds.
fn assert_lag_is_the_age(
    daemon: &Daemon,
    fx: &Fixture,
    target: &str,
    made: Instant,
    seen: Instant,
    still: impl Fn(&Daemon) -> bool,
) {
    for at in [2.5, 4.0] {
        // Wall time is what is measured here: wait for it to pass.
        poll_until(Duration::from_secs(10), || {
            made.elapsed() >= Duration::from_secs_f64(at)
        });
        let low = seen.elapsed().as_secs_f64();
        let value = lag(daemon, fx, target).unwrap_or(-1.0);
        let high = made.elapsed().as_secs_f64();
        assert!(
            still(daemon),
            "the change no longer waits: the test proved nothing\n{}",
            daemon.status()
        );
        assert!(
            value >= low - 0.5 && value <= high + 0.05,
            "at {at} s: lag {value:.3} s, the change is {low:.3} to {high:.3} s old\n{}\n{}",
            daemon.status(),
            daemon.log()
        );
    }
}

fn first_target(daemon: &Daemon) -> serde_json::Value {
    daemon.status()["watches"][0]["targets"][0].clone()
}

/// Paused: the change waits for `resume`.
#[test]
fn the_lag_of_a_paused_change_is_its_age() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    daemon.ctl_ok(&["pause"]);
    let made = Instant::now();
    fs::write(fx.src.join("a"), "a").unwrap();
    assert!(poll_until(Duration::from_secs(10), || first_target(
        &daemon
    )["pending"]
        == 1));
    let seen = Instant::now();
    let target = format!("{}/", fx.dst.display());
    assert_lag_is_the_age(&daemon, &fx, &target, made, seen, |d| {
        first_target(d)["state"] == "paused"
    });
}

/// A target that refuses every connection: the initial full sync (the
/// change here is the start itself) fails again and again; its age is the
/// time since the start, not since the last failure.
#[test]
fn the_lag_of_a_failing_target_counts_from_the_change_not_the_failure() {
    let fx = Fixture::new();
    let target = format!("rsync://127.0.0.1:{}/mirror/", free_port());
    let config = format!(
        "delay = 0\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{target}\"]\n",
        fx.src.display()
    );
    let made = Instant::now();
    let daemon = fx.start_toml(&config);
    let seen = Instant::now();
    assert_lag_is_the_age(&daemon, &fx, &target, made, seen, |d| {
        first_target(d)["failures"].as_u64().unwrap_or(0) >= 2
    });
}

/// A change that waited out its delay, then failed: during the backoff that
/// follows, its age still counts from when it happened.
#[test]
fn the_lag_during_a_backoff_counts_the_delay_before_it() {
    let fx = Fixture::new();
    let failing = fx.path("failing");
    let wrapper = fx.path("failing-rsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ -e '{}' ] && exit 10\nexec '{}' \"$@\"\n",
            failing.display(),
            inosync_tests::real_rsync().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let daemon =
        fx.start_toml(&fx.config(&format!("delay = 2\nrsync = \"{}\"", wrapper.display())));
    daemon.wait_idle();
    fs::write(&failing, "").unwrap();
    let made = Instant::now();
    fs::write(fx.src.join("a"), "a").unwrap();
    assert!(poll_until(Duration::from_secs(10), || first_target(
        &daemon
    )["pending"]
        == 1));
    let seen = Instant::now();
    let target = format!("{}/", fx.dst.display());
    assert_lag_is_the_age(&daemon, &fx, &target, made, seen, |d| {
        first_target(d)["failures"].as_u64().unwrap_or(0) >= 1
    });
}

/// A path the target refuses (immutable there) is held and retried on its
/// own: it is a change not yet on the target, as old as when it happened.
#[test]
fn the_lag_of_a_held_path_is_its_age() {
    let fx = Fixture::new();
    fs::write(fx.src.join("stuck"), "v1").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let stuck = fx.dst.join("stuck");
    let _unlock = inosync_tests::Immutable::set(&stuck);
    let made = Instant::now();
    fs::write(fx.src.join("stuck"), "v2").unwrap();
    let held = || first_target(&daemon)["held"][0]["path"] == "stuck";
    assert!(
        poll_until(Duration::from_secs(10), held),
        "{}",
        daemon.log()
    );
    let seen = Instant::now();
    let target = format!("{}/", fx.dst.display());
    assert_lag_is_the_age(&daemon, &fx, &target, made, seen, |d| {
        first_target(d)["held"][0]["path"] == "stuck"
    });
}
