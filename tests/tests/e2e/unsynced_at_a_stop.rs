//! A change the daemon saw and had not synced when it stopped (killed, or
//! stopped with a watch paused) arrives after the restart, also one the
//! restart's full sync cannot see: a same-size rewrite with its mtime kept
//! (`cp -p`, `tar x`), and a deletion under `delete = "running"`, whose full
//! syncs delete nothing. Before: only the watch was recorded, and the full
//! sync compared size and mtime; found by a black-box attack (4 of 4 kills,
//! 4 of 4 stops with the target failing, 2 of 2 stops while paused).

use std::fs;
use std::time::Duration;

use inosync_tests::{Daemon, Fixture, poll_until};

fn wait_pending(daemon: &Daemon, n: u64) {
    let pending = poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][0]["pending"].as_u64() >= Some(n)
    });
    assert!(pending, "{}\n{}", daemon.status(), daemon.log());
}

/// A same-size rewrite with its mtime kept, pending (a delay) when the daemon
/// is killed: the restart sends it.
#[test]
fn a_same_size_rewrite_pending_at_a_kill_arrives_after_the_restart() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "AAAAAAAAAA").unwrap();
    let config = fx.config("delay = 3");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    assert_eq!(fs::read_to_string(fx.dst.join("f")).unwrap(), "AAAAAAAAAA");
    inosync_tests::rewrite_keeping_mtime(&fx.src.join("f"), "BBBBBBBBBB");
    wait_pending(&daemon, 1);
    daemon.kill();
    let restarted = fx.restart_toml(&config);
    restarted.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("f")).unwrap(),
        "BBBBBBBBBB",
        "the rewrite seen before the kill was lost\n{}",
        restarted.log()
    );
}

/// A mirrored `f`, then a same-size rewrite of it with its mtime kept in a
/// paused watch, and the daemon stopped (SIGTERM) `stops` times, started again
/// after each; then resumed: `f` must arrive.
fn paused_rewrite_survives_stops(stops: usize) {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "AAAAAAAAAA").unwrap();
    let config = fx.simple_config("");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    daemon.ctl_ok(&["pause"]);
    inosync_tests::rewrite_keeping_mtime(&fx.src.join("f"), "BBBBBBBBBB");
    for _ in 0..stops {
        wait_pending(&daemon, 1);
        let status = daemon.terminate();
        assert!(status.success(), "{status}\n{}", daemon.log());
        daemon = fx.restart_toml(&config);
    }
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("f")).unwrap(),
        "BBBBBBBBBB",
        "the rewrite held through {stops} stop(s) was lost\n{}",
        daemon.log()
    );
}

/// The same rewrite in a paused watch, and the daemon stopped (SIGTERM): after
/// the restart and `resume`, it arrives.
#[test]
fn a_same_size_rewrite_held_by_a_pause_at_a_stop_arrives_after_the_restart() {
    paused_rewrite_survives_stops(1);
}

/// Under `delete = "running"`, a deletion pending when the daemon is killed is
/// applied after the restart; a file the target alone holds stays.
#[test]
fn a_deletion_pending_at_a_kill_is_applied_after_the_restart_under_delete_running() {
    let fx = Fixture::new();
    fs::write(fx.src.join("gone"), "x").unwrap();
    let config = fx.config("delay = 3\ndelete = \"running\"");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    fs::write(fx.dst.join("target-only"), "the target's own").unwrap();
    fs::remove_file(fx.src.join("gone")).unwrap();
    wait_pending(&daemon, 1);
    daemon.kill();
    let restarted = fx.restart_toml(&config);
    restarted.wait_idle();
    assert!(
        !fx.dst.join("gone").exists(),
        "the deletion seen before the kill was not applied\n{}",
        restarted.log()
    );
    assert!(fx.dst.join("target-only").exists(), "{}", restarted.log());
}

/// A state file (and so the journal of changes not yet synced) inside the
/// watched tree: under inotify the daemon sees its own writes to it, and a
/// change must not make it note, sync and empty its journal for ever. After a
/// change and `wait`, no rsync runs while nothing changes.
#[test]
fn a_journal_inside_the_watched_tree_does_not_feed_on_itself() {
    let fx = Fixture::new();
    let own = fx.src.join("own");
    fs::create_dir(&own).unwrap();
    let cfg = fx.path("inosync.toml");
    fs::write(&cfg, fx.counted_config(0.0)).unwrap();
    let state = own.join("state.toml");
    let daemon = fx.start_raw(&[
        "-c".as_ref(),
        cfg.as_os_str(),
        "--state".as_ref(),
        state.as_os_str(),
        "--backend".as_ref(),
        "inotify".as_ref(),
    ]);
    daemon.wait_idle();
    fs::write(fx.src.join("f"), "x").unwrap();
    daemon.wait_idle();
    let runs = || {
        fs::read_to_string(fx.calls_log())
            .unwrap_or_default()
            .lines()
            .count()
    };
    // Its own writes settle within a few runs.
    let settled = poll_until(Duration::from_secs(10), || {
        let before = runs();
        std::thread::sleep(Duration::from_millis(700));
        daemon.wait_idle();
        runs() == before
    });
    assert!(
        settled,
        "rsync keeps running: {} runs\n{}",
        runs(),
        daemon.log()
    );
    assert_eq!(fs::read_to_string(fx.dst.join("f")).unwrap(), "x");
}

/// Held by a pause through two stops: the first restart takes the change up
/// and must keep it for the next (before: it rewrote the journal empty, and
/// the second restart lost the rewrite; found by a review).
#[test]
fn a_same_size_rewrite_held_through_two_restarts_arrives() {
    paused_rewrite_survives_stops(2);
}

/// A record of a file with another name, left in the journal by a daemon
/// killed before it had looked for that name (written by hand here: under
/// inotify the window is the milliseconds of a walk; under fanotify a
/// record taken up is no event, so its index is not asked): the restart
/// looks for the other names, and both get the same-size rewrite with its
/// mtime kept, which the restart's full sync cannot see.
#[test]
fn a_linked_files_record_left_at_a_kill_reaches_its_other_name_after_the_restart() {
    let fx = Fixture::new();
    fs::write(fx.src.join("a"), "AAAAAAAAAA").unwrap();
    fs::hard_link(fx.src.join("a"), fx.src.join("kept")).unwrap();
    let config = fx.config("delay = 0");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    daemon.kill();
    inosync_tests::rewrite_keeping_mtime(&fx.src.join("a"), "BBBBBBBBBB");
    fx.leave_pending_path("a");
    let restarted = fx.restart_toml(&config);
    restarted.wait_idle();
    for name in ["a", "kept"] {
        assert_eq!(
            fs::read_to_string(fx.dst.join(name)).unwrap(),
            "BBBBBBBBBB",
            "{name}\n{}",
            restarted.log()
        );
    }
}

/// A daemon killed while it looked for the other names of a file written
/// through one, and that name removed before the restart: the restart has
/// no name to look from, only the search's own record (the file's
/// filesystem and inode, written by hand here), and the other name still
/// gets the same-size rewrite with its mtime kept (before: the record was
/// not kept, and the other name stayed stale while `wait` said idle; a
/// black-box attack, 2 of 2 kills during a search of a 150,000-file tree).
#[test]
fn a_search_left_by_a_kill_finds_the_other_name_when_the_written_one_is_gone() {
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("a")).unwrap();
    fs::write(fx.src.join("a/f"), "AAAAAAAAAA").unwrap();
    fs::hard_link(fx.src.join("a/f"), fx.src.join("kept")).unwrap();
    let config = fx.config("delay = 0");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    daemon.kill();
    inosync_tests::rewrite_keeping_mtime(&fx.src.join("a/f"), "BBBBBBBBBB");
    let meta = fs::metadata(fx.src.join("a/f")).unwrap();
    fs::remove_dir_all(fx.src.join("a")).unwrap();
    fx.leave_pending_record(b'I', format!("{}:{}", meta.dev(), meta.ino()).as_bytes());
    let restarted = fx.restart_toml(&config);
    restarted.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("kept")).unwrap(),
        "BBBBBBBBBB",
        "{}",
        restarted.log()
    );
    assert!(!fx.dst.join("a").exists(), "{}", restarted.log());
}

/// The whole way of a search left by a kill: a file with another name
/// rewritten (same size, mtime kept) while its change waits (a paused
/// watch: with a long `delay`, a write of another test on the same
/// filesystem that fanotify cannot place makes a full sync that waits as
/// long, and `wait` before the rewrite timed out in a CI rehearsal); the
/// daemon records its search for the other names (under inotify, which has
/// no index of them: an `I` record with the file's filesystem and inode),
/// is killed, and the name written through is removed before the restart,
/// which still brings the other name its new content.
#[test]
fn a_search_recorded_before_a_kill_is_done_again_after_it() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("a")).unwrap();
    fs::write(fx.src.join("a/f"), "AAAAAAAAAA").unwrap();
    fs::hard_link(fx.src.join("a/f"), fx.src.join("kept")).unwrap();
    let config = fx.simple_config("");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    let inotify = daemon.status()["watches"][0]["backend"] == "inotify";
    daemon.ctl_ok(&["pause"]);
    inosync_tests::rewrite_keeping_mtime(&fx.src.join("a/f"), "BBBBBBBBBB");
    wait_pending(&daemon, 1);
    if inotify {
        let meta = fs::metadata(fx.src.join("a/f")).unwrap();
        let root = fs::canonicalize(&fx.src).unwrap();
        let inode = format!("{}:{}", meta.dev(), meta.ino());
        let record = [
            b"I",
            root.as_os_str().as_bytes(),
            b"\0",
            inode.as_bytes(),
            b"\0",
        ]
        .concat();
        let mut journal = fx.state_file().into_os_string();
        journal.push(".pending");
        let recorded = poll_until(Duration::from_secs(10), || {
            fs::read(&journal).is_ok_and(|bytes| bytes.windows(record.len()).any(|w| w == record))
        });
        assert!(recorded, "no search recorded\n{}", daemon.log());
    }
    daemon.kill();
    fs::remove_dir_all(fx.src.join("a")).unwrap();
    let restarted = fx.restart_toml(&config);
    restarted.ctl_ok(&["resume"]);
    restarted.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("kept")).unwrap(),
        "BBBBBBBBBB",
        "{}",
        restarted.log()
    );
}

/// A file with another name rewritten (same size, mtime kept) through a
/// name removed before the daemon read the write, while the watch is
/// paused: under inotify nothing says which file was written, so the daemon
/// records a search of the trees for the files changed since (a `C`
/// record), is killed, and the restart does that search again: the other
/// name gets the new content (before: the search was not recorded, and the
/// restart's full sync, which compares size and mtime, left the other name
/// stale). fanotify follows the write to the file's names (or searches by
/// its inode, an `I` record) and records them.
#[test]
fn a_search_by_change_time_left_by_a_kill_is_done_again_after_it() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("d")).unwrap();
    fs::write(fx.src.join("d/b"), "AAAAAAAAAA").unwrap();
    fs::hard_link(fx.src.join("d/b"), fx.src.join("d/c")).unwrap();
    let config = fx.simple_config("");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    daemon.ctl_ok(&["pause"]);
    // Both before the daemon reads the write (stopped meanwhile): read
    // while `d/c` still names the file, the write is followed to `d/b`
    // by name, and nothing is searched for by change time.
    inosync_tests::processes::signal(daemon.pid(), libc::SIGSTOP);
    inosync_tests::rewrite_keeping_mtime(&fx.src.join("d/c"), "BBBBBBBBBB");
    fs::remove_file(fx.src.join("d/c")).unwrap();
    inosync_tests::processes::signal(daemon.pid(), libc::SIGCONT);
    let root = fs::canonicalize(&fx.src).unwrap();
    let mut journal = fx.state_file().into_os_string();
    journal.push(".pending");
    let record = |kind: &[u8], rel: &[u8]| [kind, root.as_os_str().as_bytes(), b"\0", rel].concat();
    // Under fanotify, `d/b` once the write is placed, or before that the
    // written file by its inode (other tests' files on this filesystem
    // may be noted in this journal too).
    let meta = fs::metadata(fx.src.join("d/b")).unwrap();
    let inode = format!("{}:{}\0", meta.dev(), meta.ino());
    let wanted = if daemon.status()["watches"][0]["backend"] == "inotify" {
        vec![record(b"C", b"")]
    } else {
        vec![record(b"P", b"d/b\0"), record(b"I", inode.as_bytes())]
    };
    let recorded = poll_until(Duration::from_secs(10), || {
        fs::read(&journal).is_ok_and(|bytes| {
            wanted
                .iter()
                .any(|record| bytes.windows(record.len()).any(|w| w == record))
        })
    });
    assert!(
        recorded,
        "neither d/b nor a search recorded\n{}",
        daemon.log()
    );
    daemon.kill();
    let restarted = fx.restart_toml(&config);
    restarted.ctl_ok(&["resume"]);
    restarted.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("d/b")).unwrap(),
        "BBBBBBBBBB",
        "{}",
        restarted.log()
    );
}

/// A config of one watch (`delay = 30`, `initial_sync = false`) whose state
/// lies on a tmpfs of its own, mounted with `options` (`size=` first), after a
/// first daemon made its files there and stopped.
struct StateOnASmallFs {
    dir: std::path::PathBuf,
    config: std::path::PathBuf,
    _mount: inosync_tests::Mount,
}

impl StateOnASmallFs {
    fn new(fx: &Fixture, options: &str) -> StateOnASmallFs {
        let dir = fx.path("state-fs");
        fs::create_dir(&dir).unwrap();
        let mount = inosync_tests::Mount::tmpfs_sized(&dir, options);
        let config = fx.path("inosync.toml");
        fs::write(&config, fx.config("delay = 30\ninitial_sync = false")).unwrap();
        let on_small = StateOnASmallFs {
            dir,
            config,
            _mount: mount,
        };
        let mut first = on_small.start(fx);
        first.wait_idle();
        first.terminate();
        on_small
    }

    /// Starts the daemon again (after a kill) and waits: `rel` must have
    /// arrived.
    fn restart_and_expect(&self, fx: &Fixture, rel: &str) {
        let restarted = self.start(fx);
        restarted.wait_idle();
        assert!(
            fx.dst.join(rel).exists(),
            "the change seen before the kill was lost\n{}",
            restarted.log()
        );
    }

    /// Starts `inosyncd` on the config, with the state on the small tmpfs.
    fn start(&self, fx: &Fixture) -> Daemon {
        let state = self.dir.join("state.toml");
        fx.start_raw(&[
            "-c".as_ref(),
            self.config.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
        ])
    }
}

/// Fills the filesystem at `dir` to its last byte.
fn fill(dir: &std::path::Path) {
    use std::io::Write;
    for (name, chunk) in [("filler", 4096), ("filler-bytes", 1)] {
        let mut file = fs::File::create(dir.join(name)).unwrap();
        while file.write_all(&vec![0u8; chunk]).is_ok() {}
    }
}

/// The state file's directory full at start: the running mark is still
/// made (empty: a name takes no data), so a kill while a change waits and the
/// journal cannot be written is still known at the next start, which syncs
/// every watch whole, also with `initial_sync = false`. Before: the mark was
/// not written, nothing said so in `status` (nor that the journal could not
/// be written), and the change never arrived while `wait` said idle (a
/// black-box attack, 4 of 4).
#[test]
fn a_kill_while_the_state_directory_is_full_is_known_at_the_next_start() {
    let fx = Fixture::new();
    let on_small = StateOnASmallFs::new(&fx, "64k");
    let state_dir = &on_small.dir;
    fill(state_dir);
    let mut daemon = on_small.start(&fx);
    daemon.wait_idle();
    fs::write(
        fx.src.join("new"),
        "made while the state directory was full",
    )
    .unwrap();
    wait_pending(&daemon, 1);
    // The journal could not be written: `status` says so.
    let error = daemon.status()["state_file_error"].clone();
    assert!(
        error.as_str().is_some_and(|e| e.contains(".pending")),
        "{error}\n{}",
        daemon.log()
    );
    daemon.kill();
    fs::remove_file(state_dir.join("filler")).unwrap();
    fs::remove_file(state_dir.join("filler-bytes")).unwrap();
    on_small.restart_and_expect(&fx, "new");
}

/// No inode left where the state is kept: the running mark cannot be made
/// at all. `status` says so (`state_file_error`), and the mark is made with
/// the first change seen once an inode is free, so a kill after that is
/// known at the next start.
#[test]
fn a_running_mark_that_cannot_be_made_is_shown_and_made_later() {
    let fx = Fixture::new();
    let on_small = StateOnASmallFs::new(&fx, "1m,nr_inodes=16");
    let state_dir = &on_small.dir;
    let mut fillers = 0;
    while fs::write(state_dir.join(format!("filler-{fillers}")), "").is_ok() {
        fillers += 1;
    }
    let mut daemon = on_small.start(&fx);
    daemon.wait_idle();
    let error = daemon.status()["state_file_error"].clone();
    assert!(
        error.as_str().is_some_and(|e| e.contains(".running")),
        "{error}\n{}",
        daemon.log()
    );
    fs::remove_file(state_dir.join("filler-0")).unwrap();
    fs::write(fx.src.join("new"), "seen once an inode was free").unwrap();
    wait_pending(&daemon, 1);
    assert!(
        state_dir.join("state.toml.running").exists(),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.status()["state_file_error"], serde_json::Value::Null);
    daemon.kill();
    on_small.restart_and_expect(&fx, "new");
}

/// A same-size rewrite with its mtime kept, made while the daemon is stopped
/// (SIGSTOP: its events wait unread in the kernel's queue), then the daemon
/// killed: neither the journal nor the restart's full sync (size and mtime)
/// knows it. The restart after a kill looks for the files changed since the
/// killed daemon last emptied its queue (their change time, which no user can
/// set back), and lists them. Before: lost on both backends (a black-box
/// attack, 2 of 2).
#[test]
fn a_change_still_queued_in_the_kernel_at_a_kill_arrives_after_the_restart() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "AAAAAAAAAA").unwrap();
    let config = fx.config("delay = 0");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    // SAFETY: plain kill(2) on the daemon under test.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGSTOP) };
    inosync_tests::rewrite_keeping_mtime(&fx.src.join("f"), "BBBBBBBBBB");
    daemon.kill();
    let restarted = fx.restart_toml(&config);
    restarted.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("f")).unwrap(),
        "BBBBBBBBBB",
        "the rewrite queued in the kernel at the kill was lost\n{}",
        restarted.log()
    );
}

/// The running mark's time follows the events read (at most once a second),
/// so that a start after a kill looks for the files changed since the last
/// read rather than since the killed daemon's start, which may be months.
#[test]
fn the_running_mark_follows_the_events_read() {
    let fx = Fixture::new();
    let mut marker = fx.state_file().into_os_string();
    marker.push(".running");
    let marked = || {
        fs::metadata(&marker)
            .and_then(|m| m.modified())
            .expect("the running mark")
    };
    let daemon = fx.start_toml(&fx.config("delay = 0"));
    daemon.wait_idle();
    let at_start = marked();
    let mut n = 0;
    let moved_on = poll_until(Duration::from_secs(10), || {
        n += 1;
        fs::write(fx.src.join(format!("f{n}")), "x").unwrap();
        daemon.wait_idle();
        marked() > at_start
    });
    assert!(moved_on, "{}", daemon.log());
}

/// A running mark dated in the future (a clock set back, a hand that
/// touched it) says nothing of what was read: the restart lists every file
/// rather than none (a black-box attack: the rewrites queued at the kill
/// were missed, 4 of 4).
#[test]
fn a_running_mark_dated_in_the_future_misses_no_change() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "AAAAAAAAAA").unwrap();
    let config = fx.config("delay = 0");
    let mut daemon = fx.start_toml(&config);
    daemon.wait_idle();
    // SAFETY: plain kill(2) on the daemon under test.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGSTOP) };
    inosync_tests::rewrite_keeping_mtime(&fx.src.join("f"), "BBBBBBBBBB");
    let mut marker = fx.state_file().into_os_string();
    marker.push(".running");
    let tomorrow = std::time::SystemTime::now() + Duration::from_secs(86_400);
    fs::File::options()
        .write(true)
        .open(&marker)
        .and_then(|mark| mark.set_modified(tomorrow))
        .unwrap();
    daemon.kill();
    let restarted = fx.restart_toml(&config);
    restarted.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.dst.join("f")).unwrap(),
        "BBBBBBBBBB",
        "{}",
        restarted.log()
    );
}
