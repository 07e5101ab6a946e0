//! A failing target is retried and reported; the other target goes on.

use std::fs;
use std::time::Duration;

use inosync_tests::remote::RsyncDaemon;
use inosync_tests::{Fixture, compare_trees, poll_until};

#[test]
fn one_failing_target_does_not_hold_back_the_other() {
    let fx = Fixture::new();
    // Fails for real: an rsync daemon that is down (a closed loopback port). A
    // local target below a regular file is refused at start now, so the
    // failure that is retried is a remote one.
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let mut rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
    rsyncd.stop();
    fs::write(fx.src.join("first"), "1").unwrap();
    let config = format!(
        "delay = 0\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\", \"{}\"]\n",
        fx.src.display(),
        fx.dst.display(),
        rsyncd.url()
    );
    let daemon = fx.start_toml(&config);

    fs::create_dir(fx.src.join("more")).unwrap();
    fs::write(fx.src.join("more/second"), "2").unwrap();
    let converged = poll_until(Duration::from_secs(30), || {
        compare_trees(&fx.src, &fx.dst).is_ok()
    });
    assert!(converged, "good target did not converge\n{}", daemon.log());

    // The bad target is reported, with the meaning of rsync's exit code.
    let reported = poll_until(Duration::from_secs(30), || {
        let status = daemon.status();
        let target = &status["watches"][0]["targets"][1];
        target["state"] == "retrying" && target["failures"].as_u64().unwrap_or(0) >= 1
    });
    let status = daemon.status();
    assert!(reported, "failing target not reported: {status}");
    let error = status["watches"][0]["targets"][1]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("rsync exited with"), "{error}");
    assert_eq!(
        status["watches"][0]["targets"][0]["failures"], 0,
        "{status}"
    );
    assert_ne!(
        status["watches"][0]["targets"][0]["state"], "retrying",
        "{status}"
    );
    assert!(
        daemon.log().contains("changes kept, retry"),
        "{}",
        daemon.log()
    );

    // Repair the target: the kept changes arrive on a retry, nothing was dropped.
    rsyncd.restart();
    let repaired = poll_until(Duration::from_secs(60), || {
        compare_trees(&fx.src, &remote).is_ok()
    });
    assert!(
        repaired,
        "repaired target did not converge\n{}",
        daemon.log()
    );
    daemon.wait_idle();
    let status = daemon.status();
    assert_eq!(
        status["watches"][0]["targets"][1]["failures"], 0,
        "{status}"
    );
    assert!(
        status["watches"][0]["targets"][1]["last_error"].is_null(),
        "{status}"
    );
}

/// `status` fits an 80-column terminal even with long paths and a long error;
/// `status PATH` shows the error whole, `--wide` every column; the header says
/// where the delay comes from (the command line, in a quick start).
#[test]
fn status_fits_80_columns_and_the_whole_error_is_one_command_away() {
    let fx = Fixture::new();
    let deep = fx
        .src
        .join("a-rather-long-directory-name/and-another-one-below-it");
    fs::create_dir_all(&deep).unwrap();
    // A directory at start (a target below a regular file is refused then),
    // replaced by a regular file once the mirror is made: every later sync
    // fails with rsync's `mkdir ... failed: Not a directory`.
    let blocker = fx.path("blocker-file-with-a-long-name-so-that-the-error-is-long");
    fs::create_dir(&blocker).unwrap();
    let bad = blocker.join("dst");
    let daemon = fx.start(&[
        "--delay".as_ref(),
        "0".as_ref(),
        fx.src.as_os_str(),
        bad.as_os_str(),
    ]);
    daemon.wait_idle();
    fs::remove_dir_all(&blocker).unwrap();
    fs::write(&blocker, "a regular file").unwrap();
    fs::write(deep.join("changed"), "after the target broke").unwrap();
    let failed = poll_until(Duration::from_secs(30), || {
        daemon.status()["watches"][0]["targets"][0]["failures"]
            .as_u64()
            .is_some_and(|f| f >= 1)
    });
    assert!(failed, "{}", daemon.log());
    let error = daemon.status()["watches"][0]["targets"][0]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.len() > 80, "a long error to cut: {error}");

    let table = daemon.ctl_ok(&["status"]);
    for line in table.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}\n{table}",
            line.chars().count()
        );
    }
    assert!(table.contains("delay 0 s (command line)"), "{table}");
    assert!(table.contains("errors cut"), "{table}");

    let one = daemon.ctl_ok(&["status", fx.src.to_str().unwrap()]);
    let first_line = error.lines().next().unwrap();
    assert!(one.contains(first_line), "{one}");

    let wide = daemon.ctl_ok(&["status", "--wide"]);
    assert!(wide.lines().any(|l| l.chars().count() > 80), "{wide}");
    assert!(wide.contains(first_line), "{wide}");
}

/// A config file at a long path (here 150 characters): every line of
/// `status` still fits 80 columns; the path is shown whole by `--wide` and
/// `--json`.
#[test]
fn status_header_fits_80_columns_with_a_long_config_path() {
    let fx = Fixture::new();
    let dir = fx.path(&"a-config-directory-with-a-long-name/".repeat(3));
    fs::create_dir_all(&dir).unwrap();
    let config = dir.join("inosync-with-a-long-file-name.toml");
    fs::write(&config, fx.simple_config("")).unwrap();
    let shown = config.display().to_string();
    assert!(shown.len() > 150, "{shown}");
    let daemon = fx.start_raw(&[
        "-c".as_ref(),
        config.as_os_str(),
        "--state".as_ref(),
        fx.state_file().as_os_str(),
    ]);
    daemon.wait_idle();
    let table = daemon.ctl_ok(&["status"]);
    for line in table.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}\n{table}",
            line.chars().count()
        );
    }
    assert!(
        table.contains("inosync-with-a-long-file-name.toml"),
        "{table}"
    );
    assert!(daemon.ctl_ok(&["status", "--wide"]).contains(&shown));
    assert_eq!(daemon.status()["config_file"], shown.as_str());
}
