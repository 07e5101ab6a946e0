//! A second daemon, the daemon's own files, socket_group, the ssh directory,
//! and a quick start's state.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use inosync_tests::{Fixture, bin, poll_until, refused_start, run_ok};

use super::s;

// 4. A second daemon.

#[test]
fn a_second_daemon_on_the_same_socket_starts_nothing() {
    let fx = Fixture::new();
    let daemon = fx.start(&[fx.src.as_os_str(), fx.dst.as_os_str()]);
    daemon.wait_idle();
    let src2 = fx.path("src2");
    let dst2 = fx.path("dst2");
    fs::create_dir(&src2).unwrap();
    fs::create_dir(&dst2).unwrap();
    fs::write(src2.join("new"), "must not be copied").unwrap();
    fs::write(dst2.join("precious"), "must not be deleted").unwrap();
    for _ in 0..5 {
        let stderr = refused_start(&[
            "-s".as_ref(),
            fx.socket.as_os_str(),
            "--state".as_ref(),
            fx.path("state2.toml").as_os_str(),
            src2.as_os_str(),
            dst2.as_os_str(),
        ]);
        assert!(stderr.contains("already running"), "{stderr}");
    }
    assert!(dst2.join("precious").exists());
    assert!(!dst2.join("new").exists());
    assert!(!fx.path("state2.toml").exists());
    // The first daemon still answers.
    daemon.wait_idle();
}

// 5. The daemon's own files.

#[test]
fn only_a_socket_is_ever_replaced() {
    let fx = Fixture::new();
    let file = fx.path("not-a-socket");
    fs::write(&file, "precious").unwrap();
    let stderr = refused_start(&[
        "-s".as_ref(),
        file.as_os_str(),
        fx.src.as_os_str(),
        fx.dst.as_os_str(),
    ]);
    assert!(stderr.contains("not a socket"), "{stderr}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "precious");
    let fifo = fx.path("fifo");
    run_ok(Command::new("mkfifo").arg(&fifo));
    refused_start(&[
        "-s".as_ref(),
        fifo.as_os_str(),
        fx.src.as_os_str(),
        fx.dst.as_os_str(),
    ]);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn state_and_pid_files_are_never_followed_shared_or_clobbered() {
    let fx = Fixture::new();
    let victim = fx.path("victim");
    fs::write(&victim, "precious").unwrap();
    symlink(&victim, fx.path("state.toml.tmp")).unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.ctl_ok(&["speed", "100"]);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let state = fs::symlink_metadata(fx.state_file()).unwrap();
    assert!(state.is_file());
    assert_eq!(state.mode() & 0o777, 0o600);

    // A second daemon on the same state file (another socket) is refused.
    let config = fx.path("inosync.toml");
    let other_sock = fx.path("second.sock");
    // The config on another socket with this --state (and more arguments).
    let second = |state: &Path, more: &[&OsStr]| {
        let args: Vec<&OsStr> = [
            "-c".as_ref(),
            config.as_os_str(),
            "-s".as_ref(),
            other_sock.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
        ]
        .into_iter()
        .chain(more.iter().copied())
        .collect();
        refused_start(&args)
    };
    let stderr = second(&fx.state_file(), &[]);
    assert!(stderr.contains("in use by another inosyncd"), "{stderr}");
    drop(daemon);

    // --state naming the config file, or a directory: refused, left alone.
    let before = fs::read_to_string(&config).unwrap();
    let stderr = second(&config, &[]);
    assert!(stderr.contains("config file"), "{stderr}");
    assert_eq!(fs::read_to_string(&config).unwrap(), before);
    let dir = fx.path("a-dir");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("inside"), "x").unwrap();
    let stderr = second(&dir, &[]);
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert!(dir.join("inside").exists());

    // A pid file that is a symlink.
    let pid_link = fx.path("inosyncd.pid");
    symlink(&victim, &pid_link).unwrap();
    let stderr = second(
        &fx.state_file(),
        &["--pid-file".as_ref(), pid_link.as_os_str()],
    );
    assert!(stderr.contains("symlink"), "{stderr}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn own_files_are_private_whatever_the_umask() {
    let fx = Fixture::new();
    let config = fx.path("inosync.toml");
    let log = fx.path("logs/inosyncd.log");
    fs::create_dir(fx.path("logs")).unwrap();
    fs::write(
        &config,
        fx.simple_config(&format!("log_file = \"{}\"", s(&log))),
    )
    .unwrap();
    let state = fx.path("state/dir/state.toml");
    let socket = fx.path("run/ctl.sock");
    let pid = fx.path("inosyncd.pid");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(bin("inosyncd"))
        .arg("-c")
        .arg(&config)
        .arg("-s")
        .arg(&socket)
        .arg("--state")
        .arg(&state)
        .arg("--pid-file")
        .arg(&pid)
        .spawn()
        .unwrap();
    let ctl = |args: &[&str]| {
        Command::new(bin("inosyncctl"))
            .arg("-s")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap()
    };
    let up = poll_until(Duration::from_secs(20), || {
        ctl(&["status"]).status.success()
    });
    let changed = ctl(&["pause"]).status.success();
    let mode = |p: &Path| {
        fs::symlink_metadata(p)
            .map(|m| m.mode() & 0o777)
            .unwrap_or(0)
    };
    let modes = [
        (
            state.parent().unwrap().to_path_buf(),
            mode(state.parent().unwrap()),
        ),
        (state.clone(), mode(&state)),
        (log.clone(), mode(&log)),
        (pid.clone(), mode(&pid)),
        (
            socket.parent().unwrap().to_path_buf(),
            mode(socket.parent().unwrap()),
        ),
        (socket.clone(), mode(&socket)),
    ];
    inosync_tests::processes::kill_with_children(&mut child);
    assert!(up && changed);
    let expected = [0o700, 0o600, 0o600, 0o600, 0o700, 0o600];
    for ((path, mode), want) in modes.iter().zip(expected) {
        assert_eq!(*mode, want, "{} has mode {mode:o}", path.display());
    }
}

// 6. socket_group members read and steer; they do not choose paths.

#[test]
fn socket_group_members_steer_but_do_not_choose_what_is_read_or_written() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config("socket_group = \"nogroup\""));
    daemon.wait_idle();
    fs::set_permissions(fx.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let ctl = fx.path("inosyncctl");
    fs::copy(bin("inosyncctl"), &ctl).unwrap();
    fs::set_permissions(&ctl, fs::Permissions::from_mode(0o755)).unwrap();
    let secret = fx.path("root-only");
    fs::create_dir(&secret).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(secret.join("key"), "secret").unwrap();
    let as_member = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&ctl)
            .arg("-s")
            .arg(&fx.socket)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(as_member(&["status"]).status.success());
    assert!(as_member(&["speed", "200"]).status.success());
    assert!(as_member(&["pause"]).status.success());
    assert!(as_member(&["resume"]).status.success());
    assert!(as_member(&["verify"]).status.success());
    let leak = fx.path("leak");
    for args in [
        vec![
            "add",
            secret.to_str().unwrap(),
            "--target",
            leak.to_str().unwrap(),
        ],
        vec!["remove", fx.src.to_str().unwrap()],
        vec!["reload"],
        vec!["sync", fx.src.to_str().unwrap(), "--force"],
        vec!["verify", "--repair"],
    ] {
        let out = as_member(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("needs root or the daemon's user"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!leak.exists());
    assert_eq!(daemon.status()["watches"].as_array().map(Vec::len), Some(1));
}

// 7. The ssh ControlPath directory.

#[test]
fn a_foreign_ssh_control_dir_is_not_used() {
    let fx = Fixture::new();
    let ssh_dir = fx.path("ssh");
    fs::create_dir(&ssh_dir).unwrap();
    fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&ssh_dir, Some(65534), Some(65534)).unwrap();
    let daemon = fx.start(&[fx.src.as_os_str(), fx.dst.as_os_str()]);
    daemon.wait_idle();
    assert!(
        daemon.log().contains("no ssh connection reuse"),
        "{}",
        daemon.log()
    );
    let meta = fs::metadata(&ssh_dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o755));
}

// 8. A quick start keeps no state file.

#[test]
fn a_quick_start_keeps_no_state_file() {
    let fx = Fixture::new();
    let system_state = Path::new("/var/lib/inosync/state.toml");
    let before = fs::read(system_state).ok();
    let daemon = fx.start_raw(&[
        "--delay".as_ref(),
        "0".as_ref(),
        fx.src.as_os_str(),
        fx.dst.as_os_str(),
    ]);
    daemon.ctl_ok(&["speed", "300"]);
    daemon.ctl_ok(&["pause"]);
    assert_eq!(
        fs::read(system_state).ok(),
        before,
        "the service's state file changed"
    );
    assert!(!fx.state_file().exists());
    assert!(
        fs::read_dir(fx.dir.path())
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("state"))
    );
}
