//! The Landlock sandbox: every rsync may write only below its local target, so an
//! rsync option or a layout the daemon's own checks missed cannot touch anything
//! else. Each test asserts on the filesystem; the first one also runs with
//! `sandbox = "off"` to show the option really would have done it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use inosync_tests::{Fixture, bin, has_landlock, is_root, poll_until, real_rsync};

/// `--remove-source-files`: with the sandbox every source file stays, the
/// refusal is reported (status and log) and not retried; without it the same
/// option empties the source. The config refuses the option in `rsync_args`
/// (`config_formats::bad_configs_are_refused_with_file_line_and_key`), so here
/// the `rsync` wrapper adds it: an option the daemon's own checks missed.
#[test]
fn remove_source_files_is_refused_reported_and_not_retried() {
    if !has_landlock() {
        eprintln!("skipped: this kernel has no Landlock");
        return;
    }
    for sandbox in ["auto", "off"] {
        let fx = Fixture::new();
        let wrapper = fx.path("rsync-removing");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' --remove-source-files \"$@\"\n",
                fx.calls_log().display(),
                real_rsync().display()
            ),
        )
        .unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        let daemon = fx.start_toml(&fx.config(&format!(
            "delay = 0\nsandbox = \"{sandbox}\"\nrsync = \"{}\"",
            wrapper.display()
        )));
        daemon.wait_idle();
        for i in 0..5 {
            fs::write(fx.src.join(format!("f{i}")), format!("{i}")).unwrap();
        }
        daemon.wait_idle();
        let kept = (0..5).all(|i| fx.src.join(format!("f{i}")).exists());
        let status = daemon.status();
        if sandbox == "off" {
            assert!(
                !kept,
                "without the sandbox the option removes the source files"
            );
            assert_eq!(status["sandbox_abi"], serde_json::Value::Null);
            continue;
        }
        assert!(kept, "the sandbox let rsync remove source files");
        for i in 0..5 {
            assert!(fx.dst.join(format!("f{i}")).exists(), "{}", daemon.log());
        }
        assert!(
            status["sandbox_abi"].as_u64().is_some_and(|abi| abi >= 1),
            "{status}"
        );
        let target = &status["watches"][0]["targets"][0];
        assert_eq!(target["failures"], 0, "{target}");
        assert!(
            target["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused by the sandbox") && e.contains("remove")),
            "{target}"
        );
        assert!(
            daemon.log().contains("refused by the sandbox"),
            "{}",
            daemon.log()
        );
        // Not retried: no run starts once the daemon is idle.
        let runs = fx.rsync_calls().len();
        assert!(
            !poll_until(Duration::from_secs(3), || fx.rsync_calls().len() > runs),
            "retried: {:?}",
            fx.rsync_calls()
        );
    }
}

/// `--log-file` outside the target: nothing is created there; rsync goes on
/// without its log file (exit 0), so the transfer counts as done and the
/// refusal is reported, naming the sandbox. (`--backup-dir` and `--temp-dir`
/// outside it are the transfer itself: `boundary::sandbox_refusals`.)
#[test]
fn a_log_file_outside_the_target_is_refused_and_reported() {
    if !has_landlock() {
        eprintln!("skipped: this kernel has no Landlock");
        return;
    }
    let fx = Fixture::new();
    let log_file = fx.path("outside.log");
    fs::write(fx.src.join("kept"), "kept").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(&format!(
        "rsync_args = [\"--log-file={}\"]",
        log_file.display()
    )));
    daemon.wait_idle();
    let status = daemon.status();
    let target = &status["watches"][0]["targets"][0];
    assert!(
        target["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused by the sandbox") && e.contains("log-file")),
        "{status}"
    );
    assert_eq!(target["failures"], 0, "{target}");
    assert_eq!(fs::read_to_string(fx.dst.join("kept")).unwrap(), "kept");
    assert!(
        !log_file.exists(),
        "a log file was written outside the target"
    );
}

/// With the daemon's layout check switched off (a test-only switch of debug
/// builds), a target that holds the source gets no write access at all: the
/// initial full sync with `--delete` into the source's parent deletes nothing.
#[test]
fn an_ancestor_target_cannot_delete_the_source_even_without_the_layout_check() {
    if !has_landlock() || !is_root() {
        eprintln!("skipped: needs Landlock and root");
        return;
    }
    let fx = Fixture::new();
    let parent = fx.path("parent");
    let source = parent.join("www");
    fs::create_dir_all(&source).unwrap();
    fs::write(source.join("index.html"), "the site").unwrap();
    fs::write(parent.join("sibling"), "not part of the tree").unwrap();
    let socket = fx.path("ancestor.sock");
    let log = fs::File::create(fx.path("ancestor.log")).unwrap();
    let mut child = std::process::Command::new(bin("inosyncd"))
        .arg("-s")
        .arg(&socket)
        .args(["--delay", "0"])
        .arg(&source)
        .arg(&parent)
        .env("INOSYNC_TEST_NO_LAYOUT_CHECK", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let ctl = |args: &[&str]| inosync_tests::ctl_at(&socket, args);
    let failed = poll_until(Duration::from_secs(20), || {
        let out = ctl(&["--json", "status"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|s| {
            s["watches"][0]["targets"][0]["failures"]
                .as_u64()
                .is_some_and(|f| f >= 1)
        })
    });
    inosync_tests::processes::kill_with_children(&mut child);
    let log = fs::read_to_string(fx.path("ancestor.log")).unwrap_or_default();
    assert!(failed, "the run into the ancestor did not fail: {log}");
    assert_eq!(
        fs::read_to_string(source.join("index.html")).unwrap(),
        "the site"
    );
    assert_eq!(
        fs::read_to_string(parent.join("sibling")).unwrap(),
        "not part of the tree"
    );
}
