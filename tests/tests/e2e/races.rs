//! Races between directory creation or renames and the watches that follow them.

use std::fs;

use inosync_tests::{Fixture, assert_trees_equal};

/// `mkdir -p a/b/c` and an immediate write into `c`, 100 times in a row: the file
/// lands before the watch on `c` exists, so only the scan after the watch finds it.
#[test]
fn new_directory_race_loses_nothing() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    for i in 0..100 {
        let dir = fx.src.join(format!("r{i}/a/b/c"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f"), format!("file {i}")).unwrap();
    }
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let status = daemon.status();
    inosync_tests::assert_watched(&status["watches"][0], 401);
}

/// A renamed directory keeps its watches under the new name: writes right after
/// the rename, at every depth, arrive under the new path.
#[test]
fn directory_rename_then_writes_inside() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("d0/sub/deeper")).unwrap();
    fs::write(fx.src.join("d0/sub/deeper/f"), "start").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    for i in 1..=20 {
        let from = fx.src.join(format!("d{}", i - 1));
        let to = fx.src.join(format!("d{i}"));
        fs::rename(&from, &to).unwrap();
        fs::write(to.join(format!("sub/deeper/w{i}")), "after rename").unwrap();
        fs::write(to.join(format!("top{i}")), "after rename").unwrap();
        if i % 5 == 0 {
            // Nest it one level deeper and back, inside the tree.
            fs::create_dir(fx.src.join("holder")).unwrap();
            fs::rename(&to, fx.src.join("holder/inner")).unwrap();
            fs::write(fx.src.join("holder/inner/sub/moved"), "moved").unwrap();
            fs::rename(fx.src.join("holder/inner"), &to).unwrap();
            fs::remove_dir(fx.src.join("holder")).unwrap();
        }
    }
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let status = daemon.status();
    inosync_tests::assert_watched(&status["watches"][0], 4);
}
