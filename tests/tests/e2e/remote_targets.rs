//! Real remote targets: an rsync daemon that goes away and comes back, and an ssh
//! target receiving odd file names.

use std::fs;
use std::time::Duration;

use inosync_tests::remote::{RsyncDaemon, Sshd};
use inosync_tests::{Fixture, ODD_NAMES, compare_trees, join_bytes, poll_until, write_odd_names};

#[test]
fn rsync_daemon_target_that_goes_away_gets_every_change_when_it_returns() {
    let fx = Fixture::new();
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let mut rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
    fs::write(fx.src.join("before"), "1").unwrap();
    let config = format!(
        "delay = 0\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}\"]\n",
        fx.src.display(),
        rsyncd.url()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    assert_eq!(fs::read_to_string(remote.join("before")).unwrap(), "1");

    rsyncd.stop();
    fs::create_dir(fx.src.join("while-down")).unwrap();
    fs::write(
        fx.src.join("while-down/a"),
        "written while the target was down",
    )
    .unwrap();
    fs::remove_file(fx.src.join("before")).unwrap();
    let reported = poll_until(Duration::from_secs(30), || {
        let status = daemon.status();
        let target = &status["watches"][0]["targets"][0];
        target["state"] == "retrying"
            && target["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("exited with"))
    });
    assert!(reported, "down target not reported: {}", daemon.status());

    rsyncd.restart();
    let converged = poll_until(Duration::from_secs(60), || {
        compare_trees(&fx.src, &remote).is_ok()
    });
    assert!(
        converged,
        "{:?}\n{}",
        compare_trees(&fx.src, &remote),
        daemon.log()
    );
    daemon.wait_idle();
    assert_eq!(daemon.status()["watches"][0]["targets"][0]["failures"], 0);
}

#[test]
fn ssh_target_receives_odd_names() {
    assert!(
        Sshd::available(),
        "sshd is not installed: apt-get install openssh-server (.ci/run does)"
    );
    let fx = Fixture::new();
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let sshd = Sshd::start(fx.dir.path());
    let config = sshd.config("delay = 0", &fx.src, &remote);
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    write_odd_names(&fx.src);
    daemon.wait_idle();
    if let Err(problems) = compare_trees(&fx.src, &remote) {
        panic!("{problems}\n{}", daemon.log());
    }
    for name in &ODD_NAMES[..4] {
        fs::remove_file(join_bytes(&fx.src, name)).unwrap();
    }
    daemon.wait_idle();
    if let Err(problems) = compare_trees(&fx.src, &remote) {
        panic!("{problems}\n{}", daemon.log());
    }
}

/// Syncs to an ssh target share one connection (ControlMaster) unless
/// `ssh_reuse = false`. Prints the median sync time both ways (the figure for the
/// docs; no timing assertion).
#[test]
fn ssh_connection_reuse_saves_a_login_per_sync() {
    assert!(
        Sshd::available(),
        "sshd is not installed: apt-get install openssh-server (.ci/run does)"
    );
    let mut medians = Vec::new();
    for reuse in [true, false] {
        let fx = Fixture::new();
        let remote = fx.path("remote");
        fs::create_dir(&remote).unwrap();
        let sshd = Sshd::start(fx.dir.path());
        let config = sshd.config(&format!("delay = 0\nssh_reuse = {reuse}"), &fx.src, &remote);
        let daemon = fx.start_toml(&config);
        daemon.wait_idle();
        for i in 0..10 {
            fs::write(fx.src.join(format!("f{i}")), format!("{i}")).unwrap();
            daemon.wait_idle();
        }
        if let Err(problems) = compare_trees(&fx.src, &remote) {
            panic!("{problems}\n{}", daemon.log());
        }
        let masters = fs::read_dir(fx.socket.parent().unwrap().join("ssh"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("ssh-"))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(
            masters,
            usize::from(reuse),
            "control sockets with ssh_reuse = {reuse}"
        );
        let mut times: Vec<f64> = daemon
            .log()
            .lines()
            .filter(|l| l.contains("synced in") && l.contains("1 path(s)"))
            .filter_map(|l| {
                l.split("synced in ")
                    .nth(1)?
                    .split(':')
                    .next()
                    .map(String::from)
            })
            .filter_map(|t| t.strip_suffix("ms").and_then(|v| v.parse().ok()))
            .collect();
        times.sort_by(f64::total_cmp);
        medians.push(times.get(times.len() / 2).copied().unwrap_or(f64::NAN));
    }
    eprintln!(
        "one-file sync over loopback ssh: {:.1} ms with connection reuse, {:.1} ms without",
        medians[0], medians[1]
    );
}

/// A directory the source turned into a file, whose copy on an rsync://
/// target holds a file an exclude protects: held, the protected file kept
/// (before: the held path's retry, a list with `--force` and no `--delete`,
/// which makes rsync send no rules to a remote receiver, deleted it; found
/// by a black-box attack).
#[test]
fn a_directory_turned_file_on_a_remote_target_keeps_what_an_exclude_protects() {
    let fx = Fixture::new();
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
    fs::create_dir(fx.src.join("d")).unwrap();
    fs::write(fx.src.join("d/a"), "a").unwrap();
    let config = format!(
        "delay = 0\nexcludes = [\"*.tmp\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}\"]\n",
        fx.src.display(),
        rsyncd.url()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    fs::write(remote.join("d/k.tmp"), "the target's own").unwrap();
    fs::remove_dir_all(fx.src.join("d")).unwrap();
    fs::write(fx.src.join("d"), "now a file").unwrap();
    fs::write(fx.src.join("other"), "arrives").unwrap();
    let held = poll_until(Duration::from_secs(20), || {
        let status = daemon.status();
        status["watches"][0]["targets"][0]["held"][0]["path"] == "d"
            && remote.join("other").exists()
    });
    assert!(held, "{}\n{}", daemon.status(), daemon.log());
    // Its retries come and go: the protected file stays through them.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        fs::read_to_string(remote.join("d/k.tmp")).ok().as_deref(),
        Some("the target's own"),
        "{}",
        daemon.log()
    );
}
