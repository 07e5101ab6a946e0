//! Special files: a fifo is mirrored as a fifo, and one that takes a file's
//! place while rsync is reading the batch does not block it.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::time::{Duration, Instant};

use inosync_tests::{Fixture, assert_trees_equal, poll_until};

fn mkfifo(path: &std::path::Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// rsync's sender opens each listed regular file with a blocking open: a fifo
/// renamed onto a file it has listed blocks it until a writer comes.
#[test]
fn a_fifo_renamed_onto_a_listed_file_does_not_block_rsync() {
    let fx = Fixture::new();
    // The batch's first file takes seconds at the speed limit; the second is
    // replaced by a fifo meanwhile.
    let config = fx.config("delay = 0\nspeed = 100\nio_timeout = 600");
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    fs::write(fx.src.join("a-big"), vec![7u8; 400_000]).unwrap();
    fs::write(fx.src.join("b-small"), "small").unwrap();
    // The batch is running once the big file has started to arrive.
    assert!(poll_until(Duration::from_secs(10), || {
        daemon.status()["running"].as_u64() == Some(1)
    }));
    mkfifo(&fx.path("fifo"));
    fs::rename(fx.path("fifo"), fx.src.join("b-small")).unwrap();
    let swapped = Instant::now();
    let out = daemon.ctl(&["wait", "--timeout", "30"]);
    assert!(
        out.status.success(),
        "still busy {:.1?} after the swap: {}\n{}",
        swapped.elapsed(),
        String::from_utf8_lossy(&out.stderr),
        daemon.log()
    );
    assert!(
        fs::symlink_metadata(fx.dst.join("b-small")).is_ok_and(|m| m.file_type().is_fifo()),
        "{}",
        daemon.log()
    );
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// `renameat2(RENAME_WHITEOUT)` (what overlayfs does on its upper layer)
/// leaves a whiteout, a character device 0:0, at the old name: the
/// filesystem makes it itself, and no event says so. The old name of a
/// rename is looked at: what is there now is listed. It never reached the
/// mirror (a black-box attack, both backends).
#[test]
fn a_whiteout_left_by_a_rename_reaches_the_mirror() {
    if !inosync_tests::is_root() {
        eprintln!("skipped: a whiteout needs CAP_MKNOD");
        return;
    }
    let fx = Fixture::new();
    fs::write(fx.src.join("w"), "data").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    let old = CString::new(fx.src.join("w").as_os_str().as_encoded_bytes()).unwrap();
    let new = CString::new(fx.src.join("w.moved").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            old.as_ptr(),
            libc::AT_FDCWD,
            new.as_ptr(),
            libc::RENAME_WHITEOUT,
        )
    };
    if rc != 0 {
        eprintln!(
            "skipped: this filesystem makes no whiteouts: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    daemon.wait_idle();
    let left = fs::symlink_metadata(fx.dst.join("w"));
    assert!(
        left.is_ok_and(|m| m.file_type().is_char_device()),
        "{}",
        daemon.log()
    );
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}
