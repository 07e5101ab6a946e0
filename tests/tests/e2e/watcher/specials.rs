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
