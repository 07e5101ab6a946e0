//! A path longer than PATH_MAX (built with relative `mkdirat`, as a program can):
//! rsync cannot transfer it, the daemon cannot name it through `/proc`. It must
//! be held and shown (status, metrics), and hold back nothing else.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use inosync_tests::{Fixture, poll_until};

/// Makes `levels` nested directories of 200-byte names below `root` and a file
/// at the bottom, one `mkdirat`/`openat` at a time; returns the path's length.
fn deep_tree(root: &Path, levels: usize) -> usize {
    deep_file(root, levels, "bottom", "deep")
}

#[test]
fn a_path_longer_than_path_max_is_held_and_shown_and_holds_back_nothing() {
    let fx = Fixture::new();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    let len = deep_tree(&fx.src, 25);
    assert!(len > 5000);
    fs::write(fx.src.join("unrelated"), "must not wait").unwrap();
    assert!(
        poll_until(Duration::from_secs(5), || fx.dst.join("unrelated").exists()),
        "an unrelated change waited behind the long path\n{}",
        daemon.log()
    );
    let shown = poll_until(Duration::from_secs(10), || {
        let status = daemon.status();
        let held = &status["watches"][0]["targets"][0]["held"];
        held.as_array().is_some_and(|h| {
            h.iter()
                .any(|p| p["reason"].as_str().is_some_and(|r| r.contains("PATH_MAX")))
        })
    });
    assert!(shown, "{}\n{}", daemon.status(), daemon.log());
    let metrics = daemon.ctl_ok(&["metrics"]);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("inosync_held_paths{") && !l.ends_with(" 0")),
        "{metrics}"
    );
    // Later changes still go out at their normal delay.
    fs::write(fx.src.join("later"), "also").unwrap();
    assert!(poll_until(Duration::from_secs(5), || fx
        .dst
        .join("later")
        .exists()));
    // The parts that can be mirrored are: the shallow directories exist.
    assert!(fx.dst.join("d".repeat(200)).is_dir(), "{}", daemon.log());
    // A full sync still deletes what the source no longer has: rsync skips
    // every deletion of a run in which a path was too long, so the held path
    // is left out of it.
    fs::write(fx.dst.join("stale"), "only on the target").unwrap();
    daemon.ctl_ok(&["sync"]);
    assert!(
        poll_until(Duration::from_secs(10), || !fx.dst.join("stale").exists()),
        "a full sync deleted nothing\n{}",
        daemon.log()
    );
}

/// Writes `contents` to `file` below `levels` nested directories of 200-byte
/// names below `root` (made where missing), one `openat` at a time; returns
/// the path's length below the root.
fn deep_file(root: &Path, levels: usize, file: &str, contents: &str) -> usize {
    let name = CString::new(vec![b'd'; 200]).unwrap();
    let c_root = CString::new(root.as_os_str().as_encoded_bytes()).unwrap();
    let c_file = CString::new(file).unwrap();
    // SAFETY: plain opens and mkdirs of NUL-terminated names on descriptors we own.
    unsafe {
        let mut dir = OwnedFd::from_raw_fd(libc::open(
            c_root.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        ));
        for _ in 0..levels {
            libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755);
            let next = libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY,
            );
            assert!(next >= 0);
            dir = OwnedFd::from_raw_fd(next);
        }
        let fd = libc::openat(
            dir.as_raw_fd(),
            c_file.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            0o644,
        );
        assert!(fd >= 0);
        libc::write(fd, contents.as_ptr().cast(), contents.len());
        libc::close(fd);
    }
    levels * 201 + file.len()
}

/// The contents of `file` below `levels` nested 200-byte names below `root`.
fn read_deep(root: &Path, levels: usize, file: &str) -> Option<String> {
    let mut dir = fs::File::open(root).ok()?;
    let name = "d".repeat(200);
    for _ in 0..levels {
        let c = CString::new(name.clone()).unwrap();
        // SAFETY: an openat of a NUL-terminated name on a descriptor we own.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just opened and is owned by nobody else.
        dir = unsafe { fs::File::from_raw_fd(fd) };
    }
    let c = CString::new(file).unwrap();
    // SAFETY: as above.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return None;
    }
    // SAFETY: as above.
    let mut f = unsafe { fs::File::from_raw_fd(fd) };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut f, &mut out).ok()?;
    Some(out)
}

/// A changed file whose path below the root fits PATH_MAX but whose absolute
/// path does not (the root's own length on top) arrives: rsync reads a listed
/// path relative to the root, and would cut an argument of PATH_MAX bytes.
#[test]
fn a_change_below_path_max_from_the_root_arrives_whatever_the_roots_length() {
    let fx = Fixture::new();
    let file = "f".repeat(60);
    let len = deep_file(&fx.src, 20, &file, "first");
    assert!(len < 4096, "{len}");
    let absolute = fx.src.as_os_str().len() + 1 + len;
    assert!(absolute >= 4096, "{absolute}");
    let daemon = fx.start_quick();
    daemon.wait_idle();
    assert_eq!(read_deep(&fx.dst, 20, &file).as_deref(), Some("first"));
    deep_file(&fx.src, 20, &file, "second, listed");
    daemon.wait_idle();
    assert_eq!(
        read_deep(&fx.dst, 20, &file).as_deref(),
        Some("second, listed"),
        "{:?}\n{}",
        daemon.status(),
        daemon.log()
    );
}

/// Hundreds of files in one directory past PATH_MAX: each is held, and the
/// run that leaves them out must still start (before: one exclusion argument
/// per file, 700 x 5 KB past the kernel's limit on arguments, and every run of
/// the watch failed with E2BIG, retried for ever; a black-box attack). Later
/// changes arrive, and `status` still answers.
#[test]
fn many_files_past_path_max_are_left_out_without_passing_the_argument_limit() {
    let fx = Fixture::new();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    for i in 0..700 {
        deep_file(&fx.src, 25, &format!("file{i:04}"), "deep");
    }
    std::thread::sleep(Duration::from_millis(300));
    fs::write(fx.src.join("top"), "must arrive").unwrap();
    assert!(
        poll_until(Duration::from_secs(20), || fx.dst.join("top").exists()),
        "a change beside the long paths never arrived\n{}",
        daemon.log()
    );
    assert!(
        !daemon.log().contains("Argument list too long"),
        "{}",
        daemon.log()
    );
    let _ = daemon.status();
}
