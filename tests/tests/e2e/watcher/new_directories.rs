//! Directories made in the tree (`mkdir`, `cp -r`, an unpacked archive) go to
//! the mirror as whole trees, walked by rsync rather than listed path by path
//! (README "How a sync works"). Whatever else the same batch carries (changed
//! files elsewhere, moves into the new directory, files still being written
//! in it) must still arrive, once and whole.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use inosync_tests::{Fixture, Immutable, assert_trees_equal, poll_until};

use super::on_fanotify;

/// Whether some rsync run walked a tree (`--recursive` with a list, as
/// arguments or on stdin: the new directories), so a test of them cannot pass
/// by listing alone.
fn walked(fx: &Fixture, from: usize) -> bool {
    fx.rsync_calls()[from..].iter().any(|c| {
        c.contains("--recursive") && (c.contains("--relative") || c.contains("--files-from"))
    })
}

fn fill(dir: &std::path::Path, files: usize) {
    fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        fs::write(
            dir.join(format!("f{i:03}")),
            format!("{}/{i}\n", dir.display()),
        )
        .unwrap();
    }
}

#[test]
fn a_new_directory_and_a_changed_file_in_one_batch_both_arrive() {
    let fx = Fixture::new();
    fill(&fx.src.join("old"), 3);
    let daemon = fx.start_toml(&fx.counted_config(0.5));
    daemon.wait_idle();
    let before = fx.rsync_calls().len();
    fs::write(fx.src.join("old/f001"), "changed\n").unwrap();
    fill(&fx.src.join("new/sub"), 20);
    fill(&fx.src.join("new/other"), 5);
    fs::write(fx.src.join("new/top"), "top\n").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    assert!(
        walked(&fx, before),
        "the new directory was not walked: {:#?}",
        &fx.rsync_calls()[before..]
    );
}

/// A burst into new directories with changes elsewhere between them: every
/// file arrives, whether a batch found the writes paused (walked) or not
/// (listed).
#[test]
fn a_burst_into_new_directories_arrives_whole() {
    let fx = Fixture::new();
    fs::write(fx.src.join("existing"), "x\n").unwrap();
    let daemon = fx.start_toml(&fx.counted_config(0.0));
    daemon.wait_idle();
    let before = fx.rsync_calls().len();
    for d in 0..30 {
        fill(&fx.src.join(format!("b{d:02}")), 40);
        // Changes elsewhere in the same bursts.
        fs::write(fx.src.join("existing"), format!("{d}\n")).unwrap();
    }
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    // Walked or listed, as the writes paused or not (timing): either way
    // every file arrived.
    eprintln!("walked: {}", walked(&fx, before));
}

/// A file moved into a new directory is renamed on the target, not sent again:
/// the new directory is then listed path by path rather than walked and sent whole.
/// (fanotify only: under inotify a move into a directory made a moment before
/// may come before the directory's watch, and is then a deletion and a new
/// file, found by the scan of the directory.)
#[test]
fn a_file_moved_into_a_new_directory_is_renamed_on_the_target() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("a")).unwrap();
    fs::write(fx.src.join("a/big"), vec![7u8; 1 << 20]).unwrap();
    let daemon = fx.start_toml(&fx.counted_config(0.5));
    daemon.wait_idle();
    if !on_fanotify(&daemon) {
        return;
    }
    let inode = fs::metadata(fx.dst.join("a/big")).unwrap().ino();
    fill(&fx.src.join("new"), 3);
    fs::rename(fx.src.join("a/big"), fx.src.join("new/big")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    assert_eq!(
        fs::metadata(fx.dst.join("new/big")).unwrap().ino(),
        inode,
        "the moved file was sent again instead of renamed\n{}",
        daemon.log()
    );
}

/// A file still being written in a new directory is not walked with it: it
/// reaches the mirror at its close, whole, never cut short. (Under inotify a
/// file the scan of a new directory finds is listed at once, as before the
/// walk existed: only fanotify reports every creation.)
#[test]
fn a_file_being_written_in_a_new_directory_is_not_sent_cut() {
    let fx = Fixture::new();
    // The delay lets the file's creation be read before the batch starts.
    let daemon = fx.start_toml(&fx.counted_config(0.3));
    daemon.wait_idle();
    if !on_fanotify(&daemon) {
        return;
    }
    let before = fx.rsync_calls().len();
    fs::create_dir(fx.src.join("upload")).unwrap();
    let mut file = fs::File::create(fx.src.join("upload/part.bin")).unwrap();
    fill(&fx.src.join("upload"), 5);
    let target = fx.dst.join("upload/part.bin");
    let chunk = vec![0x44u8; 32 << 10];
    let started = Instant::now();
    let mut cut = None;
    for i in 0..6u32 {
        file.write_all(&chunk).unwrap();
        // Pacing of the writer (the workload), not synchronisation.
        let next = started + Duration::from_millis(100) * (i + 1);
        while Instant::now() < next {
            if cut.is_none()
                && let Ok(m) = fs::metadata(&target)
            {
                cut = Some(m.len());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        poll_until(Duration::from_secs(10), || fx
            .dst
            .join("upload/f004")
            .exists()),
        "the new directory's closed files never arrived\n{}",
        daemon.log()
    );
    assert_eq!(cut, None, "the file reached the mirror while being written");
    drop(file);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    assert!(walked(&fx, before), "the new directory was not walked");
}

fn first_target(daemon: &inosync_tests::Daemon) -> serde_json::Value {
    daemon.status()["watches"][0]["targets"][0].clone()
}

/// Whether the first target holds some path.
fn holds_a_path(daemon: &inosync_tests::Daemon) -> bool {
    first_target(daemon)["held"]
        .as_array()
        .is_some_and(|h| !h.is_empty())
}

/// A file of a walked tree the target refuses is held on its own, as in a
/// list; the rest of the tree arrives and the batch does not fail (before:
/// the whole batch failed and was retried with backoff, `failures` 1).
#[test]
fn a_file_the_target_refuses_in_a_walked_tree_is_held_alone() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.counted_config(0.0));
    daemon.wait_idle();
    let before = fx.rsync_calls().len();
    fs::create_dir_all(fx.dst.join("new/locked")).unwrap();
    let lock = Immutable::set(&fx.dst.join("new/locked"));
    fill(&fx.src.join("new/locked"), 2);
    fill(&fx.src.join("new/open"), 3);
    let held = poll_until(Duration::from_secs(20), || {
        holds_a_path(&daemon) && fx.dst.join("new/open/f002").exists()
    });
    assert!(held, "{}\n{}", daemon.status(), daemon.log());
    assert!(walked(&fx, before), "the new directory was not walked");
    let target = first_target(&daemon);
    assert_eq!(target["failures"], 0, "the whole batch failed: {target}");
    let held: Vec<String> = target["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        held.iter()
            .all(|p| p == "new/locked" || p.starts_with("new/locked/"))
            && !held.iter().any(|p| p.contains("/.f")),
        "held: {held:?}"
    );
    drop(lock);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A directory of a walked tree the target cannot make is named alone by
/// rsync: what the batch had below it goes again, listed, and arrives once
/// the target lets it (before: the directory was retried alone and its
/// files never arrived).
#[test]
fn the_files_below_a_directory_the_target_cannot_make_arrive_later() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.counted_config(0.0));
    daemon.wait_idle();
    let before = fx.rsync_calls().len();
    fs::create_dir(fx.dst.join("new")).unwrap();
    let lock = Immutable::set(&fx.dst.join("new"));
    fill(&fx.src.join("new/sub"), 3);
    let held = poll_until(Duration::from_secs(20), || holds_a_path(&daemon));
    assert!(held, "{}\n{}", daemon.status(), daemon.log());
    assert!(walked(&fx, before), "the new directory was not walked");
    drop(lock);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// Bytes rsync sent in the daemon's log lines from `from` on.
fn bytes_sent(daemon: &inosync_tests::Daemon, from: usize) -> u64 {
    daemon.log()[from..]
        .lines()
        .filter(|l| l.contains("synced in"))
        .filter_map(|l| l.split(", ").find_map(|p| p.strip_suffix(" bytes sent")))
        .filter_map(|n| n.replace(',', "").parse::<u64>().ok())
        .sum()
}

/// A tree moved in from outside into a new directory is sent once: walked
/// with the new directory, not compared whole again after the walk (before:
/// 2 MB sent twice).
#[test]
fn a_tree_moved_into_a_new_directory_is_sent_once() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir_all(outside.join("tree")).unwrap();
    fs::write(outside.join("tree/big"), vec![3u8; 2 << 20]).unwrap();
    let daemon = fx.start_toml(&fx.counted_config(0.3));
    daemon.wait_idle();
    let from = daemon.log().len();
    fs::create_dir(fx.src.join("new")).unwrap();
    fs::rename(outside.join("tree"), fx.src.join("new/tree")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let sent = bytes_sent(&daemon, from);
    assert!(
        sent < 3 << 20,
        "{sent} bytes sent for a 2 MB tree\n{}",
        &daemon.log()[from..]
    );
}

/// New directories with odd names (spaces, newlines, leading dashes, bytes
/// that are not UTF-8), a changed file and a deletion in the same batch, to a
/// local, an `rsync://` and an ssh target: walked the same way to each kind,
/// every target equal.
#[test]
fn new_directories_reach_every_kind_of_target() {
    use inosync_tests::remote::{RsyncDaemon, Sshd};
    assert!(
        Sshd::available(),
        "sshd is not installed: apt-get install openssh-server (.ci/run does)"
    );
    for kind in ["local", "rsync://", "ssh"] {
        let fx = Fixture::new();
        let remote = fx.path("remote");
        fs::create_dir(&remote).unwrap();
        let (rsyncd, sshd);
        let (target, rsh, landed) = match kind {
            "local" => (
                format!("{}/", fx.dst.display()),
                String::new(),
                fx.dst.clone(),
            ),
            "rsync://" => {
                rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
                (rsyncd.url(), String::new(), remote.clone())
            }
            _ => {
                sshd = Sshd::start(fx.dir.path());
                (
                    format!("root@127.0.0.1:{}/", remote.display()),
                    format!("rsync_args = [\"{}\"]\n", sshd.rsh()),
                    remote.clone(),
                )
            }
        };
        fs::write(fx.src.join("gone"), "x").unwrap();
        fs::write(fx.src.join("kept"), "1").unwrap();
        let config = format!(
            "delay = 0.3\nrsync = \"{}\"\n{rsh}\n[[watch]]\npath = \"{}\"\n\
             remote_path = \"\"\ntargets = [\"{target}\"]\n",
            fx.rsync_wrapper().display(),
            fx.src.display(),
        );
        let daemon = fx.start_toml(&config);
        daemon.wait_idle();
        let before = fx.rsync_calls().len();
        for (i, name) in inosync_tests::ODD_NAMES.iter().take(6).enumerate() {
            let dir = inosync_tests::join_bytes(&fx.src, name);
            fill(&dir.join("sub"), 3);
            fs::write(dir.join("top"), format!("{i}\n")).unwrap();
        }
        fs::write(fx.src.join("kept"), "2").unwrap();
        fs::remove_file(fx.src.join("gone")).unwrap();
        daemon.wait_idle();
        if let Err(problems) = inosync_tests::compare_trees(&fx.src, &landed) {
            panic!("{kind}: {problems}\n{}", daemon.log());
        }
        assert!(walked(&fx, before), "{kind}: no new directory was walked");
    }
}

/// A walk deletes only what `delete` lets a change delete: with `delete =
/// false` (and `"startup"`) a file the target holds in a new directory's
/// place stays; with `true` the new directory is mirrored exactly.
#[test]
fn a_walk_deletes_only_as_delete_says() {
    for (mode, kept) in [("false", true), ("\"startup\"", true), ("true", false)] {
        let fx = Fixture::new();
        let daemon = fx.start_toml(&fx.config(&format!(
            "delay = 0.3\nrsync = \"{}\"\ndelete = {mode}",
            fx.rsync_wrapper().display()
        )));
        daemon.wait_idle();
        let before = fx.rsync_calls().len();
        fs::create_dir(fx.dst.join("new")).unwrap();
        fs::write(fx.dst.join("new/only-on-the-target"), "x").unwrap();
        fill(&fx.src.join("new"), 4);
        daemon.wait_idle();
        assert!(walked(&fx, before), "delete = {mode}: not walked");
        assert!(
            fx.src.join("new/f003").exists() && fx.dst.join("new/f003").exists(),
            "delete = {mode}: the new files did not arrive\n{}",
            daemon.log()
        );
        assert_eq!(
            fx.dst.join("new/only-on-the-target").exists(),
            kept,
            "delete = {mode}\n{}",
            daemon.log()
        );
    }
}
