//! The change-notification backends: what `auto` chooses and says, what
//! `fanotify` refuses, and fanotify's own strengths (no watch per directory, so
//! nothing to miss in a directory just created). Every other end-to-end test runs
//! under both backends (`INOSYNC_TEST_BACKEND`, see the README).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use inosync_tests::{Fixture, assert_trees_equal, bin, is_root, poll_until};

use crate::safety::Mount;

/// As root on a tmpfs (fids since Linux 5.13), `auto` is fanotify: no watches at
/// all, and a deep tree made and written at once arrives whole.
#[test]
fn auto_is_fanotify_as_root_on_a_tmpfs_and_misses_nothing_in_new_trees() {
    if !is_root() {
        eprintln!("skipped: fanotify filesystem marks need root");
        return;
    }
    let fx = Fixture::new();
    let _tmpfs = Mount::tmpfs(&fx.src);
    let config = fx.path("inosync.toml");
    fs::write(&config, fx.simple_config("backend = \"auto\"")).unwrap();
    let daemon = fx.start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "--backend".as_ref(),
        "auto".as_ref(),
    ]);
    daemon.wait_idle();
    let status = daemon.status();
    let watch = &status["watches"][0];
    assert_eq!(watch["backend"], "fanotify", "{watch}");
    assert_eq!(watch["backend_reason"], serde_json::Value::Null, "{watch}");
    assert_eq!(watch["watched_dirs"], 0, "{watch}");
    assert!(
        daemon.log().contains("watched by fanotify"),
        "{}",
        daemon.log()
    );
    for i in 0..50 {
        let deep = fx.src.join(format!("n{i}/a/b/c/d"));
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("f"), format!("{i}")).unwrap();
    }
    fs::rename(fx.src.join("n0"), fx.src.join("renamed")).unwrap();
    fs::remove_dir_all(fx.src.join("n1")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let one = daemon.ctl_ok(&["status", fx.src.to_str().unwrap()]);
    assert!(
        one.contains("all (fanotify)"),
        "status PATH says how the tree is watched: {one}"
    );
    let wide = daemon.ctl_ok(&["status", "--wide"]);
    assert!(wide.contains("all (fanotify)"), "{wide}");
}

/// A directory only user 65534 can use, for a daemon run as that user.
fn nobody_dir(fx: &Fixture) -> std::path::PathBuf {
    fs::set_permissions(fx.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = fx.path("nobody");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    for tree in [&fx.src, &fx.dst] {
        std::os::unix::fs::chown(tree, Some(65534), Some(65534)).unwrap();
    }
    dir
}

fn as_nobody(args: &[&std::ffi::OsStr], dir: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("inosyncd"))
        .args(args)
        .arg("-s")
        .arg(dir.join("sock"))
        .arg("--state")
        .arg(dir.join("state.toml"))
        .env("HOME", dir)
        .stdin(Stdio::null());
    command
}

/// A daemon a test started, stopped when dropped: a failed assertion must
/// not leave it running (one did, found after a failed run).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        inosync_tests::processes::kill_with_children(&mut self.0);
    }
}

/// [`as_nobody`] started, its output in `dir/log`.
fn spawn_as_nobody(args: &[&std::ffi::OsStr], dir: &Path) -> Running {
    let log = fs::File::create(dir.join("log")).unwrap();
    Running(
        as_nobody(args, dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// `backend = "fanotify"` without the privilege is refused at start, and the
/// message says what is missing; nothing is watched another way behind the
/// administrator's back.
#[test]
fn fanotify_without_privilege_is_refused_with_the_reason() {
    if !is_root() {
        eprintln!("skipped: needs root to drop to another user");
        return;
    }
    let fx = Fixture::new();
    let dir = nobody_dir(&fx);
    let out = as_nobody(
        &[
            "--backend".as_ref(),
            "fanotify".as_ref(),
            fx.src.as_os_str(),
            fx.dst.as_os_str(),
        ],
        &dir,
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("backend = \"fanotify\"") && stderr.contains("CAP_SYS_ADMIN"),
        "{stderr}"
    );
}

/// `auto` without the privilege: inotify, and status says why.
#[test]
fn auto_without_privilege_is_inotify_and_says_why() {
    if !is_root() {
        eprintln!("skipped: needs root to drop to another user");
        return;
    }
    let fx = Fixture::new();
    let dir = nobody_dir(&fx);
    let child = spawn_as_nobody(
        &[
            "--backend".as_ref(),
            "auto".as_ref(),
            "--delay".as_ref(),
            "0".as_ref(),
            fx.src.as_os_str(),
            fx.dst.as_os_str(),
        ],
        &dir,
    );
    let ctl = |args: &[&str]| inosync_tests::ctl_at(&dir.join("sock"), args);
    let up = poll_until(Duration::from_secs(20), || {
        ctl(&["status"]).status.success()
    });
    let status = ctl(&["status", "--json"]);
    drop(child);
    let log = fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert!(up, "{log}");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let watch = &status["watches"][0];
    assert_eq!(watch["backend"], "inotify", "{watch}");
    assert!(
        watch["backend_reason"]
            .as_str()
            .is_some_and(|r| r.contains("CAP_SYS_ADMIN")),
        "{watch}"
    );
    assert!(log.contains("watched by inotify"), "{log}");
}

/// A daemon run as an unprivileged user; a directory it may not read when it
/// comes, made readable by a `chmod`; then, after `wait` said idle, a
/// same-size rewrite with its mtime kept. Before, the directory stayed
/// unwatched until the next periodic full sync (up to a minute: neither the
/// chmod nor `wait`'s full sync tried its watch again), and the rewrite never
/// arrived while `wait` and `verify` said equal (found by a black-box attack,
/// 4 of 4).
#[test]
fn an_unprivileged_daemon_watches_a_directory_once_it_may_read_it() {
    if !is_root() {
        eprintln!("skipped: needs root to drop to another user");
        return;
    }
    let fx = Fixture::new();
    let dir = nobody_dir(&fx);
    let child = spawn_as_nobody(
        &[
            "--delay".as_ref(),
            "0".as_ref(),
            fx.src.as_os_str(),
            fx.dst.as_os_str(),
        ],
        &dir,
    );
    let ctl = |args: &[&str]| inosync_tests::ctl_at(&dir.join("sock"), args);
    let daemon_log = || fs::read_to_string(dir.join("log")).unwrap_or_default();
    let waited = |what: &str| {
        let out = ctl(&["wait", "--timeout", "30"]);
        assert!(
            out.status.success(),
            "{what}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            daemon_log()
        );
    };
    let up = poll_until(Duration::from_secs(20), || {
        ctl(&["status"]).status.success()
    });
    assert!(up, "{}", daemon_log());
    waited("the start");
    let locked = fx.src.join("locked");
    // Made unreadable at once (`mkdir -m 000`): a chmod after the mkdir may
    // come after the daemon's watch, which then stays.
    std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o000)
        .create(&locked)
        .unwrap();
    fs::write(locked.join("f"), "original-content").unwrap();
    let seen = poll_until(Duration::from_secs(10), || {
        let out = ctl(&["status", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|s| {
            s["watches"][0]["degraded"]
                .as_str()
                .is_some_and(|d| d.contains("locked"))
        })
    });
    assert!(
        seen,
        "the locked directory was never noticed\n{}",
        daemon_log()
    );
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    waited("made readable");
    assert_eq!(
        fs::read_to_string(fx.dst.join("locked/f")).unwrap_or_default(),
        "original-content"
    );
    let file = fs::File::options()
        .write(true)
        .open(locked.join("f"))
        .unwrap();
    let mtime = file.metadata().unwrap().modified().unwrap();
    std::io::Write::write_all(&mut &file, b"ORIGINAL-CONTENT").unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    waited("the rewrite");
    let arrived = fs::read_to_string(fx.dst.join("locked/f")).unwrap_or_default();
    drop(child);
    assert_eq!(arrived, "ORIGINAL-CONTENT", "{}", daemon_log());
}
