//! First-run hints: what a new administrator is told when something is
//! missing, and whether the command it names works.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use inosync_tests::{Fixture, bin, ctl_at, poll_until, refused_start};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The demo on a machine with rsync but no Rust toolchain: it says what to
/// install, as it does for rsync, instead of `cargo: command not found`.
#[test]
fn the_demo_without_cargo_says_how_to_get_it() {
    let fx = Fixture::new();
    // A PATH with the system's tools (rsync among them) and no cargo.
    let out = Command::new(repo().join("contrib/demo"))
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env_remove("CARGO")
        .current_dir(fx.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("command not found"), "{stderr}");
    assert!(stderr.contains("cargo"), "{stderr}");
    assert!(stderr.contains("rustup"), "{stderr}");
}

/// An idle daemon names a command that works; `add` without a target says
/// how to give one; that command then works. Under fanotify the watch's log
/// line does not claim 0 directories.
#[test]
fn the_idle_daemons_hint_names_a_command_that_works() {
    let fx = Fixture::new();
    let daemon = fx.start_toml("delay = 0\n");
    let status = daemon.ctl_ok(&["status"]);
    let hint = "inosyncctl add PATH --target DEST";
    assert!(status.contains(hint), "{status}");
    let log = daemon.log();
    assert!(log.contains(hint), "the idle start says it too: {log}");

    let src = fx.src.to_str().unwrap();
    let refused = daemon.ctl_fails(1, &["add", src]);
    assert!(refused.contains("--target DEST"), "{refused}");

    daemon.ctl_ok(&["add", src, "--target", fx.dst.to_str().unwrap()]);
    daemon.wait_idle();
    let status = daemon.status();
    let line = daemon
        .log()
        .lines()
        .find(|l| l.contains(&format!("watching {src}")))
        .map(String::from)
        .unwrap_or_default();
    if status["watches"][0]["backend"] == "fanotify" {
        assert!(!line.contains("0 directories"), "{line}");
        assert!(line.contains("fanotify"), "{line}");
    } else {
        assert!(line.contains("directories"), "{line}");
    }
}

/// The packaged /etc/inosync/inosync.toml shows every default as `--check`
/// prints it (a key `--check` leaves out is not set by default: shown `""`).
#[test]
fn the_packaged_config_shows_the_real_defaults() {
    let packaged = repo().join("contrib/debian/inosync.toml");
    let text = fs::read_to_string(&packaged).unwrap();
    let shown: Vec<(String, String)> = text
        .lines()
        .take_while(|l| !l.starts_with("#[[watch]]"))
        .filter_map(|l| {
            let l = l.strip_prefix('#')?;
            let (key, value) = l.split_once(" = ")?;
            if key.contains(' ') {
                return None;
            }
            let value = value.split("  #").next().unwrap_or(value).trim();
            Some((key.to_string(), value.to_string()))
        })
        .collect();
    let out = Command::new(bin("inosyncd"))
        .arg("--check")
        .arg("-c")
        .arg(&packaged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (key, value) in &checked {
        if key == "rsync" {
            continue; // --check prints the binary it found in PATH
        }
        assert!(
            shown.iter().any(|(k, v)| k == key && v == value),
            "the packaged config does not show `{key} = {value}` (as --check does): {shown:?}"
        );
    }
    for (key, value) in &shown {
        if !checked.iter().any(|(k, _)| k == key) {
            assert_eq!(value, "\"\"", "{key} is not set by default: {shown:?}");
        }
    }
}

/// `[watch]` (one table) where `[[watch]]` (an array of tables) is meant.
#[test]
fn a_single_bracket_watch_says_write_double_brackets() {
    let fx = Fixture::new();
    let config = fx.path("single.toml");
    fs::write(
        &config,
        format!("[watch]\npath = \"{}\"\n", fx.src.display()),
    )
    .unwrap();
    let stderr = refused_start(&["--check".as_ref(), "-c".as_ref(), config.as_os_str()]);
    assert!(stderr.contains("write [[watch]]"), "{stderr}");
}

/// logrotate's fallback, where systemctl cannot signal the service, signals
/// the daemon of the system socket only: not every inosyncd on the host.
#[test]
fn the_logrotate_fallback_signals_only_its_daemon() {
    let snippet = fs::read_to_string(repo().join("contrib/logrotate/inosyncd")).unwrap();
    assert!(!snippet.contains("pkill"), "{snippet}");
    let script: String = snippet
        .lines()
        .skip_while(|l| !l.trim().starts_with("postrotate"))
        .skip(1)
        .take_while(|l| !l.trim().starts_with("endscript"))
        .collect::<Vec<_>>()
        .join("\n");

    let fx = Fixture::new();
    let ours_log = fx.path("ours.log");
    let other_log = fx.path("other.log");
    let ours = fx.start_toml(&format!("log_file = \"{}\"\n", ours_log.display()));
    let other_dir = fx.path("other");
    fs::create_dir(&other_dir).unwrap();
    let other = fx.start_second(
        "other",
        &format!("log_file = \"{}\"\n", other_log.display()),
    );
    // No systemd here: `systemctl` fails, as on a host without it.
    let tools = fx.path("tools");
    fs::create_dir(&tools).unwrap();
    fs::write(tools.join("systemctl"), "#!/bin/sh\nexit 1\n").unwrap();
    fs::set_permissions(tools.join("systemctl"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(bin("inosyncctl"), tools.join("inosyncctl")).unwrap();

    fs::rename(&ours_log, fx.path("ours.log.1")).unwrap();
    let ran = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", format!("{}:/usr/bin:/bin", tools.display()))
        .env("INOSYNC_SOCKET", &ours.socket)
        .status()
        .unwrap();
    assert!(ran.success());
    let reopened = poll_until(Duration::from_secs(10), || {
        fs::read_to_string(&ours_log).is_ok_and(|l| l.contains("reopened"))
    });
    assert!(reopened, "{script}");
    assert!(ctl_at(&other.socket, &["status"]).status.success());
    assert!(
        !fs::read_to_string(&other_log)
            .unwrap_or_default()
            .contains("SIGUSR1"),
        "another daemon was signalled"
    );
}
