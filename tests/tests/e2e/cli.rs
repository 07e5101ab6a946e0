//! Command-line behaviour: quick start, --pretend, --daemon, and inosyncctl without
//! a daemon.

use std::fs;
use std::process::Command;
use std::time::Duration;

use inosync_tests::{Fixture, assert_trees_equal, bin, poll_until, run_ok};

#[test]
fn quick_start_mirrors_source_to_target() {
    let fx = Fixture::new();
    fs::write(fx.src.join("hello"), "world").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    fs::write(fx.src.join("second"), "2").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

#[test]
fn pretend_logs_the_argv_and_leaves_the_target_alone() {
    let fx = Fixture::new();
    fs::write(fx.src.join("before"), "b").unwrap();
    let daemon = fx.start(&[
        "-p".as_ref(),
        "--delay".as_ref(),
        "0".as_ref(),
        fx.src.as_os_str(),
        fx.dst.as_os_str(),
    ]);
    daemon.wait_idle();
    fs::write(fx.src.join("odd name.txt"), "x").unwrap();
    daemon.wait_idle();
    assert_eq!(
        fs::read_dir(&fx.dst).unwrap().count(),
        0,
        "pretend touched the target"
    );
    let log = daemon.log();
    assert!(log.contains("would run"), "{log}");
    // (Into an empty target: without --delete, nothing there to delete.)
    assert!(
        log.contains("would run (whole tree)"),
        "initial full sync not shown: {log}"
    );
    assert!(log.contains("--relative"), "batch not shown: {log}");
    assert!(log.contains("odd name.txt"), "listed path not shown: {log}");
}

#[test]
fn daemon_mode_detaches_after_start_up_and_reports_failures() {
    let fx = Fixture::new();
    let pid_file = fx.path("inosyncd.pid");
    run_ok(
        Command::new(bin("inosyncd"))
            .args(["-d", "--delay", "0", "--pid-file"])
            .arg(&pid_file)
            .arg("-s")
            .arg(&fx.socket)
            .arg("--state")
            .arg(fx.state_file())
            .arg(&fx.src)
            .arg(&fx.dst),
    );
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let guard = KillOnDrop(pid);

    // A second daemon on the same socket fails, on the terminal, with exit 1.
    let second = Command::new(bin("inosyncd"))
        .args(["-d", "-s"])
        .arg(&fx.socket)
        .arg(&fx.src)
        .arg(&fx.dst)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already running"), "{stderr}");

    // The first one still serves and syncs.
    fs::write(fx.src.join("f"), "x").unwrap();
    let waited = Command::new(bin("inosyncctl"))
        .arg("-s")
        .arg(&fx.socket)
        .args(["wait", "--timeout", "30"])
        .status()
        .unwrap();
    assert!(waited.success());
    assert_eq!(fs::read_to_string(fx.dst.join("f")).unwrap(), "x");

    // SIGTERM: exits, removing its socket and pid file.
    drop(guard);
    assert!(poll_until(Duration::from_secs(20), || !fx.socket.exists()
        && !pid_file.exists()));
}

struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(self.0, libc::SIGTERM) };
    }
}

#[test]
fn inosyncctl_without_daemon_exits_3_naming_the_socket() {
    let fx = Fixture::new();
    let out = Command::new(bin("inosyncctl"))
        .arg("-s")
        .arg(&fx.socket)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!(
            "inosyncd is not running: no socket at {}",
            fx.socket.display()
        )
    );
}

/// Something that is not a socket at the socket path (inosyncd refuses to
/// replace it): inosyncctl says what it is and that inosyncd will not start
/// on it, never "stale socket ... the next start replaces it".
#[test]
fn inosyncctl_names_what_is_at_the_socket_path_when_it_is_not_a_socket() {
    let fx = Fixture::new();
    let ask = || {
        Command::new(bin("inosyncctl"))
            .arg("-s")
            .arg(&fx.socket)
            .arg("status")
            .output()
            .unwrap()
    };
    std::fs::write(&fx.socket, "not a socket").unwrap();
    let out = ask();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "inosyncd is not running: {} is a regular file, not a socket (inosyncd will not \
             start on it: remove it, or use --socket)",
            fx.socket.display()
        )
    );
    std::fs::remove_file(&fx.socket).unwrap();
    run_ok(Command::new("mkfifo").arg(&fx.socket));
    let stderr = String::from_utf8_lossy(&ask().stderr).into_owned();
    assert!(stderr.contains(" is a FIFO, not a socket"), "{stderr}");
}

/// After a crash the socket file stays: the message says it is stale, not missing.
#[test]
fn inosyncctl_after_a_crash_names_the_stale_socket() {
    let fx = Fixture::new();
    let daemon = fx.start(&[fx.src.as_os_str(), fx.dst.as_os_str()]);
    daemon.wait_idle();
    // SAFETY: plain kill(2) on the daemon this test started.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGKILL) };
    let gone = inosync_tests::poll_until(std::time::Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{}", daemon.pid())).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", daemon.pid()))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone);
    assert!(fx.socket.exists(), "the socket file stays after SIGKILL");
    // A killed process shows as a zombie while its other threads still close
    // its files (the listening socket among them): ask until nobody listens.
    let ask = || {
        Command::new(bin("inosyncctl"))
            .arg("-s")
            .arg(&fx.socket)
            .arg("status")
            .output()
            .unwrap()
    };
    let mut out = ask();
    inosync_tests::poll_until(std::time::Duration::from_secs(10), || {
        out = ask();
        out.status.code() == Some(3)
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "inosyncd is not running: stale socket at {}",
            fx.socket.display()
        )),
        "{stderr}"
    );
}

#[test]
fn sigterm_stops_cleanly() {
    let fx = Fixture::new();
    let mut daemon = fx.start(&[fx.src.as_os_str(), fx.dst.as_os_str()]);
    daemon.wait_idle();
    let status = daemon.terminate();
    assert!(status.success(), "{status}\n{}", daemon.log());
    assert!(!fx.socket.exists(), "socket left behind");
}

#[test]
fn shell_completions_need_no_daemon_and_parse() {
    for (shell, marker) in [
        ("bash", "complete -F _inosyncctl"),
        ("zsh", "#compdef inosyncctl"),
        ("fish", "complete -c inosyncctl"),
    ] {
        let out = Command::new(bin("inosyncctl"))
            .args(["-s", "/nonexistent/inosync.sock", "completions", shell])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains(marker) && script.contains("reload"),
            "{shell}: {script}"
        );
    }
    let fx = Fixture::new();
    let script = Command::new(bin("inosyncctl"))
        .args(["completions", "bash"])
        .output()
        .unwrap()
        .stdout;
    fs::write(fx.path("completion.bash"), script).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(fx.path("completion.bash"))
        .status()
        .unwrap();
    assert!(syntax.success(), "bash completion script does not parse");
}

#[test]
fn manual_pages_render_without_warnings() {
    let fx = Fixture::new();
    let dir = fx.path("man");
    assert!(
        Command::new(bin("inosyncd"))
            .arg("--man-pages")
            .arg(&dir)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new(bin("inosyncctl"))
            .arg("--man-pages")
            .arg(&dir)
            .status()
            .unwrap()
            .success()
    );
    for (page, expected) in [
        (
            "man8/inosyncd.8",
            &[
                "pretend",
                "EXIT STATUS",
                "SIGNALS",
                "SIGUSR1",
                "ENVIRONMENT",
                "FILES",
            ][..],
        ),
        // Every subcommand's options on the one page shipped, and no reference
        // to pages that are not (inosyncctl-add(8) and the like).
        (
            "man8/inosyncctl.8",
            &[
                "reload",
                "--reset",
                "--wide",
                "EXIT STATUS",
                "ENVIRONMENT",
                "FILES",
            ][..],
        ),
        (
            "man5/inosync.toml.5",
            &[
                "full_sync_interval",
                "backend",
                "sandbox",
                "metrics_listen",
                "rsync_args",
            ][..],
        ),
    ] {
        let out = Command::new("groff")
            // Plain text: no overstrike bold or underline in the way of `contains`.
            .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
            .arg(dir.join(page))
            .output()
            .expect("groff (package groff-base) is installed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for expected in expected {
            assert!(text.contains(expected), "{page}: no {expected:?}: {text}");
        }
        assert!(
            !text.contains("inosyncctl-"),
            "{page}: a page that is not shipped: {text}"
        );
    }
}

/// `inosyncctl ... | head`: when the reader goes away the client ends quietly
/// (SIGPIPE, as other tools), with nothing on stderr and no panic.
#[test]
fn a_closed_pipe_ends_inosyncctl_quietly() {
    let fx = Fixture::new();
    let daemon = fx.start(&[fx.src.as_os_str(), fx.dst.as_os_str()]);
    daemon.wait_idle();
    for args in [vec!["completions", "bash"], vec!["metrics"], vec!["status"]] {
        let mut child = Command::new(bin("inosyncctl"))
            .arg("-s")
            .arg(&fx.socket)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before anything was written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: panicked");
    }
}

/// A bad value is a usage error (exit 2) found before the daemon is asked: the
/// socket is never tried.
#[test]
fn bad_values_are_usage_errors_before_any_connection() {
    for args in [
        vec!["delay", "-1"],
        vec!["delay", "NaN"],
        // Past the daemon's own bound (found by a black-box attack: the
        // daemon refused it with exit 1, "not a number of seconds >= 0").
        vec!["delay", "1e10"],
        vec!["delay", "1e300"],
        vec!["add", "/tmp", "--delay=-0.5"],
        vec!["add", "/tmp", "--delay=4e9"],
        vec!["wait", "--timeout=-3"],
    ] {
        let out = Command::new(bin("inosyncctl"))
            .args(["-s", "/nonexistent/inosync.sock"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("seconds"), "{args:?}: {stderr}");
        assert!(!stderr.contains("not running"), "{args:?}: {stderr}");
        assert!(stderr.len() < 400, "{args:?}: {stderr}");
    }
}

/// No config and no arguments: the error says there is a quick start.
#[test]
fn a_missing_config_mentions_the_quick_start() {
    let stderr =
        inosync_tests::refused_start(&["-c".as_ref(), "/nonexistent/inosync.toml".as_ref()]);
    assert!(stderr.contains("inosyncd SOURCE TARGET"), "{stderr}");
}

#[test]
fn output_to_a_reader_that_went_away_ends_quietly_with_141() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(bin("inosyncctl"))
        .args(["completions", "bash"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run inosyncctl");
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A socket path longer than a Unix socket address holds: `inosyncctl` says so
/// as a usage error (exit 2, not "not reachable"), and `inosyncd` refuses it
/// before making anything for it (found by a black-box attack: the daemon
/// made the long directory, then failed; the client exited 3).
#[test]
fn a_socket_path_too_long_for_a_unix_socket_is_a_usage_error() {
    let fx = Fixture::new();
    let dir = fx.path(&"d".repeat(120));
    let socket = dir.join("inosyncd.sock");
    let out = Command::new(bin("inosyncctl"))
        .arg("-s")
        .arg(&socket)
        .arg("status")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("at most 107"), "{stderr}");
    let stderr = inosync_tests::refused_start(&[
        fx.src.as_os_str(),
        fx.dst.as_os_str(),
        "-s".as_ref(),
        socket.as_os_str(),
    ]);
    assert!(stderr.contains("at most 107"), "{stderr}");
    assert!(!dir.exists(), "the daemon made {}", dir.display());
}
