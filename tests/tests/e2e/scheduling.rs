//! Scheduling across targets: a slow target never delays another, and the
//! `max_parallel` cap holds across watches and targets.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use inosync_tests::{Fixture, poll_until, real_rsync};

/// A wrapper that blocks runs for destinations containing "slow" until a gate file
/// exists, and logs start/end times of every run.
fn gated_wrapper(fx: &Fixture) -> std::path::PathBuf {
    let wrapper = fx.path("gated-rsync");
    let script = format!(
        r#"#!/bin/sh
for last; do :; done
echo "start $(date +%s%N)" >> '{log}'
case "$last" in
  *slow*) while [ ! -e '{gate}' ]; do sleep 0.02; done ;;
esac
'{rsync}' "$@"
rc=$?
echo "end $(date +%s%N)" >> '{log}'
exit $rc
"#,
        log = fx.calls_log().display(),
        gate = fx.path("gate").display(),
        rsync = real_rsync().display()
    );
    fs::write(&wrapper, script).unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

#[test]
fn a_slow_target_does_not_delay_another() {
    let fx = Fixture::new();
    let wrapper = gated_wrapper(&fx);
    let slow = fx.path("slow-target");
    let config = format!(
        "delay = 0\nrsync = \"{}\"\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\", \"{}/\"]\n",
        wrapper.display(),
        fx.src.display(),
        fx.dst.display(),
        slow.display()
    );
    let daemon = fx.start_toml(&config);
    for name in ["one", "two", "three"] {
        fs::write(fx.src.join(name), name).unwrap();
        let arrived = poll_until(Duration::from_secs(20), || fx.dst.join(name).exists());
        assert!(
            arrived,
            "{name} did not reach the fast target while the slow one hung\n{}",
            daemon.log()
        );
    }
    let status = daemon.status();
    assert_eq!(
        status["watches"][0]["targets"][1]["state"], "syncing",
        "{status}"
    );
    assert!(!slow.join("one").exists());

    fs::write(fx.path("gate"), "").unwrap();
    daemon.wait_idle();
    for name in ["one", "two", "three"] {
        assert_eq!(fs::read_to_string(slow.join(name)).unwrap(), name);
    }
}

#[test]
fn max_parallel_caps_rsync_processes() {
    let fx = Fixture::new();
    let wrapper = gated_wrapper(&fx);
    fs::write(fx.path("gate"), "").unwrap();
    let second = fx.path("src2");
    fs::create_dir(&second).unwrap();
    let targets: Vec<String> = (0..3)
        .map(|i| format!("\"{}/\"", fx.path(&format!("t{i}")).display()))
        .collect();
    let config = format!(
        "delay = 0\nmax_parallel = 1\nrsync = \"{}\"\ntargets = [{}]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"/a\"\n\
         [[watch]]\npath = \"{}\"\nremote_path = \"/b\"\n",
        wrapper.display(),
        targets.join(", "),
        fx.src.display(),
        second.display()
    );
    let daemon = fx.start_toml(&config);
    for i in 0..5 {
        fs::write(fx.src.join(format!("f{i}")), "x").unwrap();
        fs::write(second.join(format!("g{i}")), "y").unwrap();
    }
    daemon.wait_idle();
    let log = fs::read_to_string(fx.calls_log()).unwrap();
    let mut running = 0;
    let mut peak = 0;
    let mut events: Vec<(u128, i32)> = log
        .lines()
        .filter_map(|line| {
            let (kind, time) = line.split_once(' ')?;
            Some((time.parse().ok()?, if kind == "start" { 1 } else { -1 }))
        })
        .collect();
    // Ends sort before starts at the same instant.
    events.sort();
    for (_, delta) in &events {
        running += delta;
        peak = peak.max(running);
    }
    assert!(events.len() >= 12, "expected at least 6 runs: {log}");
    assert_eq!(peak, 1, "more than max_parallel rsyncs at once: {log}");
    for i in 0..3 {
        assert!(fx.path(&format!("t{i}/a/f4")).exists() && fx.path(&format!("t{i}/b/g4")).exists());
    }
}

#[test]
fn a_change_goes_to_sixteen_targets_side_by_side_and_a_failing_one_delays_none() {
    let fx = Fixture::new();
    // Every run to a local target logs its start and waits for the gate: all
    // fifteen must be running at once before any may finish.
    let wrapper = fx.path("gated-rsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor last; do :; done\ncase \"$last\" in\n  rsync://*) ;;\n  \
             *) echo start >> '{log}'; while [ ! -e '{gate}' ]; do sleep 0.02; done ;;\nesac\n\
             exec '{rsync}' \"$@\"\n",
            log = fx.calls_log().display(),
            gate = fx.path("gate").display(),
            rsync = real_rsync().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let mut targets: Vec<String> = (0..15)
        .map(|i| format!("\"{}/\"", fx.path(&format!("t{i}")).display()))
        .collect();
    targets.insert(
        7,
        format!(
            "\"rsync://127.0.0.1:{}/m/\"",
            inosync_tests::remote::free_port()
        ),
    );
    // The default caps: nothing about parallelism is configured.
    let config = format!(
        "delay = 0\ninitial_sync = false\nrsync = \"{}\"\n\n[[watch]]\npath = \"{}\"\n\
         remote_path = \"\"\ntargets = [{}]\n",
        wrapper.display(),
        fx.src.display(),
        targets.join(", ")
    );
    let daemon = fx.start_toml(&config);
    fs::write(fx.src.join("page.html"), "v1").unwrap();
    let started = || {
        fs::read_to_string(fx.calls_log())
            .map(|log| log.lines().count())
            .unwrap_or(0)
    };
    let side_by_side = poll_until(Duration::from_secs(20), || started() >= 15);
    assert!(
        side_by_side,
        "{} of 15 transfers of a one-file change ran at once (they waited in rounds)\n{}",
        started(),
        daemon.log()
    );
    fs::write(fx.path("gate"), "").unwrap();
    let arrived = |content: &str| {
        (0..15).all(|i| {
            fs::read_to_string(fx.path(&format!("t{i}/page.html"))).is_ok_and(|c| c == content)
        })
    };
    assert!(
        poll_until(Duration::from_secs(20), || arrived("v1")),
        "{}",
        daemon.log()
    );
    // The failing target retries with backoff; the others take the next change
    // at once.
    fs::write(fx.src.join("page.html"), "v2").unwrap();
    assert!(
        poll_until(Duration::from_secs(10), || arrived("v2")),
        "the failing target held back the others\n{}",
        daemon.log()
    );
    let status = daemon.status();
    assert_eq!(
        status["watches"][0]["targets"][7]["state"], "retrying",
        "{status}"
    );
}
