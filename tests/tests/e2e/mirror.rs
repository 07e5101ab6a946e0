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
