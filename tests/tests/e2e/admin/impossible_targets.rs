//! A local target that can never be made is refused wherever it comes in,
//! naming it and why; a remote one that is down is retried, and does not hold
//! up a stop.

use std::fs;
use std::time::{Duration, Instant};

use inosync_tests::remote::RsyncDaemon;
use inosync_tests::{Fixture, bin, compare_trees, poll_until, refused_start};

/// A path below a regular file, and one below /proc: start, `--check`, `add`
/// and `reload` refuse them with the path and the reason.
#[test]
fn a_target_that_can_never_be_made_is_refused_everywhere() {
    let fx = Fixture::new();
    let blocker = fx.path("afile");
    fs::write(&blocker, "a regular file").unwrap();
    let below_file = blocker.join("dst");

    for (target, says) in [
        (below_file.to_str().unwrap(), "is a regular file"),
        ("/proc/nope", "/proc"),
        ("/sys/nope/deeper", "/sys"),
    ] {
        let stderr = refused_start(&[
            "--delay".as_ref(),
            "0".as_ref(),
            "-s".as_ref(),
            fx.socket.as_os_str(),
            fx.src.as_os_str(),
            target.as_ref(),
        ]);
        assert!(stderr.contains(target), "start: {stderr}");
        assert!(stderr.contains(says), "start: {stderr}");
    }

    let config = fx.path("bad.toml");
    fs::write(
        &config,
        format!(
            "[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n",
            fx.src.display(),
            below_file.display()
        ),
    )
    .unwrap();
    let check = std::process::Command::new(bin("inosyncd"))
        .args(["--check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "--check: {stderr}");
    assert!(stderr.contains(blocker.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("is a regular file"), "{stderr}");

    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let refused = daemon.ctl_fails(
        1,
        &[
            "add",
            other.to_str().unwrap(),
            "--target",
            below_file.to_str().unwrap(),
        ],
    );
    assert!(refused.contains(blocker.to_str().unwrap()), "{refused}");
    assert!(refused.contains("is a regular file"), "{refused}");
    assert_eq!(daemon.status()["watches"].as_array().unwrap().len(), 1);

    let mut bad_config = fx.simple_config("");
    bad_config.push_str(&format!(
        "\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"/proc/nope\"]\n",
        other.display()
    ));
    fs::write(fx.path("inosync.toml"), bad_config).unwrap();
    let refused = daemon.ctl_fails(1, &["reload"]);
    assert!(refused.contains("/proc/nope"), "{refused}");
    assert_eq!(daemon.status()["watches"].as_array().unwrap().len(), 1);
}

/// A remote target that is down is accepted and retried; SIGTERM does not
/// wait for it while it is in its retry backoff (exit 0 within a few
/// seconds), and what it missed reaches it after the next start.
#[test]
fn a_stop_does_not_wait_for_a_target_in_retry_backoff() {
    let fx = Fixture::new();
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let mut rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
    rsyncd.stop();
    let config = format!(
        "delay = 0\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\", \"{}\"]\n",
        fx.src.display(),
        fx.dst.display(),
        rsyncd.url()
    );
    let mut daemon = fx.start_toml(&config);
    let retrying = poll_until(Duration::from_secs(30), || {
        let status = daemon.status();
        let target = &status["watches"][0]["targets"][1];
        target["state"] == "retrying" && target["failures"].as_u64().unwrap_or(0) >= 1
    });
    assert!(retrying, "{}", daemon.status());
    fs::write(fx.src.join("while-down"), "missed by the remote target").unwrap();
    let local = poll_until(Duration::from_secs(30), || {
        compare_trees(&fx.src, &fx.dst).is_ok()
    });
    assert!(local, "{}", daemon.log());

    let stopping = Instant::now();
    let status = daemon.terminate();
    let took = stopping.elapsed();
    eprintln!("SIGTERM to exit with a target in retry backoff: {took:?}");
    assert!(status.success(), "{status:?}\n{}", daemon.log());
    assert!(
        took < Duration::from_secs(5),
        "stop took {took:?}\n{}",
        daemon.log()
    );
    assert!(!remote.join("while-down").exists());

    rsyncd.restart();
    let daemon = fx.restart_toml(&config);
    let arrived = poll_until(Duration::from_secs(60), || {
        compare_trees(&fx.src, &remote).is_ok()
    });
    assert!(arrived, "{}", daemon.log());
}

/// With `initial_sync = false` the next start does no full sync of its own:
/// what a target in retry backoff missed at the stop is kept in the state file
/// and sent after the next start all the same.
#[test]
fn what_a_target_in_backoff_missed_at_a_stop_is_kept_for_the_next_start() {
    let fx = Fixture::new();
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let mut rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
    let config = format!(
        "delay = 0\ninitial_sync = false\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}\"]\n",
        fx.src.display(),
        rsyncd.url()
    );
    let mut daemon = fx.start_toml(&config);
    rsyncd.stop();
    fs::write(fx.src.join("while-down"), "missed by the remote target").unwrap();
    let retrying = poll_until(Duration::from_secs(30), || {
        let status = daemon.status();
        let target = &status["watches"][0]["targets"][0];
        target["state"] == "retrying" && target["failures"].as_u64().unwrap_or(0) >= 1
    });
    assert!(retrying, "{}", daemon.status());
    assert!(daemon.terminate().success());
    let state = fs::read_to_string(fx.state_file()).unwrap_or_default();
    assert!(
        state.contains("unsynced") && state.contains(fx.src.to_str().unwrap()),
        "{state}"
    );

    rsyncd.restart();
    let daemon = fx.restart_toml(&config);
    let arrived = poll_until(Duration::from_secs(60), || {
        fs::read_to_string(remote.join("while-down")).is_ok()
    });
    assert!(arrived, "{}", daemon.log());
}
