//! A move in the source is a rename on the target, not a re-send. The proof:
//! before the move every target file is hard-linked into a directory outside the
//! target; afterwards the files under their new names still have two links (a
//! re-sent file is a new inode with one).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use inosync_tests::remote::Sshd;
use inosync_tests::{
    Daemon, Fixture, assert_trees_equal, compare_trees, poll_until, write_odd_names,
};

/// Hard-links every file below `dir` into `keep` (flattened names).
fn keep_links(dir: &Path, keep: &Path) {
    fs::create_dir_all(keep).unwrap();
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                n += 1;
                fs::hard_link(entry.path(), keep.join(format!("f{n}"))).unwrap();
            }
        }
    }
}

/// Every file below `dir` has two links: it is the same inode as before.
fn all_renamed(dir: &Path) -> Result<usize, String> {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .flatten()
        {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                n += 1;
                if meta.nlink() != 2 {
                    return Err(format!("{} was sent again", entry.path().display()));
                }
            }
        }
    }
    Ok(n)
}

fn photos(root: &Path) {
    fs::create_dir_all(root.join("photos/2025/summer")).unwrap();
    for i in 0..20 {
        fs::write(
            root.join(format!("photos/2025/summer/img{i}.jpg")),
            vec![i as u8; 4096],
        )
        .unwrap();
    }
    fs::write(root.join("photos/index.txt"), "index").unwrap();
    fs::write(root.join("single.bin"), vec![7u8; 10_000]).unwrap();
    write_odd_names(&root.join("photos"));
    // Moves go into a directory that is already watched (into one made a moment
    // before, the kernel reports no arrival: that is a transfer).
    fs::create_dir(root.join("archive")).unwrap();
}

fn moves_then_check(fx: &Fixture, daemon: &Daemon, target: &Path) {
    daemon.wait_idle();
    keep_links(target, &fx.path("keep"));
    fs::rename(fx.src.join("photos"), fx.src.join("archive/photos 2025")).unwrap();
    fs::rename(
        fx.src.join("single.bin"),
        fx.src.join("archive/-single.bin"),
    )
    .unwrap();
    daemon.wait_idle();
    if let Err(problems) = compare_trees(&fx.src, target) {
        panic!("{problems}\n{}", daemon.log());
    }
    let renamed = all_renamed(&target.join("archive"));
    assert!(
        renamed.as_ref().is_ok_and(|n| *n > 40),
        "{renamed:?}\n{}",
        daemon.log()
    );
}

#[test]
fn a_moved_directory_and_file_are_renamed_on_a_local_target() {
    let fx = Fixture::new();
    photos(&fx.src);
    let daemon = fx.start_quick();
    moves_then_check(&fx, &daemon, &fx.dst);
}

/// An sshd on loopback and the directory its target writes into.
fn ssh_target(fx: &Fixture) -> (Sshd, std::path::PathBuf) {
    assert!(
        Sshd::available(),
        "sshd is not installed (.ci/run installs it)"
    );
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    (Sshd::start(fx.dir.path()), remote)
}

#[test]
fn a_moved_directory_and_file_are_renamed_on_an_ssh_target() {
    let fx = Fixture::new();
    let (sshd, remote) = ssh_target(&fx);
    photos(&fx.src);
    let config = sshd.config("delay = 0", &fx.src, &remote);
    let daemon = fx.start_toml(&config);
    moves_then_check(&fx, &daemon, &remote);
}

#[test]
fn a_move_is_renamed_on_an_ssh_target_named_by_its_ipv6_address() {
    let fx = Fixture::new();
    let (sshd, remote) = ssh_target(&fx);
    photos(&fx.src);
    let config = sshd.config_at("[::1]", "delay = 0", &fx.src, &remote);
    let daemon = fx.start_toml(&config);
    moves_then_check(&fx, &daemon, &remote);
}

#[test]
fn chains_swaps_and_moves_across_excludes_and_watches_converge() {
    let fx = Fixture::new();
    let other = fx.path("other");
    let other_dst = fx.path("other-dst");
    fs::create_dir(&other).unwrap();
    for name in ["a", "x", "y", "inside"] {
        fs::create_dir(fx.src.join(name)).unwrap();
        fs::write(fx.src.join(name).join("f"), name).unwrap();
    }
    let config = format!(
        "delay = 0.2\nexcludes = [\"/skip/\"]\n\
         [[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n\
         [[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n",
        fx.src.display(),
        fx.dst.display(),
        other.display(),
        other_dst.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    // a -> b -> c in one batch.
    fs::rename(fx.src.join("a"), fx.src.join("b")).unwrap();
    fs::rename(fx.src.join("b"), fx.src.join("c")).unwrap();
    // x and y swap through a temporary name.
    fs::rename(fx.src.join("x"), fx.src.join("t")).unwrap();
    fs::rename(fx.src.join("y"), fx.src.join("x")).unwrap();
    fs::rename(fx.src.join("t"), fx.src.join("y")).unwrap();
    // Into an excluded directory and out of one, and into the other watch.
    fs::create_dir(fx.src.join("skip")).unwrap();
    fs::rename(fx.src.join("inside"), fx.src.join("skip/inside")).unwrap();
    fs::write(fx.src.join("skip/was-skipped"), "now in").unwrap();
    fs::rename(fx.src.join("skip/was-skipped"), fx.src.join("arrived")).unwrap();
    fs::rename(fx.src.join("c"), other.join("c")).unwrap();
    daemon.wait_idle();
    let mut expected = Vec::new();
    for entry in fs::read_dir(&fx.dst).unwrap().flatten() {
        expected.push(entry.file_name().to_string_lossy().into_owned());
    }
    expected.sort();
    assert_eq!(expected, ["arrived", "x", "y"], "{}", daemon.log());
    assert_eq!(fs::read_to_string(fx.dst.join("x/f")).unwrap(), "y");
    assert_eq!(fs::read_to_string(fx.dst.join("y/f")).unwrap(), "x");
    assert_trees_equal(&other, &other_dst, &daemon);
}

/// The figure for the README: bytes rsync sends when a 1,000-file, 100 MB
/// directory is renamed, over ssh. Not a CI test (it moves 100 MB twice); run
/// with `cargo test -p inosync-tests -- --ignored --nocapture bytes_sent`, and
/// with `INOSYNC_BIN_DIR` pointing at older binaries for the "before".
#[test]
#[ignore]
fn bytes_sent_for_a_100_mb_directory_rename_over_ssh() {
    let fx = Fixture::new();
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let sshd = Sshd::start(fx.dir.path());
    fs::create_dir(fx.src.join("episodes")).unwrap();
    for i in 0..1000u32 {
        let data: Vec<u8> = (0..100_000u32)
            .map(|j| (j.wrapping_mul(31) ^ i) as u8)
            .collect();
        fs::write(fx.src.join(format!("episodes/ep{i:04}.mp3")), data).unwrap();
    }
    let config = sshd.config("delay = 0", &fx.src, &remote);
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    let before = daemon.log().len();
    fs::rename(fx.src.join("episodes"), fx.src.join("archive 2025")).unwrap();
    daemon.wait_idle();
    let log = daemon.log();
    let sent: u64 = log[before..]
        .lines()
        .filter_map(|l| l.split(", ").find_map(|p| p.strip_suffix(" bytes sent")))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    assert!(compare_trees(&fx.src, &remote).is_ok());
    eprintln!("rename of a 1,000-file 100 MB directory over ssh: {sent} bytes sent");
}

#[test]
fn an_ssh_rename_never_follows_a_symlink_out_of_the_mirror() {
    let fx = Fixture::new();
    let remote = fx.path("remote");
    let outside = fx.path("outside");
    fs::create_dir(&remote).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("y"), "outside the mirror").unwrap();
    let sshd = Sshd::start(fx.dir.path());
    fs::create_dir(fx.src.join("x")).unwrap();
    fs::write(fx.src.join("x/y"), "mirrored").unwrap();
    let daemon = fx.start_toml(&sshd.config("delay = 0", &fx.src, &remote));
    daemon.wait_idle();
    // A stale or tampered mirror: its x/ is a symlink to elsewhere.
    fs::remove_dir_all(remote.join("x")).unwrap();
    std::os::unix::fs::symlink(&outside, remote.join("x")).unwrap();
    fs::rename(fx.src.join("x/y"), fx.src.join("z")).unwrap();
    daemon.wait_idle();
    assert_eq!(
        fs::read_to_string(outside.join("y")).unwrap(),
        "outside the mirror"
    );
    assert_eq!(fs::read_to_string(remote.join("z")).unwrap(), "mirrored");
}

fn album(root: &Path) {
    fs::create_dir_all(root.join("music/album")).unwrap();
    for i in 0..200 {
        fs::write(
            root.join(format!("music/album/track{i:03}")),
            vec![i as u8; 1024],
        )
        .unwrap();
    }
}

/// `mv music/album "music/album 2"; mv music audio` in one batch: each move is
/// renamed on the target in the order it happened, so the first one's new
/// parent is the old `music` there, which the second then renames.
fn two_moves_then_check(fx: &Fixture, daemon: &Daemon, target: &Path) {
    daemon.wait_idle();
    keep_links(target, &fx.path("keep"));
    fs::rename(fx.src.join("music/album"), fx.src.join("music/album 2")).unwrap();
    fs::rename(fx.src.join("music"), fx.src.join("audio")).unwrap();
    daemon.wait_idle();
    if let Err(problems) = compare_trees(&fx.src, target) {
        panic!("{problems}\n{}", daemon.log());
    }
    let renamed = all_renamed(&target.join("audio"));
    assert_eq!(renamed, Ok(200), "{}", daemon.log());
}

#[test]
fn two_directory_moves_in_a_row_are_both_renamed_on_a_local_target() {
    let fx = Fixture::new();
    album(&fx.src);
    let daemon = fx.start_toml(&fx.config("delay = 1"));
    two_moves_then_check(&fx, &daemon, &fx.dst);
}

#[test]
fn two_directory_moves_in_a_row_are_both_renamed_on_an_ssh_target() {
    let fx = Fixture::new();
    let (sshd, remote) = ssh_target(&fx);
    album(&fx.src);
    let daemon = fx.start_toml(&sshd.config("delay = 1", &fx.src, &remote));
    two_moves_then_check(&fx, &daemon, &remote);
}

/// A directory moved where the rename cannot be done on the target (the new
/// name is taken there), and its old name made again with other files, all
/// in one batch (the daemon is stopped meanwhile): the move falls back to a
/// transfer, and the old name must end as the source has it, not keep the
/// files that were moved away (found by a black-box attack: `m/x/f1` stayed on
/// the target, `wait` said idle; the same on `rsync://` targets, which never
/// rename).
#[test]
fn a_move_that_falls_back_to_a_transfer_leaves_nothing_of_the_old_tree() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("m/x")).unwrap();
    fs::write(fx.src.join("m/x/f1"), "moved away").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    // Taken on the target only: the rename is refused (no replace).
    fs::create_dir_all(fx.dst.join("m/z")).unwrap();
    fs::write(fx.dst.join("m/z/junk"), "target only").unwrap();
    inosync_tests::processes::signal(daemon.pid(), libc::SIGSTOP);
    fs::rename(fx.src.join("m/x"), fx.src.join("m/z")).unwrap();
    fs::create_dir(fx.src.join("m/x")).unwrap();
    fs::write(fx.src.join("m/x/f0"), "made again").unwrap();
    inosync_tests::processes::signal(daemon.pid(), libc::SIGCONT);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A rename in the source is not repeated on the target when the user's
/// own rules (`rsync_args`) may protect something there: what an exclude of
/// theirs keeps on the target stays where it is (before: `exd`, excluded by
/// the user, was renamed to the new name on the target and its target-only
/// file deleted by the comparison; found by a black-box attack).
#[test]
fn a_rename_leaves_what_your_excludes_protect_on_the_target() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("exd")).unwrap();
    fs::write(fx.src.join("exd/f"), "f").unwrap();
    fs::create_dir(fx.src.join("prot")).unwrap();
    fs::write(fx.src.join("prot/p"), "p").unwrap();
    let daemon =
        fx.start_toml(&fx.simple_config("rsync_args = [\"--exclude=/exd\", \"--exclude=q\"]"));
    daemon.wait_idle();
    fs::create_dir(fx.dst.join("exd")).unwrap();
    fs::write(fx.dst.join("exd/mine"), "the target's own").unwrap();
    fs::write(fx.dst.join("prot/q"), "the target's own").unwrap();
    fs::rename(fx.src.join("exd"), fx.src.join("d2")).unwrap();
    fs::rename(fx.src.join("prot"), fx.src.join("prot2")).unwrap();
    daemon.wait_idle();
    for kept in ["exd/mine", "prot/q"] {
        assert!(
            fx.dst.join(kept).exists(),
            "the target's {kept} was moved or deleted\n{}",
            daemon.log()
        );
    }
    assert_eq!(fs::read_to_string(fx.dst.join("d2/f")).unwrap(), "f");
    assert_eq!(fs::read_to_string(fx.dst.join("prot2/p")).unwrap(), "p");
}

/// A directory moved while a full sync runs, and its old name made again
/// with other files (`mv x y; mkdir x`): nothing of the old tree stays below
/// the old name on the target, also under `delete = "running"`, whose full
/// syncs delete nothing (found by a black-box attack: hundreds of the old
/// tree's files stayed there, and `wait` and `verify --checksum` said equal).
#[test]
fn a_directory_moved_during_a_full_sync_and_made_again_keeps_nothing_of_the_old_tree() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("x")).unwrap();
    for i in 0..5 {
        fs::write(fx.src.join(format!("x/f{i}")), "old tree").unwrap();
    }
    fs::create_dir(fx.src.join("w")).unwrap();
    inosync_tests::run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(fx.src.join("x"))
            .arg(fx.src.join("w"))
            .arg(&fx.dst),
    );
    // Differs on the target: the start's full sync sends it, slowly.
    fs::write(fx.src.join("big"), vec![7u8; 3 << 20]).unwrap();
    let daemon = fx.start_toml(&fx.config("delay = 0\ndelete = \"running\"\nspeed = 1000"));
    let running = poll_until(Duration::from_secs(20), || daemon.status()["running"] != 0);
    assert!(running, "the full sync never started\n{}", daemon.log());
    // Writes go on beside it until the batch after it has started: a
    // directory made during writes is listed, not walked whole (a walk would
    // remove the old files on its own).
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (writing, dir) = (writing.clone(), fx.src.join("w"));
        std::thread::spawn(move || {
            let mut n = 0u32;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                fs::write(dir.join(format!("f{}", n % 50)), n.to_string()).unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    fs::rename(fx.src.join("x"), fx.src.join("y")).unwrap();
    fs::create_dir(fx.src.join("x")).unwrap();
    fs::write(fx.src.join("x/new"), "made again").unwrap();
    assert_ne!(
        daemon.status()["running"],
        0,
        "the full sync ended before the move: the test proves nothing"
    );
    let next_batch = poll_until(Duration::from_secs(30), || {
        daemon.log().matches("synced in").count() >= 2
    });
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(next_batch, "{}", daemon.log());
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// Writes `text` to each named file with one old mtime: only their contents
/// tell them apart.
fn alike(root: &Path, files: &[(&str, &str)]) {
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    for (name, text) in files {
        let path = root.join(name);
        fs::write(&path, text).unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
}

/// Makes `changes` while the daemon is stopped, so that they come in one
/// batch, then waits until it is idle.
fn in_one_batch(daemon: &Daemon, changes: impl FnOnce()) {
    inosync_tests::processes::signal(daemon.pid(), libc::SIGSTOP);
    changes();
    inosync_tests::processes::signal(daemon.pid(), libc::SIGCONT);
    daemon.wait_idle();
}

/// Moves each `(from, to)` below `root`, in turn.
fn moves(root: &Path, pairs: &[(&str, &str)]) {
    for (from, to) in pairs {
        fs::rename(root.join(from), root.join(to)).unwrap();
    }
}

/// Whether `target`'s `name` holds `text`, the daemon's log said if not.
fn holds(target: &Path, name: &str, text: &str, daemon: &Daemon) {
    assert_eq!(
        fs::read_to_string(target.join(name)).unwrap(),
        text,
        "{name}\n{}",
        daemon.log()
    );
}

/// `mv y x; mv x z` in one batch, `x` and `y` of the same size and mtime:
/// the first rename is refused on the target (`x` is there: no replace),
/// and the second then renamed the target's *old* `x` to `z`. Compared by
/// size and mtime, that stale `z` looked equal: `wait` and `verify` said
/// equal while `z` held `x`'s old bytes (found by a black-box attack, local
/// and ssh targets; also through a parent, `mv b d/a; mv d c`). A rename
/// after a refused one it depends on is compared by content.
fn an_overwrite_then_a_move_on(fx: &Fixture, daemon: &Daemon, target: &Path) {
    alike(&fx.src, &[("x", "XXXX"), ("y", "YYYY")]);
    daemon.wait_idle();
    holds(target, "x", "XXXX", daemon);
    in_one_batch(daemon, || moves(&fx.src, &[("y", "x"), ("x", "z")]));
    holds(target, "z", "YYYY", daemon);
    // The same through a parent: `mv b d/a; mv d c`.
    fs::create_dir(fx.src.join("d")).unwrap();
    alike(&fx.src, &[("d/a", "AAAA"), ("b", "BBBB")]);
    daemon.wait_idle();
    in_one_batch(daemon, || moves(&fx.src, &[("b", "d/a"), ("d", "c")]));
    holds(target, "c/a", "BBBB", daemon);
    assert_trees_equal(&fx.src, target, daemon);
}

#[test]
fn a_move_after_a_refused_rename_it_depends_on_is_compared_by_content_on_a_local_target() {
    let fx = Fixture::new();
    let daemon = fx.start_quick();
    an_overwrite_then_a_move_on(&fx, &daemon, &fx.dst);
}

#[test]
fn a_move_after_a_refused_rename_it_depends_on_is_compared_by_content_on_an_ssh_target() {
    let fx = Fixture::new();
    let (sshd, remote) = ssh_target(&fx);
    let config = sshd.config("delay = 0", &fx.src, &remote);
    let daemon = fx.start_toml(&config);
    an_overwrite_then_a_move_on(&fx, &daemon, &remote);
}

/// `mv music/y top/x; mv top/x top/z; mv music audio` in one batch, `x` and
/// `y` of the same size and mtime. fanotify names the first move by where
/// its directory is when read (`audio/y -> top/x`), so it waits for the third;
/// the second went ahead of it and renamed the target's *old* `top/x` to
/// `top/z`, equal by size and mtime (a review). A rename that went ahead of
/// an earlier move it is related to is compared by content.
#[test]
fn a_move_renamed_ahead_of_an_earlier_one_it_depends_on_is_compared_by_content() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("music")).unwrap();
    fs::create_dir_all(fx.src.join("top")).unwrap();
    alike(&fx.src, &[("top/x", "XXXX"), ("music/y", "YYYY")]);
    let daemon = fx.start_quick();
    daemon.wait_idle();
    in_one_batch(&daemon, || {
        moves(
            &fx.src,
            &[("music/y", "top/x"), ("top/x", "top/z"), ("music", "audio")],
        )
    });
    holds(&fx.dst, "top/z", "YYYY", &daemon);
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// `RENAME_EXCHANGE` of `d` and `e`, then `mv d/f g`, in one batch: the
/// exchange is no move (both halves are compared whole), and the rename of
/// `d/f` on the target took the target's *old* `d/f`, equal by size and
/// mtime (a black-box attack, 13 of 13). A rename out of (or into) a tree
/// compared whole is compared by content.
#[test]
fn a_move_out_of_an_exchanged_directory_is_compared_by_content() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("d")).unwrap();
    fs::create_dir_all(fx.src.join("e")).unwrap();
    alike(&fx.src, &[("d/f", "DDDD"), ("e/f", "EEEE")]);
    let daemon = fx.start_quick();
    daemon.wait_idle();
    in_one_batch(&daemon, || {
        crate::convergence::ops::exchange(&fx.src.join("d"), &fx.src.join("e")).unwrap();
        moves(&fx.src, &[("d/f", "g")]);
    });
    holds(&fx.dst, "g", "EEEE", &daemon);
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// `mv d/f1 d/f2` (refused on the target: `f2` is there), `mv d e`, `mv x
/// d` in one batch: `e` holds the target's old `f2` and must be compared by
/// content, not the file now at `d` (a black-box attack, 22 of 24).
#[test]
fn a_directory_moved_after_a_refused_move_inside_it_is_compared_by_content() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("d")).unwrap();
    alike(
        &fx.src,
        &[("d/f1", "1111"), ("d/f2", "2222"), ("x", "XXXX")],
    );
    let daemon = fx.start_quick();
    daemon.wait_idle();
    in_one_batch(&daemon, || {
        moves(&fx.src, &[("d/f1", "d/f2"), ("d", "e"), ("x", "d")])
    });
    holds(&fx.dst, "e/f2", "1111", &daemon);
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}
