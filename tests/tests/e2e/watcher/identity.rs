//! A directory whose identity changed under the same name: moved out and another
//! moved in, swapped with `RENAME_EXCHANGE`, deleted and made again. The mirror
//! must become the new directory as a whole, deletions included.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use inosync_tests::{Fixture, assert_trees_equal};

use super::while_stopped;

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

/// `RENAME_EXCHANGE` of `a` and `b`.
fn exchange(a: &Path, b: &Path) {
    crate::convergence::ops::exchange(a, b).expect("RENAME_EXCHANGE");
}

/// Two directories swapped three times in one read (the kernel may merge
/// the repeated halves), then a file moved out of one of them in a later
/// read: the file leaves the mirror from where it is, not from the other
/// directory's name (a fuzzer: `n/x` stayed on the target).
#[test]
fn directories_swapped_three_times_then_a_file_moved_out_of_one() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir(&outside).unwrap();
    fill(&fx.src.join("d"), &["x", "y"]);
    fs::create_dir(fx.src.join("n")).unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    while_stopped(&daemon, || {
        exchange(&fx.src.join("n"), &fx.src.join("d"));
        exchange(&fx.src.join("d"), &fx.src.join("n"));
        exchange(&fx.src.join("n"), &fx.src.join("d"));
    });
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    while_stopped(&daemon, || {
        fs::rename(fx.src.join("n/x"), outside.join("x")).unwrap();
    });
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A directory renamed away and back and away again in one read by one
/// process (`p` to `q` and back, then to `q` again: the kernel merges the
/// third rename into the first, as the two are alike and from the same
/// process), a file written in it in between, then a file moved
/// out of it in a later read: the mirror has `q`, its new file, and not the
/// file moved out.
#[test]
fn a_directory_renamed_away_back_and_away_again_in_one_read() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir(&outside).unwrap();
    fill(&fx.src.join("p"), &["x", "y"]);
    let daemon = fx.start_quick();
    daemon.wait_idle();
    while_stopped(&daemon, || {
        fs::rename(fx.src.join("p"), fx.src.join("q")).unwrap();
        fs::rename(fx.src.join("q"), fx.src.join("p")).unwrap();
        fs::write(fx.src.join("p/new"), "written between").unwrap();
        fs::rename(fx.src.join("p"), fx.src.join("q")).unwrap();
    });
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    while_stopped(&daemon, || {
        fs::rename(fx.src.join("q/x"), outside.join("x")).unwrap();
    });
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A file renamed away, back and away again in one read by one process
/// (`a` to `b`, back, and to `b` again): the mirror has `b` and no `a`.
#[test]
fn a_file_renamed_away_back_and_away_again_in_one_read() {
    let fx = Fixture::new();
    fs::write(fx.src.join("a"), "moved about").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    while_stopped(&daemon, || {
        fs::rename(fx.src.join("a"), fx.src.join("b")).unwrap();
        fs::rename(fx.src.join("b"), fx.src.join("a")).unwrap();
        fs::rename(fx.src.join("a"), fx.src.join("b")).unwrap();
    });
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}
