//! Issue 26, items 7 and 8: a watch being removed (its pending changes synced
//! first) is restored by a reload that brings it back, and a removal that waits
//! for its changes survives a restart.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use inosync_tests::{Daemon, Fixture, poll_until, real_rsync};

/// A config of `watches` (source, target, extra lines of the watch) after
/// the `top` lines.
fn config(top: &str, watches: &[(&Path, &Path, &str)]) -> String {
    let mut text = format!("{top}\n");
    for (src, dst, extra) in watches {
        text.push_str(&format!(
            "[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n{extra}\n",
            src.display(),
            dst.display()
        ));
    }
    text
}

/// The status of the watch of `path`, if it is watched.
fn watch_of(daemon: &Daemon, path: &Path) -> Option<serde_json::Value> {
    let status = daemon.status();
    status["watches"]
        .as_array()?
        .iter()
        .find(|w| w["path"] == path.display().to_string())
        .cloned()
}

fn dirs(fx: &Fixture, name: &str) -> (PathBuf, PathBuf) {
    let (src, dst) = (
        fx.path(&format!("{name}-src")),
        fx.path(&format!("{name}-dst")),
    );
    fs::create_dir(&src).unwrap();
    fs::create_dir(&dst).unwrap();
    (src, dst)
}

/// A reload that removes a watch while its transfer runs, then one that
/// restores it: the watch is watched again (not `removing`), stays after the
/// transfer ends, and its later changes arrive.
#[test]
fn a_watch_removed_by_reload_and_restored_by_the_next_is_kept() {
    let fx = Fixture::new();
    let (b_src, b_dst) = dirs(&fx, "b");
    let both = config(
        "delay = 0",
        &[(&fx.src, &fx.dst, ""), (&b_src, &b_dst, "speed = 1000")],
    );
    let daemon = fx.start_toml(&both);
    daemon.wait_idle();
    // 3 MB at 1,000 KB/s: about 3 s of transfer.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(b_src.join("big.bin"), &data).unwrap();
    let running = poll_until(Duration::from_secs(20), || {
        fs::read_dir(&b_dst).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".big.bin."))
        })
    });
    assert!(running, "no transfer seen: {}", daemon.log());
    fs::write(
        fx.path("inosync.toml"),
        config("delay = 0", &[(&fx.src, &fx.dst, "")]),
    )
    .unwrap();
    let out = daemon.ctl_ok(&["reload"]);
    assert!(out.contains("1 removed"), "{out}");
    assert_eq!(
        watch_of(&daemon, &b_src).map(|w| w["removing"].clone()),
        Some(true.into())
    );
    fs::write(fx.path("inosync.toml"), &both).unwrap();
    let out = daemon.ctl_ok(&["reload"]);
    assert!(out.contains("1 watch(es) added"), "{out}");
    assert_eq!(
        watch_of(&daemon, &b_src).map(|w| w["removing"].clone()),
        Some(false.into()),
        "{}",
        daemon.log()
    );
    daemon.wait_idle();
    assert!(
        watch_of(&daemon, &b_src).is_some(),
        "dropped: {}",
        daemon.log()
    );
    fs::write(b_src.join("later"), "later").unwrap();
    daemon.wait_idle();
    assert_eq!(
        fs::read_to_string(b_dst.join("later")).ok().as_deref(),
        Some("later")
    );
    assert_eq!(fs::read(b_dst.join("big.bin")).ok(), Some(data));
}

/// `remove B --timeout 2` while B's target fails: it exits 1 and B stays
/// `removing`; after a crash and a restart B is still being removed (not an
/// ordinary watch); once its target works, its last change arrives, B is
/// dropped, and stays dropped at the next start.
#[test]
fn a_pending_removal_survives_a_restart() {
    let fx = Fixture::new();
    let (b_src, b_dst) = dirs(&fx, "b");
    let failing = fx.path("failing");
    let wrapper = fx.path("failing-rsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ -e '{}' ] && exit 10\nexec '{}' \"$@\"\n",
            failing.display(),
            real_rsync().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let text = config(
        &format!("delay = 0\nrsync = \"{}\"", wrapper.display()),
        &[(&fx.src, &fx.dst, ""), (&b_src, &b_dst, "")],
    );
    let mut daemon = fx.start_toml(&text);
    daemon.wait_idle();
    fs::write(&failing, "").unwrap();
    fs::write(b_src.join("last"), "last change").unwrap();
    let queued = poll_until(Duration::from_secs(10), || {
        watch_of(&daemon, &b_src).is_some_and(|w| w["pending"] == 1)
    });
    assert!(queued, "{}", daemon.status());
    let b = b_src.display().to_string();
    let stderr = daemon.ctl_fails(1, &["remove", &b, "--timeout", "2"]);
    assert!(!stderr.is_empty());
    daemon.kill();

    let mut daemon = fx.restart_toml(&text);
    let removing = watch_of(&daemon, &b_src).map(|w| w["removing"].clone());
    assert_eq!(removing, Some(true.into()), "{}", daemon.log());
    fs::remove_file(&failing).unwrap();
    let gone = poll_until(Duration::from_secs(30), || {
        watch_of(&daemon, &b_src).is_none()
    });
    assert!(gone, "{}", daemon.log());
    assert_eq!(
        fs::read_to_string(b_dst.join("last")).ok().as_deref(),
        Some("last change")
    );
    daemon.kill();
    let daemon = fx.restart_toml(&text);
    assert!(watch_of(&daemon, &b_src).is_none(), "{}", daemon.status());
    assert!(watch_of(&daemon, &fx.src).is_some());
}

/// A deletion leaves the parent directory's mtime exact on the mirror, to
/// the nanosecond as every transfer does: the deletion run compared it to
/// the second, so a deletion within the same second as the run left the
/// mirror's time of the deletion there (found by a black-box attack, 4 of 4).
#[test]
fn a_deletion_leaves_the_parent_directorys_mtime_exact() {
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("a")).unwrap();
    for i in 0..6 {
        fs::write(fx.src.join(format!("a/f{i}")), "x").unwrap();
    }
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    for i in 0..3 {
        fs::remove_file(fx.src.join(format!("a/f{i}"))).unwrap();
        daemon.wait_idle();
        let (src, dst) = (
            fs::metadata(fx.src.join("a")).unwrap(),
            fs::metadata(fx.dst.join("a")).unwrap(),
        );
        assert_eq!(
            (src.mtime(), src.mtime_nsec()),
            (dst.mtime(), dst.mtime_nsec()),
            "a/ after deleting f{i}\n{}",
            daemon.log()
        );
    }
}

/// Deleting a name with a newline or a CR deletes that name alone: a
/// target-only entry whose name differs from it only there (`aXb` beside
/// `a\nb`) stays, as `delete = "running"` keeps what the target alone holds
/// (before: the deletion rule said the newline as `?`, which matched `aXb`
/// too, and a whole look-alike tree went; found by a black-box attack).
#[test]
fn deleting_a_name_with_a_newline_deletes_no_look_alike() {
    let fx = Fixture::new();
    let (src, dst) = (fx.src.join("w"), fx.dst.join("w"));
    fs::create_dir(&src).unwrap();
    for name in ["a\nb", "c\rd", "trail\n"] {
        fs::write(src.join(name), "source").unwrap();
    }
    fs::create_dir(src.join("n\nd")).unwrap();
    fs::write(src.join("n\nd/x"), "source").unwrap();
    let daemon = fx.start_toml(&fx.simple_config("delete = \"running\""));
    daemon.wait_idle();
    for name in ["aXb", "cXd", "trailZ"] {
        fs::write(dst.join(name), "the target's own").unwrap();
    }
    fs::create_dir_all(dst.join("nXd/sub")).unwrap();
    fs::write(dst.join("nXd/sub/precious"), "the target's own").unwrap();
    for name in ["a\nb", "c\rd", "trail\n"] {
        fs::remove_file(src.join(name)).unwrap();
    }
    fs::remove_dir_all(src.join("n\nd")).unwrap();
    daemon.wait_idle();
    for gone in ["a\nb", "c\rd", "trail\n", "n\nd"] {
        assert!(
            fs::symlink_metadata(dst.join(gone)).is_err(),
            "{gone:?} is still on the target\n{}",
            daemon.log()
        );
    }
    for kept in ["aXb", "cXd", "trailZ", "nXd/sub/precious"] {
        assert!(
            dst.join(kept).exists(),
            "the target's own {kept} was deleted\n{}",
            daemon.log()
        );
    }
}

/// An include rule of the user's (`--include=*.txt` in `rsync_args`) deletes
/// nothing the deletion run was not asked to: a target-only `z.txt` beside a
/// deleted file stays under `delete = "running"` (before: the user's rule
/// came before the daemon's, matched `z.txt` first and lifted its
/// protection; found by a black-box attack).
#[test]
fn an_include_rule_of_yours_deletes_no_target_only_file_in_a_deletion_run() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("d")).unwrap();
    for name in ["d/a.txt", "d/gone", "top"] {
        fs::write(fx.src.join(name), "source").unwrap();
    }
    let daemon = fx
        .start_toml(&fx.simple_config("delete = \"running\"\nrsync_args = [\"--include=*.txt\"]"));
    daemon.wait_idle();
    for name in ["z.txt", "d/z.txt", "d/plain"] {
        fs::write(fx.dst.join(name), "the target's own").unwrap();
    }
    fs::remove_file(fx.src.join("d/gone")).unwrap();
    daemon.wait_idle();
    assert!(!fx.dst.join("d/gone").exists(), "{}", daemon.log());
    for kept in ["z.txt", "d/z.txt", "d/plain", "d/a.txt", "top"] {
        assert!(
            fx.dst.join(kept).exists(),
            "the target's {kept} was deleted\n{}",
            daemon.log()
        );
    }
}
