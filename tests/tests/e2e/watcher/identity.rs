//! A directory whose identity changed under the same name: moved out and another
//! moved in, swapped with `RENAME_EXCHANGE`, deleted and made again. The mirror
//! must become the new directory as a whole, deletions included.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use inosync_tests::{Fixture, assert_trees_equal};

fn fill(dir: &Path, names: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    for name in names {
        fs::write(dir.join(name), format!("{} {name}", dir.display())).unwrap();
    }
}

/// One batch holds both halves: the delay is longer than the two steps.
fn config(fx: &Fixture) -> String {
    fx.config("delay = 1.0")
}

#[test]
fn a_directory_moved_out_and_another_moved_in_under_its_name() {
    let fx = Fixture::new();
    fill(&fx.src.join("site/old"), &["a", "b"]);
    fill(&fx.src.join("site"), &["index"]);
    let outside = fx.path("outside");
    fill(&outside.join("new/deeper"), &["c"]);
    fill(&outside.join("new"), &["index"]);
    let daemon = fx.start_toml(&config(&fx));
    daemon.wait_idle();
    fs::rename(fx.src.join("site"), fx.path("site.old")).unwrap();
    fs::rename(outside.join("new"), fx.src.join("site")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

#[test]
fn two_directories_swapped_with_rename_exchange() {
    let fx = Fixture::new();
    fill(&fx.src.join("x/sub"), &["1", "2"]);
    fill(&fx.src.join("y"), &["3"]);
    let daemon = fx.start_toml(&config(&fx));
    daemon.wait_idle();
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let (x, y) = (c(&fx.src.join("x")), c(&fx.src.join("y")));
    // SAFETY: two NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            x.as_ptr(),
            libc::AT_FDCWD,
            y.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

#[test]
fn a_directory_deleted_and_made_again() {
    let fx = Fixture::new();
    fill(&fx.src.join("d/sub"), &["old1", "old2"]);
    fill(&fx.src.join("d"), &["old3"]);
    let daemon = fx.start_toml(&config(&fx));
    daemon.wait_idle();
    fs::remove_dir_all(fx.src.join("d")).unwrap();
    fill(&fx.src.join("d"), &["new"]);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    // Also with nothing written into the new one.
    fs::remove_dir_all(fx.src.join("d")).unwrap();
    fs::create_dir(fx.src.join("d")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}
