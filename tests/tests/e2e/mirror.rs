//! Creates, writes, deletes and renames of files and directories reach the target.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use inosync_tests::{Fixture, assert_trees_equal};

#[test]
fn initial_sync_then_every_kind_of_change_arrives() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("old/deep")).unwrap();
    fs::write(fx.src.join("old/deep/file"), "before start").unwrap();
    fs::write(fx.src.join("top.txt"), "top").unwrap();
    fs::write(fx.dst.join("stale-on-target"), "only on target").unwrap();

    let daemon = fx.start_toml(&fx.simple_config(
        r#"events = ["IN_CLOSE_WRITE", "IN_CREATE", "IN_DELETE", "IN_MOVED_FROM", "IN_MOVED_TO", "IN_ATTRIB"]"#,
    ));
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);

    // Create, nested create, modify, append.
    fs::create_dir_all(fx.src.join("a/b/c")).unwrap();
    fs::write(fx.src.join("a/b/c/new.txt"), "new").unwrap();
    fs::write(fx.src.join("top.txt"), "top, modified and longer").unwrap();
    fs::write(fx.src.join("empty"), "").unwrap();
    fs::create_dir(fx.src.join("empty-dir")).unwrap();
    // chmod (IN_ATTRIB is in events here).
    fs::set_permissions(fx.src.join("empty"), fs::Permissions::from_mode(0o600)).unwrap();
    // Symlinks are copied as links, dangling or not.
    symlink("top.txt", fx.src.join("link")).unwrap();
    symlink("/nonexistent/target", fx.src.join("dangling")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);

    // Delete a file, delete a tree, rename a file, rename a directory.
    fs::remove_file(fx.src.join("empty")).unwrap();
    fs::remove_dir_all(fx.src.join("old")).unwrap();
    fs::rename(fx.src.join("top.txt"), fx.src.join("renamed.txt")).unwrap();
    fs::rename(fx.src.join("a"), fx.src.join("a2")).unwrap();
    fs::remove_dir(fx.src.join("empty-dir")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);

    // Deleted directories dropped their watches: root, a2, a2/b, a2/b/c remain.
    let status = daemon.status();
    inosync_tests::assert_watched(&status["watches"][0], 4);
}

#[test]
fn moves_into_and_out_of_the_tree() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir_all(outside.join("inner/deeper")).unwrap();
    fs::write(outside.join("inner/deeper/f"), "from outside").unwrap();
    fs::write(outside.join("loose"), "loose file").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();

    // Move a tree in: it is scanned, watched and synced.
    fs::rename(&outside, fx.src.join("moved-in")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);

    // Its watches work: a write deep inside arrives.
    fs::write(fx.src.join("moved-in/inner/deeper/g"), "written after move").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);

    // Move it out: deleted on the target; later writes outside are not our business.
    fs::rename(fx.src.join("moved-in"), fx.path("gone")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    fs::write(fx.path("gone/inner/after"), "not ours").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);

    // The watch table dropped the moved-out directories.
    let status = daemon.status();
    inosync_tests::assert_watched(&status["watches"][0], 1);
}

#[test]
fn events_setting_decides_what_triggers_a_sync() {
    let fx = Fixture::new();
    fs::write(fx.src.join("kept"), "v1").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(r#"events = ["IN_CLOSE_WRITE"]"#));
    daemon.wait_idle();
    // IN_DELETE is not in events: the deletion is not synced.
    fs::remove_file(fx.src.join("kept")).unwrap();
    daemon.wait_idle();
    assert!(
        fx.dst.join("kept").exists(),
        "a deletion was synced without IN_DELETE in events"
    );
    // IN_CLOSE_WRITE is: a write is.
    fs::write(fx.src.join("written"), "w").unwrap();
    daemon.wait_idle();
    assert_eq!(fs::read_to_string(fx.dst.join("written")).unwrap(), "w");
}

/// Sets the mtime of `path` (not following a symlink) to `secs`.`nanos`.
fn set_mtime(path: &std::path::Path, secs: i64, nanos: i64) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        },
    ];
    // SAFETY: a NUL-terminated path and two timespecs that outlive the call.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

/// A symlink and a fifo whose mtime changed only in its nanoseconds reach the
/// mirror exactly, as rsync -a keeps them (before: a batch compared whole
/// seconds, so a symlink or fifo created on the target in the same second as
/// in the source kept the target's own nanoseconds for good; `verify`, exact
/// like a full sync, reported them).
#[test]
fn symlinks_and_fifos_keep_their_exact_mtime() {
    let fx = Fixture::new();
    for root in [&fx.src, &fx.dst] {
        symlink("/elsewhere", root.join("link")).unwrap();
        let fifo =
            std::ffi::CString::new(root.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        set_mtime(&root.join("link"), 1_000_000_000, 1);
        set_mtime(&root.join("fifo"), 1_000_000_000, 1);
    }
    // No initial sync: a full sync compares exactly and would hide it.
    let daemon = fx.start_toml(&fx.simple_config("initial_sync = false"));
    set_mtime(&fx.src.join("link"), 1_000_000_000, 999_000);
    set_mtime(&fx.src.join("fifo"), 1_000_000_000, 999_000);
    assert!(inosync_tests::poll_until(
        std::time::Duration::from_secs(10),
        || daemon.status()["watches"][0]["pending"] != 0
            || daemon.status()["watches"][0]["targets"][0]["last_sync"] != serde_json::Value::Null
    ));
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A chmod, chown or touch of the watch root itself reaches the mirror's
/// root, and only that: nothing below it is sent again or deleted (before:
/// both backends dropped the root's own attribute event, which inotify
/// reports without a name on the root's watch and fanotify as the root's
/// ".": the mirror's root kept its old mode until the next full sync).
#[test]
fn a_chmod_chown_or_touch_of_the_root_reaches_the_mirrors_root() {
    use std::os::unix::fs::MetadataExt;
    // Its own filesystem: no other test's files counted (see the fixture).
    let fx = Fixture::on_own_filesystem();
    fs::write(fx.src.join("top"), "top").unwrap();
    fs::set_permissions(&fx.src, fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    let whole_tree_runs = || daemon.log().matches("the whole tree").count();
    let before = whole_tree_runs();
    // Changed on the target alone: a run that sent the root's entries would
    // put the source's back.
    fs::write(fx.dst.join("top"), "the target's edit").unwrap();
    // Only on the target: a run of the root's attributes deletes nothing.
    fs::write(fx.dst.join("only-on-target"), "kept").unwrap();
    fs::set_permissions(&fx.src, fs::Permissions::from_mode(0o750)).unwrap();
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&fx.src, Some(65534), Some(65534)).unwrap();
    }
    set_mtime(&fx.src, 1_500_000_000, 123_456_789);
    daemon.wait_idle();
    let (src, dst) = (
        fs::symlink_metadata(&fx.src).unwrap(),
        fs::symlink_metadata(&fx.dst).unwrap(),
    );
    let attributes = |m: &fs::Metadata| (m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec());
    assert_eq!(
        attributes(&dst),
        attributes(&src),
        "the mirror's root (mode, owner, group, mtime) differs:\n{}",
        daemon.log()
    );
    assert_eq!(
        fs::read_to_string(fx.dst.join("only-on-target")).unwrap(),
        "kept"
    );
    assert_eq!(
        fs::read_to_string(fx.dst.join("top")).unwrap(),
        "the target's edit",
        "a file below the root was sent again\n{}",
        daemon.log()
    );
    assert_eq!(
        whole_tree_runs(),
        before,
        "the root's attributes made a full sync:\n{}",
        daemon.log()
    );
}
