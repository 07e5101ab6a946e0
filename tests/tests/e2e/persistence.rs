//! Runtime changes survive a restart; a corrupt state file of ours is reported and moved
//! aside without stopping the config's watches.

use std::fs;

use std::time::Duration;

use inosync_tests::{Fixture, poll_until};

#[test]
fn add_speed_pause_and_remove_survive_a_restart() {
    let fx = Fixture::new();
    let extra = fx.path("extra");
    fs::create_dir(&extra).unwrap();
    let config = fx.simple_config("");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    let extra_s = extra.display().to_string();
    let src = fx.src.display().to_string();
    daemon.ctl_ok(&[
        "add",
        &extra_s,
        "--target",
        &format!("{}/", fx.path("extra-dst").display()),
        "--remote-path",
        "",
    ]);
    daemon.ctl_ok(&["speed", "300"]);
    daemon.ctl_ok(&["delay", "4", "--watch", &extra_s]);
    daemon.ctl_ok(&["pause", &extra_s]);
    assert!(daemon.terminate().success());
    let state = fs::read_to_string(fx.state_file()).unwrap();
    assert!(state.contains("speed = 300"), "{state}");

    let daemon = fx.start_toml(&config);
    let status = daemon.status();
    assert_eq!(status["speed"], 300, "{status}");
    assert_eq!(status["speed_source"], "runtime");
    let watches = status["watches"].as_array().unwrap();
    assert_eq!(watches.len(), 2, "{status}");
    let added = watches
        .iter()
        .find(|w| w["path"] == extra_s.as_str())
        .unwrap();
    assert_eq!(added["origin"], "runtime");
    assert_eq!(added["paused"], true);
    assert_eq!(added["delay"], 4.0);
    assert_eq!(added["delay_source"], "runtime");

    // Removing the config's own watch at runtime also survives a restart.
    daemon.ctl_ok(&["resume"]);
    daemon.ctl_ok(&["remove", &src]);
    drop(daemon);
    let daemon = fx.start_toml(&config);
    let status = daemon.status();
    let paths: Vec<&str> = status["watches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["path"].as_str())
        .collect();
    assert_eq!(paths, [extra_s.as_str()], "{status}");
}

#[test]
fn corrupt_state_file_is_moved_aside_and_the_config_still_runs() {
    let fx = Fixture::new();
    // A state file of ours (its first line says so) that got damaged.
    fs::write(
        fx.state_file(),
        "# Runtime changes made with inosyncctl; written by inosyncd.\nspeed = [not toml",
    )
    .unwrap();
    fs::write(fx.src.join("f"), "x").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    assert_eq!(fs::read_to_string(fx.dst.join("f")).unwrap(), "x");
    assert!(daemon.log().contains("is corrupt"), "{}", daemon.log());
    // Replaced by a fresh one (the daemon records its watch's filesystem).
    let state = fs::read_to_string(fx.state_file()).unwrap_or_default();
    assert!(!state.contains("not toml"), "{state}");
    let aside = fs::read_dir(fx.dir.path()).unwrap().flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with("state.toml.corrupt-")
    });
    assert!(aside, "corrupt state file not kept aside");
}

#[test]
fn a_state_file_that_is_not_ours_stops_the_start_and_is_left_alone() {
    let fx = Fixture::new();
    fs::write(fx.state_file(), "speed = [somebody else's file").unwrap();
    let config = fx.path("inosync.toml");
    fs::write(&config, fx.simple_config("")).unwrap();
    let stderr = inosync_tests::refused_start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "-s".as_ref(),
        fx.socket.as_os_str(),
        "--state".as_ref(),
        fx.state_file().as_os_str(),
    ]);
    assert!(stderr.contains("not an inosyncd state file"), "{stderr}");
    assert_eq!(
        fs::read_to_string(fx.state_file()).unwrap(),
        "speed = [somebody else's file"
    );
}

/// `initial_sync = false`, and the daemon killed (SIGKILL) with a change
/// still pending: the next start syncs every watch whole, as after a stop
/// with changes left (found by a black-box attack: the change never arrived).
#[test]
fn a_change_pending_when_the_daemon_is_killed_arrives_after_the_restart() {
    let fx = Fixture::new();
    let config = fx.config("initial_sync = false\ndelay = 3600\n");
    let mut daemon = fx.start_toml(&config);
    // Not `wait`: a full sync started by another test's writes on this
    // filesystem (fanotify marks it whole) would wait its hour.
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
    fs::write(fx.src.join("pending at the kill"), "not synced yet").unwrap();
    let pending = poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][0]["pending"] == 1
    });
    assert!(pending, "{}", daemon.status());
    daemon.kill();
    let restarted = fx.restart_toml(&fx.config("initial_sync = false\ndelay = 0\n"));
    restarted.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("pending at the kill"))
            .ok()
            .as_deref(),
        Some("not synced yet"),
        "{}",
        restarted.log()
    );
}

/// A supervisor that starts the daemon again the moment it killed it
/// (SIGKILL, not waiting for the process to end): the new one starts, rather
/// than taking the dying one for a live daemon on its socket (found by a
/// black-box attack: refused 4 times in 8 within 1–16 ms of the kill).
#[test]
fn a_start_right_after_a_kill_is_not_refused() {
    for round in 0..5 {
        let fx = Fixture::new();
        let config = fx.simple_config("");
        let daemon = fx.start_toml(&config);
        daemon.wait_idle();
        // SAFETY: a signal to our own child; it is reaped when `daemon` drops.
        unsafe { libc::kill(daemon.pid() as i32, libc::SIGKILL) };
        let restarted = fx.restart_toml(&config);
        restarted.wait_idle();
        drop(daemon);
        eprintln!("round {round}: started again");
    }
}

/// A state file the daemon cannot write: a runtime change is in force, and the
/// command that made it says, on stderr, that it will not survive a restart;
/// `status` says so too until a write succeeds (found by a black-box attack:
/// only the log said it).
#[test]
fn a_runtime_change_the_state_file_cannot_keep_is_said_where_it_was_made() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    // A directory in the state file's place: its atomic rename fails.
    fs::remove_file(fx.state_file()).unwrap();
    fs::create_dir(fx.state_file()).unwrap();
    fs::write(fx.state_file().join("keep"), "").unwrap();
    let out = daemon.ctl(&["speed", "500"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot write state file") && stderr.contains("will not survive a restart"),
        "{stderr}"
    );
    assert_eq!(daemon.status()["speed"], 500);
    assert!(
        daemon.status()["state_file_error"].is_string(),
        "{}",
        daemon.status()
    );
    assert!(
        daemon
            .ctl_ok(&["status"])
            .contains("will not survive a restart"),
        "{}",
        daemon.ctl_ok(&["status"])
    );
    // Writable again: the next change is kept, and nothing is said.
    fs::remove_dir_all(fx.state_file()).unwrap();
    let out = daemon.ctl(&["speed", "600"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(daemon.status()["state_file_error"], serde_json::Value::Null);
    assert!(fs::read_to_string(fx.state_file()).unwrap().contains("600"));
}

/// A config watch removed at runtime and added again with another target:
/// the runtime one is what runs after a restart. Before, the removal was
/// forgotten at the `add`, so the start opened the config's watch (feeding
/// its old target again) and refused the added one as "the same directory"
/// (found by a black-box attack, 2 of 2).
#[test]
fn a_config_watch_removed_and_added_again_with_another_target_survives_a_restart() {
    let fx = Fixture::new();
    let config = fx.simple_config("");
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    let src = fx.src.display().to_string();
    let other = fx.path("other-dst");
    daemon.ctl_ok(&["remove", &src]);
    daemon.ctl_ok(&[
        "add",
        &src,
        "--target",
        &format!("{}/", other.display()),
        "--remote-path",
        "",
    ]);
    daemon.wait_idle();
    let mut daemon = daemon;
    assert!(daemon.terminate().success());
    let daemon = fx.start_toml(&config);
    fs::write(fx.src.join("after"), "after the restart").unwrap();
    daemon.wait_idle();
    assert!(
        other.join("after").exists(),
        "the added watch's target got nothing\n{}",
        daemon.log()
    );
    assert!(
        !fx.dst.join("after").exists(),
        "the removed config watch ran again\n{}",
        daemon.log()
    );
    assert!(
        !daemon.log().contains("cannot be restored"),
        "{}",
        daemon.log()
    );
}
