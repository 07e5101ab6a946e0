//! Writes that are never followed by a close: `truncate(2)` by path, and appends
//! through a descriptor a program keeps open (a log, a database). The kernel
//! reports only `IN_MODIFY` / `FAN_MODIFY` for them.

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use inosync_tests::{Fixture, assert_trees_equal, poll_until};

fn size_of(path: &std::path::Path) -> u64 {
    fs::metadata(path).map_or(u64::MAX, |m| m.len())
}

#[test]
fn a_truncate_by_path_reaches_the_mirror() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), vec![b'x'; 1000]).unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    assert_eq!(size_of(&fx.dst.join("f")), 1000);
    // truncate(2) by path: no open, no close.
    let path =
        std::ffi::CString::new(fx.src.join("f").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::truncate(path.as_ptr(), 10) }, 0);
    let arrived = poll_until(Duration::from_secs(10), || size_of(&fx.dst.join("f")) == 10);
    assert!(
        arrived,
        "the mirror kept {} bytes\n{}",
        size_of(&fx.dst.join("f")),
        daemon.log()
    );
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

#[test]
fn an_append_through_a_descriptor_kept_open_reaches_the_mirror() {
    let fx = Fixture::new();
    fs::write(fx.src.join("app.log"), "started\n").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    let mut log = fs::OpenOptions::new()
        .append(true)
        .open(fx.src.join("app.log"))
        .unwrap();
    log.write_all(b"a line the mirror must get\n").unwrap();
    log.flush().unwrap();
    let arrived = poll_until(Duration::from_secs(10), || {
        fs::read_to_string(fx.dst.join("app.log")).is_ok_and(|s| s.contains("must get"))
    });
    assert!(arrived, "{}", daemon.log());
    // `wait` counts a file still settling as busy, and the mirror is equal
    // while the descriptor is still open.
    log.write_all(b"and one more\n").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    drop(log);
}

/// A 200 MB file written over 4 s with `delay = 0` is not re-sent on every
/// write: it goes out when it is closed or quiet (at most 6 rsync runs).
#[test]
fn a_file_being_written_is_not_sent_over_and_over() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.counted_config(0.0));
    daemon.wait_idle();
    let before = fx.rsync_calls().len();
    let started = Instant::now();
    let mut file = fs::File::create(fx.src.join("big.bin")).unwrap();
    let chunk = vec![0x5au8; 4 << 20];
    for i in 0..50u32 {
        file.write_all(&chunk).unwrap();
        // Pacing of the writer (the workload), not synchronisation.
        let next = started + Duration::from_millis(80) * (i + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    drop(file);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let calls = fx.rsync_calls();
    let runs = calls.len() - before;
    for call in &calls[before..] {
        eprintln!(
            "  rsync {}",
            call.split_whitespace()
                .filter(|a| a.starts_with("--") && !a.starts_with("--info"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    eprintln!(
        "200 MB written over {:.2?}: {runs} rsync run(s) until the mirror was equal",
        started.elapsed()
    );
    assert!(runs <= 6, "{runs} rsync runs for one file being written");
}

/// A file being copied in (created, then written for longer than the delay)
/// reaches the mirror once, whole, at its close: never as it was when it was
/// created (empty or cut short), and not sent twice.
#[test]
fn a_file_being_created_reaches_the_mirror_once_and_whole() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.counted_config(0.0));
    daemon.wait_idle();
    let before = fx.rsync_calls().len();
    let target = fx.dst.join("upload.bin");
    let started = Instant::now();
    let mut file = fs::File::create(fx.src.join("upload.bin")).unwrap();
    let chunk = vec![0x33u8; 64 << 10];
    let mut seen_early = None;
    for i in 0..8u32 {
        file.write_all(&chunk).unwrap();
        // Pacing of the writer (the workload: never quiet for a second),
        // not synchronisation.
        let next = started + Duration::from_millis(100) * (i + 1);
        while Instant::now() < next {
            if seen_early.is_none() && target.exists() {
                seen_early = Some(size_of(&target));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    drop(file);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    assert_eq!(
        seen_early,
        None,
        "the mirror had the file before it was closed\n{}",
        daemon.log()
    );
    let runs = fx.rsync_calls().len() - before;
    assert_eq!(runs, 1, "{runs} rsync runs for one file copied in");
}
