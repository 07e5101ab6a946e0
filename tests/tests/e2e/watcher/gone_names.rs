//! Writes the daemon reads only after the name written through is gone
//! (fanotify: docs/RELIABILITY.md "Every kind of change"). The daemon is
//! stopped (SIGSTOP) while the files are written and their names changed, so
//! that every event of a case lands in one read, whatever the machine's load:
//! the order the kernel queued them in is the only thing the daemon has.
//! A file whose other names were not seen written reaches them (nothing lost);
//! a file whose every name was followed (renamed, linked, moved out) is no full
//! sync (nothing needless).

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use inosync_tests::{Daemon, Fixture, assert_trees_equal, poll_until};

use super::{on_fanotify, while_stopped};

fn append(path: &Path, text: &str) {
    let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn whole_tree_runs(daemon: &Daemon) -> usize {
    daemon.log().matches("the whole tree").count()
}

/// Two ways a name can seem known while it is not: a name moved out of the
/// tree and then deleted there, and two names of one file that renames made
/// one. In both, the file's name in the tree that nobody wrote through holds
/// the writes (found by a review of the first version of this code).
#[test]
fn a_name_moved_out_and_deleted_or_two_names_made_one_are_not_counted() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(fx.src.join("kept-a"), "v1").unwrap();
    fs::hard_link(fx.src.join("kept-a"), fx.src.join("a")).unwrap();
    fs::create_dir_all(fx.src.join("d1")).unwrap();
    fs::create_dir_all(fx.src.join("d2")).unwrap();
    fs::write(fx.src.join("kept-x"), "v1").unwrap();
    fs::hard_link(fx.src.join("kept-x"), fx.src.join("d1/x")).unwrap();
    fs::hard_link(fx.src.join("kept-x"), fx.src.join("d2/x")).unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    if !on_fanotify(&daemon) {
        eprintln!("skipped: inotify names no file (docs/RELIABILITY.md \"Known limits\")");
        return;
    }
    while_stopped(&daemon, || {
        append(&fx.src.join("a"), " and a write through a");
        fs::rename(fx.src.join("a"), outside.join("a")).unwrap();
        fs::remove_file(outside.join("a")).unwrap();
        append(&fx.src.join("d1/x"), " w1");
        append(&fx.src.join("d2/x"), " w2");
        fs::remove_file(fx.src.join("d2/x")).unwrap();
        fs::rename(fx.src.join("d1/x"), fx.src.join("d2/x")).unwrap();
        fs::rename(fx.src.join("d2/x"), fx.src.join("m")).unwrap();
    });
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// Names that are all followed: an atomic save (`mv .f.tmp f`), git's and
/// Maildir's write-then-link-then-unlink, an `O_TMPFILE` given a name with
/// `linkat`, a staging directory renamed, a file moved out, a symlink touched
/// and renamed. None of them is a full sync.
#[test]
fn names_followed_by_rename_link_or_move_out_are_no_full_sync() {
    // Its own filesystem: no other test's files counted (see the fixture).
    let fx = Fixture::on_own_filesystem();
    let outside = fx.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(fx.src.join("f"), "v0").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    if !on_fanotify(&daemon) {
        eprintln!("skipped: inotify has no file handles to look written files up by");
        return;
    }
    let before = whole_tree_runs(&daemon);
    assert!(before > 0, "the start's full sync is not logged as such");
    while_stopped(&daemon, || {
        fs::write(fx.src.join(".f.tmp"), "v1").unwrap();
        fs::rename(fx.src.join(".f.tmp"), fx.src.join("f")).unwrap();
        fs::create_dir(fx.src.join("objects")).unwrap();
        for i in 0..3 {
            let tmp = fx.src.join(format!("objects/tmp_obj_{i}"));
            fs::write(&tmp, format!("object {i}")).unwrap();
            fs::hard_link(&tmp, fx.src.join(format!("objects/{i:02x}"))).unwrap();
            fs::remove_file(&tmp).unwrap();
        }
        write_tmpfile_and_link(&fx.src, "from-tmpfile");
        fs::create_dir(fx.src.join(".staging")).unwrap();
        fs::write(fx.src.join(".staging/page"), "release").unwrap();
        fs::rename(fx.src.join(".staging"), fx.src.join("release")).unwrap();
        fs::write(fx.src.join("outgoing"), "processed elsewhere").unwrap();
        fs::rename(fx.src.join("outgoing"), outside.join("outgoing")).unwrap();
        std::os::unix::fs::symlink("f", fx.src.join(".ln.tmp")).unwrap();
        touch_symlink(&fx.src.join(".ln.tmp"));
        fs::rename(fx.src.join(".ln.tmp"), fx.src.join("ln")).unwrap();
    });
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    assert_eq!(
        whole_tree_runs(&daemon),
        before,
        "a followed name made a full sync:\n{}",
        daemon.log()
    );
}

/// The kernel names an `O_TMPFILE` `#<inode>` until `linkat` gives it a name,
/// and reports its writes under that name, which no directory holds: it
/// was listed, found missing, and under `delete = "running"` a file of that
/// name that only the target had was deleted there, though the source never
/// had nor removed one (a black-box attack, both backends). Writes through
/// the descriptor after the link are reported under that name too, and
/// must still reach the file's real name.
#[test]
fn an_o_tmpfile_deletes_nothing_named_like_it_and_its_writes_after_the_link_arrive() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config("delete = \"running\""));
    daemon.wait_idle();
    let mut file = open_tmpfile(&fx.src);
    let inode = file.metadata().unwrap().ino();
    let planted = fx.dst.join(format!("#{inode}"));
    fs::write(&planted, "only the target has this file").unwrap();
    file.write_all(b"written before it had a name\n").unwrap();
    link_tmpfile(&file, &fx.src.join("linked"));
    daemon.wait_idle();
    file.write_all(b"and after, through the same descriptor\n")
        .unwrap();
    drop(file);
    let arrived = poll_until(Duration::from_secs(20), || {
        fs::read(fx.dst.join("linked")).ok() == fs::read(fx.src.join("linked")).ok()
    });
    daemon.wait_idle();
    assert!(
        arrived,
        "the write after the link never arrived\n{}",
        daemon.log()
    );
    assert!(planted.exists(), "deleted on the target\n{}", daemon.log());
}

/// A real file named like an `O_TMPFILE` (`#1`), rewritten with its size
/// and mtime kept and renamed before the daemon reads the events: the write
/// goes with the rename to the new name (a review: under inotify the
/// write's name, missing when read, was taken for an `O_TMPFILE`'s and
/// dropped, and the rename alone compares sizes and mtimes).
#[test]
fn a_file_named_like_an_o_tmpfile_rewritten_then_renamed_arrives() {
    let fx = Fixture::new();
    let old: Vec<u8> = (0..300u32).map(|i| (i % 241) as u8).collect();
    fs::write(fx.src.join("#1"), &old).unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(5)).collect();
    while_stopped(&daemon, || {
        inosync_tests::rewrite_keeping_mtime(&fx.src.join("#1"), &new);
        fs::rename(fx.src.join("#1"), fx.src.join("final")).unwrap();
    });
    daemon.wait_idle();
    assert_eq!(
        fs::read(fx.dst.join("final")).unwrap(),
        new,
        "{}",
        daemon.log()
    );
    assert!(!fx.dst.join("#1").exists());
}

/// An `O_TMPFILE` in `dir`, written, then given the name `name` by `linkat`.
fn write_tmpfile_and_link(dir: &Path, name: &str) {
    let mut file = open_tmpfile(dir);
    file.write_all(b"written before it had a name").unwrap();
    link_tmpfile(&file, &dir.join(name));
}

/// An `O_TMPFILE` in `dir`, open for writing.
fn open_tmpfile(dir: &Path) -> fs::File {
    let c_dir = CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c_dir.as_ptr(), libc::O_TMPFILE | libc::O_WRONLY, 0o644) };
    assert!(fd >= 0, "O_TMPFILE: {}", std::io::Error::last_os_error());
    // SAFETY: a descriptor just opened, owned by the file from now on.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
}

/// Gives the open `O_TMPFILE` `file` the name `path` (`linkat`).
fn link_tmpfile(file: &fs::File, path: &Path) {
    use std::os::fd::AsRawFd;
    let c_proc = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap();
    let c_name = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated paths; AT_SYMLINK_FOLLOW names the open file.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            c_proc.as_ptr(),
            libc::AT_FDCWD,
            c_name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    assert_eq!(rc, 0, "linkat: {}", std::io::Error::last_os_error());
}

/// `touch -h`: the symlink's own times set to now (an attribute change).
fn touch_symlink(path: &Path) {
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; a null times pointer means now.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            std::ptr::null(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat: {}", std::io::Error::last_os_error());
}

/// A file written again and again through a name removed since (a log whose
/// name was removed while its writer goes on, every few milliseconds): its
/// other name reaches the mirror while the writes go on, not only once they
/// stop (found by a review: each write put the look-up off again).
#[test]
fn a_busy_writer_through_a_removed_name_reaches_the_other_name_while_it_writes() {
    let fx = Fixture::new();
    fs::write(fx.src.join("kept"), "v1").unwrap();
    fs::hard_link(fx.src.join("kept"), fx.src.join("log")).unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    if !on_fanotify(&daemon) {
        eprintln!("skipped: inotify names no file (docs/RELIABILITY.md \"Known limits\")");
        return;
    }
    let mut log = fs::OpenOptions::new()
        .append(true)
        .open(fx.src.join("log"))
        .unwrap();
    fs::remove_file(fx.src.join("log")).unwrap();
    daemon.wait_idle();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut lines = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && lines < 3000 {
                writeln!(log, "line {lines}").unwrap();
                lines += 1;
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
        })
    };
    let reached = inosync_tests::poll_until(std::time::Duration::from_secs(5), || {
        fs::read_to_string(fx.dst.join("kept")).is_ok_and(|k| k.contains("line 1\n"))
    });
    let still_writing = !writer.is_finished();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        reached && still_writing,
        "kept reached the mirror: {reached}, while writing: {still_writing}\n{}",
        daemon.log()
    );
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// Four more ways the name written through is gone or another file when the
/// daemon reads the write, each with the file's other name in the tree
/// holding what was written (found by a black-box attack; each lost the
/// change): a descriptor kept open after its name was removed (the kernel
/// merges the write with the deletion into one event); a write, then the
/// directory holding the name removed (`rm -rf`, never looked up); a name
/// outside the tree written and then removed; a write, then another file
/// renamed over the name.
#[test]
fn a_written_name_removed_with_its_directory_replaced_or_outside_still_reaches_the_other_name() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir(&outside).unwrap();
    for case in ["held", "dir", "out", "over"] {
        fs::write(fx.src.join(format!("{case}-kept")), "v1").unwrap();
    }
    fs::create_dir(fx.src.join("held-d")).unwrap();
    fs::hard_link(fx.src.join("held-kept"), fx.src.join("held-d/a")).unwrap();
    fs::create_dir_all(fx.src.join("dir-d/x")).unwrap();
    fs::hard_link(fx.src.join("dir-kept"), fx.src.join("dir-d/x/a")).unwrap();
    fs::hard_link(fx.src.join("out-kept"), outside.join("a")).unwrap();
    fs::hard_link(fx.src.join("over-kept"), fx.src.join("over-a")).unwrap();
    fs::write(fx.src.join("over-other"), "other").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    if !on_fanotify(&daemon) {
        eprintln!("skipped: inotify names no file (docs/RELIABILITY.md \"Known limits\")");
        return;
    }
    let mut held = None;
    while_stopped(&daemon, || {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(fx.src.join("held-d/a"))
            .unwrap();
        fs::remove_file(fx.src.join("held-d/a")).unwrap();
        file.write_all(b" and v2").unwrap();
        held = Some(file);
        append(&fx.src.join("dir-d/x/a"), " and v2");
        fs::remove_dir_all(fx.src.join("dir-d")).unwrap();
        append(&outside.join("a"), " and v2");
        fs::remove_file(outside.join("a")).unwrap();
        append(&fx.src.join("over-a"), " and v2");
        fs::rename(fx.src.join("over-other"), fx.src.join("over-a")).unwrap();
    });
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    drop(held);
}

/// Files written elsewhere on the tree's filesystem in a directory removed
/// before the daemon reads the writes (a build's or an unpacker's scratch
/// directory: files written, moved out, the directory removed): their one
/// name left is no tree's, so they cost no full sync and no search, however
/// often other programs do it (the CI's full suite: another test's scratch
/// directory made a full sync here, a second after the read).
#[test]
fn files_written_elsewhere_in_a_directory_removed_since_are_no_full_sync() {
    // Its own filesystem: no other test's files counted (see the fixture).
    let fx = Fixture::on_own_filesystem();
    let scratch = fx.path("elsewhere/scratch");
    fs::create_dir_all(&scratch).unwrap();
    fs::write(scratch.join("old"), "made before the start").unwrap();
    fs::write(fx.src.join("f"), "v0").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    if !on_fanotify(&daemon) {
        eprintln!("skipped: inotify watches the trees alone");
        return;
    }
    let before = whole_tree_runs(&daemon);
    while_stopped(&daemon, || {
        fs::write(scratch.join("new"), "unpacked").unwrap();
        append(&scratch.join("old"), " and written");
        fs::rename(scratch.join("new"), fx.path("elsewhere/new")).unwrap();
        fs::rename(scratch.join("old"), fx.path("elsewhere/old")).unwrap();
        fs::remove_dir(&scratch).unwrap();
    });
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let log = daemon.log();
    assert_eq!(
        whole_tree_runs(&daemon),
        before,
        "a file of no tree made a full sync:\n{log}"
    );
    assert!(
        !log.contains("other names, not known"),
        "a file of no tree was searched for:\n{log}"
    );
}
