//! Runtime control with inosyncctl: every command's effect on the target tree or
//! on the rsync command line, without a restart.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use inosync_tests::{Fixture, assert_trees_equal, bin, poll_until, run_ok};

/// A config with default targets and no watches: the daemon starts idle.
fn idle_config(fx: &Fixture, delay: f64) -> String {
    let wrapper = fx.rsync_wrapper();
    format!(
        "delay = {delay:?}\nrsync = \"{}\"\ntargets = [\"{}/\"]\n",
        wrapper.display(),
        fx.dst.display()
    )
}

#[test]
fn add_resolves_relative_paths_and_syncs_the_new_watch() {
    let fx = Fixture::new();
    fs::write(fx.src.join("existing"), "before add").unwrap();
    let daemon = fx.start_toml(&idle_config(&fx, 0.0));
    // Relative to inosyncctl's working directory, not the daemon's.
    let out = run_ok(
        Command::new(bin("inosyncctl"))
            .current_dir(fx.dir.path())
            .args(["-s"])
            .arg(&fx.socket)
            .args(["add", "src", "--remote-path", "", "--exclude", "*.tmp"]),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("watching"));
    daemon.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("existing")).unwrap(),
        "before add"
    );
    fs::write(fx.src.join("after"), "after add").unwrap();
    fs::write(fx.src.join("skip.tmp"), "excluded").unwrap();
    daemon.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("after")).unwrap(),
        "after add"
    );
    assert!(!fx.dst.join("skip.tmp").exists());
    let status = daemon.status();
    assert_eq!(status["watches"][0]["origin"], "runtime", "{status}");
    assert_eq!(status["watches"][0]["excludes"][0], "*.tmp", "{status}");
}

#[test]
fn add_refuses_bad_paths_and_changes_nothing() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("inner")).unwrap();
    fs::write(fx.path("a-file"), "x").unwrap();
    let daemon = fx.start_toml(&idle_config(&fx, 0.0));
    let src = fx.src.display().to_string();
    daemon.ctl_ok(&["add", &src, "--remote-path", ""]);
    let missing = fx.path("missing").display().to_string();
    let file = fx.path("a-file").display().to_string();
    let inner = fx.src.join("inner").display().to_string();
    let parent = fx.dir.path().display().to_string();
    for (path, expected) in [
        (missing.as_str(), "No such file"),
        (file.as_str(), "not a directory"),
        (inner.as_str(), "nested inside"),
        (parent.as_str(), "contains"),
        (src.as_str(), "same directory"),
    ] {
        let stderr = daemon.ctl_fails(1, &["add", path]);
        assert!(stderr.contains(expected), "add {path}: {stderr}");
    }
    let stderr = daemon.ctl_fails(1, &["add", &inner, "--target", "relative/dir"]);
    assert!(
        stderr.contains("nested inside") || stderr.contains("absolute"),
        "{stderr}"
    );
    assert_eq!(daemon.status()["watches"].as_array().map(Vec::len), Some(1));
    // Usage errors are exit 2.
    daemon.ctl_fails(2, &["add"]);
    daemon.ctl_fails(2, &["speed", "fast"]);
}

#[test]
fn remove_syncs_pending_changes_first_unless_discarded() {
    let fx = Fixture::new();
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let daemon = fx.start_toml(&idle_config(&fx, 60.0));
    let src = fx.src.display().to_string();
    let other_s = other.display().to_string();
    daemon.ctl_ok(&["add", &src, "--remote-path", "/kept"]);
    daemon.ctl_ok(&["add", &other_s, "--remote-path", "/discarded"]);
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);

    // With delay 60 these stay pending; remove syncs them before it returns.
    fs::write(fx.src.join("pending"), "synced on remove").unwrap();
    fs::write(other.join("pending"), "dropped by --discard").unwrap();
    let seen = poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][1]["pending"] == 1
    });
    assert!(seen, "the change was never pending: {}", daemon.status());
    daemon.ctl_ok(&["remove", &src]);
    assert_eq!(
        fs::read_to_string(fx.dst.join("kept/pending")).unwrap(),
        "synced on remove"
    );
    daemon.ctl_ok(&["remove", "--discard", &other_s]);
    assert!(!fx.dst.join("discarded/pending").exists());
    assert_eq!(daemon.status()["watches"].as_array().map(Vec::len), Some(0));

    // No longer watched: later writes are not synced.
    fs::write(fx.src.join("after-remove"), "x").unwrap();
    daemon.wait_idle();
    assert!(!fx.dst.join("kept/after-remove").exists());
    let stderr = daemon.ctl_fails(1, &["remove", &src]);
    assert!(stderr.contains("is not watched"), "{stderr}");
}

#[test]
fn speed_and_delay_show_and_set_globally_and_per_watch() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.counted_config(0.0));
    daemon.wait_idle();
    let src = fx.src.display().to_string();
    assert!(
        daemon
            .ctl_ok(&["speed"])
            .contains("speed unlimited (from the config)")
    );
    assert!(
        daemon
            .ctl_ok(&["speed", "300"])
            .contains("speed 300 KB/s (set at runtime)")
    );
    fs::write(fx.src.join("a"), "a").unwrap();
    daemon.wait_idle();
    assert!(
        fx.rsync_calls().last().unwrap().contains("--bwlimit=300"),
        "{:?}",
        fx.rsync_calls()
    );

    let out = daemon.ctl_ok(&["speed", "700", "--watch", &src]);
    assert!(
        out.contains(&format!("{src}: speed 700 KB/s (set at runtime)")),
        "{out}"
    );
    fs::write(fx.src.join("b"), "b").unwrap();
    daemon.wait_idle();
    assert!(fx.rsync_calls().last().unwrap().contains("--bwlimit=700"));
    assert!(daemon.ctl_ok(&["speed"]).contains("speed 300 KB/s"));

    assert!(
        daemon
            .ctl_ok(&["delay", "--watch", &src])
            .contains("delay 0 s (the global value)")
    );
    assert!(
        daemon
            .ctl_ok(&["delay", "2.5"])
            .contains("delay 2.5 s (set at runtime)")
    );
    let stderr = daemon.ctl_fails(2, &["delay", "-1"]);
    assert!(stderr.contains("seconds"), "{stderr}");
    let shown = daemon.ctl_ok(&["delay", "-0"]);
    assert!(shown.contains("delay 0 s"), "{shown}");
    daemon.ctl_ok(&["delay", "2.5"]);
    let status = daemon.status();
    assert_eq!(status["speed"], 300);
    assert_eq!(status["speed_source"], "runtime");
    assert_eq!(status["watches"][0]["speed"], 700);
    assert_eq!(status["watches"][0]["speed_source"], "runtime");
}

#[test]
fn delay_retimes_pending_batches() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.config("delay = 3600"));
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
    fs::write(fx.src.join("held"), "held by a long delay").unwrap();
    let status_shows_waiting = poll_until(Duration::from_secs(10), || {
        let status = daemon.status();
        status["watches"][0]["targets"][0]["state"] == "waiting"
    });
    assert!(status_shows_waiting, "{}", daemon.status());
    daemon.ctl_fails(1, &["wait", "--timeout", "0.3"]);
    daemon.ctl_ok(&["delay", "0"]);
    // The pending batch is due at once under the new delay.
    daemon.ctl_ok(&["wait", "--timeout", "20"]);
    assert_eq!(
        fs::read_to_string(fx.dst.join("held")).unwrap(),
        "held by a long delay"
    );
}

#[test]
fn sync_repairs_a_target_changed_behind_our_back() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("d")).unwrap();
    fs::write(fx.src.join("d/f"), "source").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    fs::remove_dir_all(fx.dst.join("d")).unwrap();
    fs::write(fx.dst.join("intruder"), "not in source").unwrap();
    let src = fx.src.display().to_string();
    let out = daemon.ctl_ok(&["sync", &src, "--wait", "--timeout", "30"]);
    assert!(out.contains("done"), "{out}");
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let stderr = daemon.ctl_fails(1, &["sync", "/nonexistent/watch"]);
    assert!(stderr.contains("is not watched"), "{stderr}");
}

#[test]
fn pause_records_changes_and_resume_syncs_them() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let src = fx.src.display().to_string();
    daemon.ctl_ok(&["pause", &src]);
    fs::write(fx.src.join("while-paused"), "held").unwrap();
    fs::remove_file(fx.src.join("while-paused")).unwrap();
    fs::write(fx.src.join("kept"), "kept").unwrap();
    let stderr = daemon.ctl_fails(1, &["wait", "--timeout", "0.5"]);
    assert!(stderr.contains("still busy"), "{stderr}");
    let status = daemon.status();
    assert_eq!(status["watches"][0]["paused"], true);
    assert_eq!(
        status["watches"][0]["targets"][0]["state"], "paused",
        "{status}"
    );
    assert!(
        status["watches"][0]["pending"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert!(!fx.dst.join("kept").exists());
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// 50 MB at 1000 KB/s, then `speed 200`: the running rsync is restarted with the
/// new limit; then `speed 0` lets it finish. The file arrives intact.
#[test]
fn speed_change_restarts_a_running_transfer() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.counted_config(0.0));
    daemon.wait_idle();
    daemon.ctl_ok(&["speed", "1000"]);
    let big = fx.path("big.bin");
    let data: Vec<u8> = (0..50 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(&big, &data).unwrap();
    let before = fx.rsync_calls().len();
    fs::rename(&big, fx.src.join("big.bin")).unwrap();
    let started = poll_until(Duration::from_secs(20), || {
        fx.rsync_calls().len() > before && daemon.status()["running"] == 1
    });
    assert!(started, "transfer did not start\n{}", daemon.log());
    assert!(fx.rsync_calls().last().unwrap().contains("--bwlimit=1000"));

    daemon.ctl_ok(&["speed", "200"]);
    let restarted = poll_until(Duration::from_secs(30), || {
        fx.rsync_calls()
            .iter()
            .skip(before)
            .any(|c| c.contains("--bwlimit=200"))
    });
    assert!(
        restarted,
        "no restart with --bwlimit=200: {:?}\n{}",
        fx.rsync_calls(),
        daemon.log()
    );
    assert!(
        daemon
            .log()
            .contains("restarting the running transfer with --bwlimit=200")
    );
    assert_eq!(daemon.status()["watches"][0]["targets"][0]["failures"], 0);

    // A transfer running for more than a second shows its progress.
    let progress = poll_until(Duration::from_secs(20), || {
        let status = daemon.status();
        let p = &status["watches"][0]["targets"][0]["progress"];
        p["bytes_done"].as_u64().is_some_and(|b| b > 0)
            && p["percent"].as_u64().is_some_and(|p| p <= 100)
    });
    assert!(progress, "no progress in status: {}", daemon.status());
    assert!(daemon.ctl_ok(&["status"]).contains("ETA"));
    // Not a terminal here: `wait --progress` prints plain lines, then times out.
    let out = daemon.ctl(&["wait", "--progress", "--timeout", "1.5"]);
    assert_eq!(out.status.code(), Some(1));
    let lines = String::from_utf8_lossy(&out.stdout);
    assert!(
        lines.contains("1 rsync running") && lines.contains("ETA"),
        "{lines}"
    );

    daemon.ctl_ok(&["speed", "0"]);
    daemon.wait_idle();
    let arrived = fs::read(fx.dst.join("big.bin")).unwrap();
    assert!(arrived == data, "big.bin differs on the target");
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    // A restart we asked for is not a warning: rsync's own "received SIGUSR1
    // (code 19)" lines are kept at debug level.
    let log = daemon.log();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && (l.contains("code 19") || l.contains("code 20")))
        .collect();
    assert!(warned.is_empty(), "{warned:#?}");
}

#[test]
fn reload_and_sighup_apply_config_changes_without_resyncing_the_rest() {
    let fx = Fixture::new();
    let second = fx.path("second");
    fs::create_dir(&second).unwrap();
    fs::write(second.join("s"), "second tree").unwrap();
    let config_path = fx.path("inosync.toml");
    let wrapper = fx.rsync_wrapper();
    let base = format!(
        "delay = 0\nrsync = \"{}\"\ntargets = [\"{}/\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"/first\"\ndelay = 3600\n",
        wrapper.display(),
        fx.dst.display(),
        fx.src.display()
    );
    let daemon = fx.start_toml(&base);
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
    // A change held by the long delay must survive the reload.
    fs::write(fx.src.join("held"), "pending across reload").unwrap();
    let seen = poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][0]["pending"] == 1
    });
    assert!(seen, "the change was never pending: {}", daemon.status());
    let runs_before = fx.rsync_calls().len();

    let with_second = format!(
        "{base}\n[[watch]]\npath = \"{}\"\nremote_path = \"/second\"\n",
        second.display()
    );
    fs::write(&config_path, &with_second).unwrap();
    let out = daemon.ctl_ok(&["reload"]);
    assert!(
        out.contains("1 watch(es) added") && out.contains("1 unchanged"),
        "{out}"
    );
    let second_synced = poll_until(Duration::from_secs(20), || fx.dst.join("second/s").exists());
    assert!(second_synced, "{}", daemon.log());
    let status = daemon.status();
    assert_eq!(
        status["watches"][0]["pending"], 1,
        "pending change lost: {status}"
    );
    let new_runs: Vec<String> = fx.rsync_calls().into_iter().skip(runs_before).collect();
    assert!(
        new_runs.iter().all(|c| c.contains("/second")),
        "unchanged watch resynced: {new_runs:?}"
    );

    // SIGHUP with the second watch gone again: it is removed.
    fs::write(&config_path, &base).unwrap();
    // SAFETY: plain kill(2) on the daemon under test.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) };
    let removed = poll_until(Duration::from_secs(20), || {
        daemon.status()["watches"].as_array().map(Vec::len) == Some(1)
    });
    assert!(removed, "{}", daemon.log());
    assert!(daemon.log().contains("SIGHUP"));

    // A broken config is refused and the old one stays in force.
    fs::write(&config_path, "delay = \"soon\"\n").unwrap();
    let stderr = daemon.ctl_fails(1, &["reload"]);
    assert!(stderr.contains("delay"), "{stderr}");
    assert_eq!(daemon.status()["watches"].as_array().map(Vec::len), Some(1));
}

/// Exclude patterns go to every rsync on its command line, which the kernel
/// limits (`E2BIG`): a list too long for it, or a pattern longer than any
/// path, is refused at `--check`, `reload` and `add`, naming the problem. It
/// was taken, and every run then failed "Argument list too long" for good (a
/// black-box attack).
#[test]
fn excludes_too_long_for_rsyncs_command_line_are_refused() {
    let fx = Fixture::new();
    let config_path = fx.path("inosync.toml");
    let config = |excludes: &[String]| {
        let quoted: Vec<String> = excludes.iter().map(|p| format!("\"{p}\"")).collect();
        format!(
            "delay = 0\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\nexcludes = [{}]\n",
            fx.src.display(),
            fx.dst.display(),
            quoted.join(", ")
        )
    };
    let many: Vec<String> = (0..60_000).map(|i| format!("cache-{i:06}-*.tmp")).collect();
    let long = vec!["x".repeat(5000)];
    for (excludes, named) in [(&many, "60000 exclude patterns"), (&long, "5000 bytes")] {
        fs::write(&config_path, config(excludes)).unwrap();
        let out = std::process::Command::new(inosync_tests::bin("inosyncd"))
            .arg("--config")
            .arg(&config_path)
            .arg("--check")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--check took it: {stderr}");
        assert!(stderr.contains(named), "{stderr}");
    }
    let daemon = fx.start_toml(&config(&["*.tmp".to_string()]));
    daemon.wait_idle();
    for excludes in [&many, &long] {
        fs::write(&config_path, config(excludes)).unwrap();
        daemon.ctl_fails(1, &["reload"]);
    }
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let other_target = fx.path("other-dst");
    let stderr = daemon.ctl_fails(
        1,
        &[
            "add",
            other.to_str().unwrap(),
            "--target",
            other_target.to_str().unwrap(),
            "--exclude",
            &long[0],
        ],
    );
    assert!(stderr.contains("5000 bytes"), "{stderr}");
    // The old config stays in force: changes still arrive.
    fs::write(fx.src.join("after"), "x").unwrap();
    daemon.wait_idle();
    assert!(fx.dst.join("after").exists(), "{}", daemon.log());
}

/// A reload whose global excludes, with those of a watch added at runtime,
/// would not fit on rsync's command line is refused before anything of it is
/// in force (a review: the config's settings were already applied when the
/// runtime watch's excludes were refused).
#[test]
fn a_reload_too_long_for_a_runtime_watchs_excludes_changes_nothing() {
    let fx = Fixture::new();
    let config_path = fx.path("inosync.toml");
    let config = |delay: u32, excludes: &[String]| {
        let quoted: Vec<String> = excludes.iter().map(|p| format!("\"{p}\"")).collect();
        format!(
            "delay = {delay}\nexcludes = [{}]\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n",
            quoted.join(", "),
            fx.src.display(),
            fx.dst.display(),
        )
    };
    let daemon = fx.start_toml(&config(0, &[]));
    daemon.wait_idle();
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let other_target = fx.path("other-dst");
    // 119 bytes each on the command line: 357,000 bytes, within a quarter
    // of the usual 2 MiB ARG_MAX; with the global ones, 597,000 past it.
    let own: Vec<String> = (0..3000).map(|i| format!("{i:0>100}")).collect();
    let mut add = vec![
        "add".to_string(),
        other.display().to_string(),
        "--target".to_string(),
        other_target.display().to_string(),
    ];
    for pattern in &own {
        add.extend(["--exclude".to_string(), pattern.clone()]);
    }
    daemon.ctl_ok(&add.iter().map(String::as_str).collect::<Vec<_>>());
    let global: Vec<String> = (0..2000).map(|i| format!("g{i:0>100}")).collect();
    fs::write(&config_path, config(7, &global)).unwrap();
    let stderr = daemon.ctl_fails(1, &["reload"]);
    assert!(stderr.contains("exclude patterns"), "{stderr}");
    assert_eq!(daemon.status()["delay"], 0.0, "{}", daemon.log());
}

/// A reload whose config spells a target otherwise (`/m/t/` as `/m/t`,
/// `rsync://h/m/` as `rsync://h/m`) keeps that target's pending changes: it
/// is the same place. It was taken for a new target, whose pair replaced the
/// old one with a full sync comparing sizes and mtimes, and a pending
/// same-size rewrite with its mtime kept never arrived while `wait` and
/// `verify` said equal (a black-box attack, 12 of 12).
#[test]
fn a_target_spelled_otherwise_by_a_reload_keeps_its_pending_changes() {
    let fx = Fixture::new();
    let mut content: Vec<u8> = (0..500u32).map(|i| (i % 251) as u8).collect();
    fs::write(fx.src.join("f"), &content).unwrap();
    let config_path = fx.path("inosync.toml");
    let config = |target: &str, remote_path: &str| {
        format!(
            "delay = 600\n[[watch]]\npath = \"{}\"\nremote_path = \"{remote_path}\"\ntargets = [\"{target}\"]\n",
            fx.src.display(),
        )
    };
    let dst = fx.dst.display().to_string();
    let (parent, name) = dst.rsplit_once('/').unwrap();
    std::os::unix::fs::symlink(&fx.dst, fx.path("dst-link")).unwrap();
    let link = fx.path("dst-link").display().to_string();
    let daemon = fx.start_toml(&config(&format!("{dst}/"), ""));
    daemon.wait_idle();
    // Each reload names the same directory otherwise than the one before.
    for (target, remote_path) in [
        (dst.clone(), ""),
        (format!("{parent}//{name}/"), ""),
        (format!("{parent}/./{name}"), ""),
        (link.clone(), ""),
        (dst.clone(), "//"),
        (parent.to_string(), &*format!("/{name}/.")),
    ] {
        content = content.iter().map(|b| b.wrapping_add(3)).collect();
        inosync_tests::rewrite_keeping_mtime(&fx.src.join("f"), &content);
        let pending = poll_until(Duration::from_secs(10), || {
            daemon.status()["watches"][0]["pending"] == 1
        });
        assert!(pending, "never pending: {}", daemon.status());
        fs::write(&config_path, config(&target, remote_path)).unwrap();
        daemon.ctl_ok(&["reload"]);
        // The delay is long: nothing went before the reload. A full sync
        // (size and mtime) sends the rewrite only if it is still pending.
        daemon.ctl_ok(&["sync"]);
        daemon.wait_idle();
        assert_eq!(
            fs::read(fx.dst.join("f")).unwrap(),
            content,
            "{target} with remote_path {remote_path:?}: {}",
            daemon.log()
        );
        // The pair goes by the new spelling from now on.
        assert_eq!(
            daemon.status()["watches"][0]["targets"][0]["target"],
            *target
        );
    }
}

/// A config of one watch of the fixture's source, `delay = 0`, mirrored to
/// `target` alone.
fn one_target_config(fx: &Fixture, target: &Path) -> String {
    format!(
        "delay = 0\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n",
        fx.src.display(),
        target.display()
    )
}

/// A fixture whose source holds `f`, with `dst-link` a symlink to the
/// target and `fresh` an empty directory to re-point it to.
fn tree_with_a_linked_target() -> (Fixture, std::path::PathBuf, std::path::PathBuf) {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "tree").unwrap();
    let fresh = fx.path("fresh");
    fs::create_dir(&fresh).unwrap();
    let link = fx.path("dst-link");
    std::os::unix::fs::symlink(&fx.dst, &link).unwrap();
    (fx, fresh, link)
}

/// A reload that names, through no symlink, the directory a pair's symlink
/// now points to keeps the pair (the same directory), and the re-pointed
/// symlink still gets it a full sync: the directory never had the tree.
#[test]
fn a_target_reached_through_a_re_pointed_symlink_gets_the_whole_tree() {
    let (fx, fresh, link) = tree_with_a_linked_target();
    let config_path = fx.path("inosync.toml");
    let config = |target: &Path| one_target_config(&fx, target);
    let daemon = fx.start_toml(&config(&link));
    daemon.wait_idle();
    assert_eq!(fs::read(fx.dst.join("f")).unwrap(), b"tree");
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&fresh, &link).unwrap();
    fs::write(&config_path, config(&fresh)).unwrap();
    daemon.ctl_ok(&["reload"]);
    daemon.wait_idle();
    assert_eq!(
        fs::read(fresh.join("f")).ok().as_deref(),
        Some(&b"tree"[..]),
        "{}",
        daemon.log()
    );
}

/// A target a reload names otherwise (here through a symlink to it) keeps
/// the place it was first written to: a symlink re-pointed before its next
/// run is still refused, not written through with only the changed paths (a
/// review: the place was kept under the old name only).
#[test]
fn a_respelled_target_still_refuses_a_symlink_re_pointed_after_the_reload() {
    let (fx, fresh, link) = tree_with_a_linked_target();
    let config_path = fx.path("inosync.toml");
    let config = |target: &Path| one_target_config(&fx, target);
    let daemon = fx.start_toml(&config(&fx.dst));
    daemon.wait_idle();
    fs::write(&config_path, config(&link)).unwrap();
    daemon.ctl_ok(&["reload"]);
    daemon.wait_idle();
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&fresh, &link).unwrap();
    fs::write(fx.src.join("g"), "changed").unwrap();
    let refused = poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][0]["targets"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("now leads to"))
    });
    assert!(refused, "{}\n{}", daemon.status(), daemon.log());
    assert!(
        !fresh.join("g").exists(),
        "written through the re-pointed link"
    );
}

/// Two targets that lead to one directory after a symlink was re-pointed,
/// and a config that names only one: one pair is left, not two rsyncs
/// writing into one directory (a review: every pair that matched any
/// target was kept).
#[test]
fn two_targets_led_into_one_directory_leave_one_pair() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "tree").unwrap();
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let link = fx.path("other-link");
    std::os::unix::fs::symlink(&other, &link).unwrap();
    let config_path = fx.path("inosync.toml");
    let config = |targets: &[&Path]| {
        let quoted: Vec<String> = targets
            .iter()
            .map(|t| format!("\"{}/\"", t.display()))
            .collect();
        format!(
            "delay = 0\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [{}]\n",
            fx.src.display(),
            quoted.join(", ")
        )
    };
    let daemon = fx.start_toml(&config(&[&fx.dst, &link]));
    daemon.wait_idle();
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&fx.dst, &link).unwrap();
    fs::write(&config_path, config(&[&fx.dst])).unwrap();
    daemon.ctl_ok(&["reload"]);
    daemon.wait_idle();
    let status = daemon.status();
    assert_eq!(
        status["watches"][0]["targets"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
}

/// `status --json` keeps its documented field names; the table shows every pair.
#[test]
fn status_json_holds_the_spec_fields_for_two_watches_and_two_targets() {
    let fx = Fixture::new();
    let second = fx.path("second");
    fs::create_dir(&second).unwrap();
    let other_target = fx.path("dst2");
    let config = format!(
        "delay = 0\ntargets = [\"{}/\", \"{}/\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"/one\"\n\
         excludes = [\"*.tmp\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"/two\"\n",
        fx.dst.display(),
        other_target.display(),
        fx.src.display(),
        second.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    let status = daemon.status();
    for key in [
        "version",
        "pid",
        "speed",
        "delay",
        "max_parallel",
        "watches",
    ] {
        assert!(
            status.get(key).is_some(),
            "missing top-level {key}: {status}"
        );
    }
    let watches = status["watches"].as_array().unwrap();
    assert_eq!(watches.len(), 2);
    for watch in watches {
        for key in [
            "path",
            "remote_path",
            "paused",
            "pending",
            "watched_dirs",
            "excludes",
            "targets",
        ] {
            assert!(watch.get(key).is_some(), "missing watch {key}: {watch}");
        }
        let targets = watch["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 2);
        for target in targets {
            for key in ["target", "state", "last_sync", "last_error", "failures"] {
                assert!(target.get(key).is_some(), "missing target {key}: {target}");
            }
            assert_eq!(target["state"], "idle");
            assert!(
                target["last_sync"]
                    .as_str()
                    .is_some_and(|t| t.ends_with('Z')),
                "{target}"
            );
            assert!(target["last_error"].is_null());
        }
    }
    let table = daemon.ctl_ok(&["status"]);
    assert_eq!(table.matches(" idle ").count(), 4, "{table}");
    let one = daemon.ctl_ok(&["--json", "status", &second.display().to_string()]);
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["watches"].as_array().map(Vec::len), Some(1));
}

/// A runtime value can be undone, and `reload` says which ones still win over
/// the file it just read (before, "0 changed" while the old speed silently won).
#[test]
fn runtime_values_are_named_by_reload_and_undone_by_reset() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config("speed = 100"));
    daemon.wait_idle();
    daemon.ctl_ok(&["speed", "500"]);
    let src = fx.src.display().to_string();
    daemon.ctl_ok(&["delay", "3", "--watch", &src]);
    let reloaded = daemon.ctl_ok(&["reload"]);
    assert!(
        reloaded.contains("runtime speed 500 KB/s overrides the config's 100"),
        "{reloaded}"
    );
    assert!(
        reloaded.contains(&format!("runtime delay 3 s overrides the config for {src}")),
        "{reloaded}"
    );
    let speed: serde_json::Value =
        serde_json::from_str(&daemon.ctl_ok(&["--json", "speed", "--reset"])).unwrap();
    assert_eq!(
        (speed["value"].as_f64(), speed["source"].as_str()),
        (Some(100.0), Some("config"))
    );
    daemon.ctl_ok(&["delay", "--reset", "--watch", &src]);
    let status = daemon.status();
    assert_eq!(status["watches"][0]["delay_source"], "global", "{status}");
    let reloaded = daemon.ctl_ok(&["reload"]);
    assert!(!reloaded.contains("overrides"), "{reloaded}");
    let log = daemon.log();
    assert!(
        log.contains("speed 500 KB/s (every watch) requested by uid"),
        "{log}"
    );
    assert!(
        log.contains("speed reset (every watch) requested by uid"),
        "{log}"
    );
}

/// A SIGHUP and a SIGUSR1 as soon as the daemon has said its first word (a
/// `systemctl reload` right after a start, logrotate): a reload and a reopen
/// once it serves, never the default action that ends the process (found by a
/// black-box attack: exit 129 in the first milliseconds, after the sandbox
/// line was logged; SIGUSR1 by a review).
#[test]
fn a_sighup_during_the_start_up_does_not_end_the_daemon() {
    for round in 0..3 {
        let fx = Fixture::new();
        // Start-up takes a while: inotify watches every directory first.
        for d in 0..3000 {
            fs::create_dir(fx.src.join(format!("d{d}"))).unwrap();
        }
        let log = fx.path("inosyncd.log");
        let mut child = Command::new(bin("inosyncd"))
            .arg(&fx.src)
            .arg(&fx.dst)
            .arg("-s")
            .arg(&fx.socket)
            .args(["--backend", "inotify"])
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let spoke = poll_until(Duration::from_secs(10), || {
            fs::metadata(&log).is_ok_and(|m| m.len() > 0)
        });
        assert!(spoke, "round {round}: no log line");
        // SAFETY: signals to our own child (logrotate's is SIGUSR1).
        unsafe {
            libc::kill(child.id() as i32, libc::SIGHUP);
            libc::kill(child.id() as i32, libc::SIGUSR1);
        }
        let answers = poll_until(Duration::from_secs(10), || {
            inosync_tests::ctl_at(&fx.socket, &["status"])
                .status
                .success()
        });
        let exited = child.try_wait().unwrap();
        inosync_tests::processes::kill_with_children(&mut child);
        assert!(
            answers && exited.is_none(),
            "round {round}: {exited:?}\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

/// `--backend` on the command line wins over the config, also across a
/// `reload`: the reload has no backend change to report (found by a black-box
/// attack: it said "`backend` changed: takes effect after a restart").
#[test]
fn a_reload_keeps_the_command_lines_backend_and_says_nothing_of_it() {
    let fx = Fixture::new();
    let config = fx.path("inosync.toml");
    fs::write(&config, fx.simple_config("")).unwrap();
    let daemon = fx.start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "--backend".as_ref(),
        "inotify".as_ref(),
    ]);
    daemon.wait_idle();
    let out = daemon.ctl_ok(&["reload"]);
    assert!(!out.contains("backend"), "{out}");
    assert_eq!(
        daemon.status()["watches"][0]["backend"],
        "inotify",
        "{}",
        daemon.status()
    );
}
