//! Never destroy, never leak: overlapping layouts, vanished and replaced roots,
//! symlink swaps, a second daemon, the daemon's own files, and who may choose what
//! is read and written. Each test asserts on the filesystem: what must still
//! exist, what must not have been written.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use inosync_tests::{Daemon, Fixture, assert_trees_equal, bin, poll_until, refused_start, run_ok};

/// A mount made by a test, lazily unmounted when dropped (so a failed test does
/// not leave it behind).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path) -> Mount {
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "inosync-test"])
                .arg(at),
        );
        Mount(at.to_path_buf())
    }

    fn bind(from: &Path, at: &Path) -> Mount {
        run_ok(Command::new("mount").arg("--bind").arg(from).arg(at));
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |entries| entries.count())
}

fn target_state(daemon: &Daemon) -> String {
    daemon.status()["watches"][0]["targets"][0]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn poll_state(daemon: &Daemon, wanted: &str) {
    let reached = poll_until(Duration::from_secs(20), || target_state(daemon) == wanted);
    assert!(
        reached,
        "state never became {wanted:?}: {}\n--- daemon log ---\n{}",
        daemon.status(),
        daemon.log()
    );
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

// 1. Overlapping local paths.

#[test]
fn targets_overlapping_the_source_are_refused_and_nothing_is_touched() {
    let fx = Fixture::new();
    fs::write(fx.src.join("file"), "source").unwrap();
    let sibling = fx.path("sibling");
    fs::create_dir(&sibling).unwrap();
    fs::write(sibling.join("file"), "sibling").unwrap();
    let sock = fx.path("other.sock");
    let quick = |target: &Path| {
        refused_start(&[
            "-s".as_ref(),
            sock.as_os_str(),
            fx.src.as_os_str(),
            target.as_os_str(),
        ])
    };
    // The target is an ancestor of the source.
    let stderr = quick(fx.dir.path());
    assert!(
        stderr.contains("contains the watched directory"),
        "{stderr}"
    );
    assert!(stderr.contains(&s(&fx.src)), "{stderr}");
    // The target is inside the source, also when reached through a symlink.
    let stderr = quick(&fx.src.join("mirror"));
    assert!(
        stderr.contains("is inside the watched directory"),
        "{stderr}"
    );
    let link = fx.path("link");
    symlink(&fx.src, &link).unwrap();
    let stderr = quick(&link.join("mirror"));
    assert!(stderr.contains("is inside"), "{stderr}");
    // The source itself.
    assert!(quick(&fx.src).contains("same directory"));
    assert_eq!(fs::read_to_string(fx.src.join("file")).unwrap(), "source");
    assert_eq!(fs::read_to_string(sibling.join("file")).unwrap(), "sibling");
    assert!(!fx.src.join("mirror").exists());
    assert!(!sock.exists(), "a refused start must leave no socket");

    // Two watches of a config whose destinations nest: refused by --check too.
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let config = fx.path("nested.toml");
    fs::write(
        &config,
        format!(
            "[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n\
             [[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/blog\"]\n",
            s(&fx.src),
            s(&fx.dst),
            s(&other),
            s(&fx.dst)
        ),
    )
    .unwrap();
    let stderr = refused_start(&["--check".as_ref(), "-c".as_ref(), config.as_os_str()]);
    assert!(stderr.contains(&format!("{}/blog", s(&fx.dst))), "{stderr}");
    assert!(
        stderr.contains("contains the destination") || stderr.contains("is inside the destination"),
        "{stderr}"
    );
}

#[test]
fn add_and_reload_refuse_overlaps_and_a_quick_start_add_needs_a_target() {
    let fx = Fixture::new();
    let blog = fx.path("blog");
    fs::create_dir(&blog).unwrap();
    fs::write(blog.join("post"), "hello").unwrap();
    let daemon = fx.start(&[
        "--delay".as_ref(),
        "0".as_ref(),
        fx.src.as_os_str(),
        fx.dst.as_os_str(),
    ]);
    daemon.wait_idle();
    let stderr = daemon.ctl_fails(1, &["add", &s(&blog)]);
    assert!(stderr.contains("--target"), "{stderr}");
    // Inside the first watch's mirror, where its --delete would remove it.
    let inside = format!("{}/srv/blog", s(&fx.dst));
    let stderr = daemon.ctl_fails(1, &["add", &s(&blog), "--target", &inside]);
    assert!(
        stderr.contains(&s(&fx.dst)) && stderr.contains(&inside),
        "{stderr}"
    );
    let stderr = daemon.ctl_fails(
        1,
        &["add", &s(&blog), "--target", &format!("{}/m", s(&fx.src))],
    );
    assert!(
        stderr.contains("is inside the watched directory"),
        "{stderr}"
    );
    let stderr = daemon.ctl_fails(1, &["add", "/", "--target", &s(&fx.path("x"))]);
    assert!(
        stderr.contains("whole system") || stderr.contains("contains"),
        "{stderr}"
    );
    assert_eq!(daemon.status()["watches"].as_array().map(Vec::len), Some(1));
    assert!(!fx.dst.join("srv").exists() && !fx.path("x").exists());
    // A target of its own is fine.
    let own = fx.path("blog-mirror");
    daemon.ctl_ok(&["add", &s(&blog), "--target", &s(&own), "--remote-path", ""]);
    daemon.wait_idle();
    assert_eq!(fs::read_to_string(own.join("post")).unwrap(), "hello");
    drop(daemon);

    // reload: a config whose second watch would mirror into the first's mirror.
    let fx = Fixture::new();
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    let config = fx.path("inosync.toml");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/nested\"]\n",
        s(&other),
        s(&fx.dst)
    ));
    fs::write(&config, text).unwrap();
    let stderr = daemon.ctl_fails(1, &["reload"]);
    assert!(stderr.contains("nested"), "{stderr}");
    assert_eq!(daemon.status()["watches"].as_array().map(Vec::len), Some(1));
}

// 2. Watch roots that go away.

#[test]
fn an_unmounted_source_is_never_synced_from_and_reattaches_when_back() {
    let fx = Fixture::new();
    let disk = fx.path("disk");
    fs::create_dir(&disk).unwrap();
    let _disk = Mount::tmpfs(&disk);
    let data = disk.join("data");
    fs::create_dir(&data).unwrap();
    for i in 0..10 {
        fs::write(data.join(format!("f{i}")), format!("{i}")).unwrap();
    }
    let mounted = Mount::bind(&data, &fx.src);
    let mut daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    assert_eq!(count_files(&fx.dst), 10);

    drop(mounted);
    poll_state(&daemon, "source missing");
    daemon.ctl_ok(&["sync"]);
    let stderr = daemon.ctl_fails(1, &["wait", "--timeout", "5"]);
    assert!(stderr.contains("source missing"), "{stderr}");
    assert_eq!(count_files(&fx.dst), 10, "the mirror was touched");
    let watch = &daemon.status()["watches"][0];
    assert!(watch["source_missing"].is_string(), "{watch}");

    // Back: watched again, and changes flow.
    let mounted = Mount::bind(&data, &fx.src);
    poll_state(&daemon, "idle");
    fs::write(fx.src.join("after"), "back").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);

    // A restart while the disk is not mounted: the recorded filesystem differs,
    // nothing is synced at start.
    daemon.terminate();
    drop(mounted);
    assert_eq!(count_files(&fx.src), 0);
    let daemon = fx.start_toml(&fx.simple_config(""));
    poll_state(&daemon, "source missing");
    daemon.ctl_fails(1, &["wait", "--timeout", "5"]);
    assert_eq!(count_files(&fx.dst), 11, "the mirror was wiped at start");
    assert!(
        daemon.log().contains("another filesystem"),
        "{}",
        daemon.log()
    );
}

#[test]
fn an_empty_source_at_start_keeps_the_mirror_until_forced() {
    let fx = Fixture::new();
    for i in 0..5 {
        fs::write(fx.dst.join(format!("kept{i}")), "mirror").unwrap();
    }
    let daemon = fx.start(&[
        "--delay".as_ref(),
        "0".as_ref(),
        fx.src.as_os_str(),
        fx.dst.as_os_str(),
    ]);
    poll_state(&daemon, "source missing");
    let stderr = daemon.ctl_fails(1, &["wait", "--timeout", "5"]);
    assert!(stderr.contains("empty"), "{stderr}");
    assert_eq!(count_files(&fx.dst), 5, "an empty source wiped the mirror");
    // On purpose: the mirror follows the empty source.
    daemon.ctl_ok(&["sync", &s(&fx.src), "--force"]);
    daemon.wait_idle();
    assert_eq!(count_files(&fx.dst), 0);
    assert_eq!(target_state(&daemon), "idle");
}

#[test]
fn a_root_deleted_and_made_again_is_followed() {
    let fx = Fixture::new();
    fs::write(fx.src.join("a"), "old").unwrap();
    let daemon = fx.start(&[
        "--delay".as_ref(),
        "0".as_ref(),
        fx.src.as_os_str(),
        fx.dst.as_os_str(),
    ]);
    daemon.wait_idle();
    fs::remove_dir_all(&fx.src).unwrap();
    fs::create_dir(&fx.src).unwrap();
    fs::create_dir(fx.src.join("sub")).unwrap();
    fs::write(fx.src.join("sub/b"), "new").unwrap();
    let arrived = poll_until(Duration::from_secs(20), || fx.dst.join("sub/b").exists());
    assert!(arrived, "{}", daemon.log());
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    fs::write(fx.src.join("sub/c"), "later").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let watch = &daemon.status()["watches"][0];
    assert_eq!(watch["watched_dirs"], 2, "{watch}");
}

#[test]
fn an_atomic_deploy_swap_mirrors_the_new_tree() {
    let fx = Fixture::new();
    let www = fx.path("www");
    let staged = fx.path("www.new");
    fs::create_dir_all(www.join("css")).unwrap();
    fs::write(www.join("index.html"), "v1").unwrap();
    fs::write(www.join("css/old.css"), "old").unwrap();
    fs::create_dir_all(staged.join("js")).unwrap();
    fs::write(staged.join("index.html"), "v2").unwrap();
    fs::write(staged.join("js/new.js"), "new").unwrap();
    let daemon = fx.start(&[
        "--delay".as_ref(),
        "0".as_ref(),
        www.as_os_str(),
        fx.dst.as_os_str(),
    ]);
    daemon.wait_idle();
    fs::rename(&www, fx.path("www.old")).unwrap();
    fs::rename(&staged, &www).unwrap();
    let swapped = poll_until(Duration::from_secs(20), || {
        fs::read_to_string(fx.dst.join("index.html")).is_ok_and(|t| t == "v2")
            && !fx.dst.join("css").exists()
    });
    assert!(swapped, "{}", daemon.log());
    daemon.wait_idle();
    assert_trees_equal(&www, &fx.dst, &daemon);
    // Later changes come from the new tree, not from www.old.
    fs::write(www.join("js/later.js"), "later").unwrap();
    fs::write(fx.path("www.old/stale"), "must not arrive").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&www, &fx.dst, &daemon);
}

// 3. A directory swapped for a symlink.

#[test]
fn a_directory_swapped_for_a_symlink_is_mirrored_as_a_symlink() {
    let fx = Fixture::new();
    let secret = fx.path("secret");
    fs::create_dir(&secret).unwrap();
    fs::write(secret.join("shadow"), "root:SECRET").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir(fx.src.join("conf")).unwrap();
    fs::write(fx.src.join("conf/shadow"), "public").unwrap();
    let daemon = fx.start(&[
        "--delay".as_ref(),
        "0".as_ref(),
        fx.src.as_os_str(),
        fx.dst.as_os_str(),
    ]);
    daemon.wait_idle();
    daemon.ctl_ok(&["pause"]);
    fs::write(fx.src.join("conf/shadow"), "public, changed").unwrap();
    fs::remove_dir_all(fx.src.join("conf")).unwrap();
    symlink(&secret, fx.src.join("conf")).unwrap();
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    let conf = fs::symlink_metadata(fx.dst.join("conf")).unwrap();
    assert!(
        conf.file_type().is_symlink(),
        "conf on the mirror is not a symlink"
    );
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

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

use std::os::unix::fs::FileTypeExt;

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
    let stderr = refused_start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "-s".as_ref(),
        other_sock.as_os_str(),
        "--state".as_ref(),
        fx.state_file().as_os_str(),
    ]);
    assert!(stderr.contains("in use by another inosyncd"), "{stderr}");
    drop(daemon);

    // --state naming the config file, or a directory: refused, left alone.
    let before = fs::read_to_string(&config).unwrap();
    let stderr = refused_start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "-s".as_ref(),
        other_sock.as_os_str(),
        "--state".as_ref(),
        config.as_os_str(),
    ]);
    assert!(stderr.contains("config file"), "{stderr}");
    assert_eq!(fs::read_to_string(&config).unwrap(), before);
    let dir = fx.path("a-dir");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("inside"), "x").unwrap();
    let stderr = refused_start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "-s".as_ref(),
        other_sock.as_os_str(),
        "--state".as_ref(),
        dir.as_os_str(),
    ]);
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert!(dir.join("inside").exists());

    // A pid file that is a symlink.
    let pid_link = fx.path("inosyncd.pid");
    symlink(&victim, &pid_link).unwrap();
    let stderr = refused_start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "-s".as_ref(),
        other_sock.as_os_str(),
        "--state".as_ref(),
        fx.state_file().as_os_str(),
        "--pid-file".as_ref(),
        pid_link.as_os_str(),
    ]);
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
    let _ = child.kill();
    let _ = child.wait();
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
