//! The fanotify backend's link index against a real tree: writes through
//! names outside the trees while the trees are walked.

use super::*;
use std::path::PathBuf;

/// A fanotify watcher of `root` (watch 0), its queue not read yet (its
/// first walk for files with several names not taken in), when the test may
/// watch (root, fanotify in the kernel).
pub(super) fn unread(root: &Path) -> Option<FanWatcher> {
    unread_with(root, links::Links::default())
}

/// [`unread`], its index of files with several names `links` (a walker
/// the test controls).
fn unread_with(root: &Path, links: links::Links) -> Option<FanWatcher> {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let table = mounts::MountTable::open().unwrap();
    let mut watcher = FanWatcher::new(EventSet::default()).unwrap();
    watcher.links = links;
    let excludes = ExcludeSet::new(&[]).unwrap();
    watcher.add_root(0, root, excludes, &table.mounts).ok()?;
    Some(watcher)
}

/// [`unread`], with its queue read (and so its first walk taken in, when
/// it was done by then).
pub(super) fn watching(root: &Path) -> Option<FanWatcher> {
    let mut watcher = unread(root)?;
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    Some(watcher)
}

/// Reads the queue and takes in the walks until no walk runs and no write
/// waits for one (5 s at most); what it made of them.
fn read_until_walked(watcher: &mut FanWatcher) -> Vec<Change> {
    let mut out = Vec::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        while watcher.read_queued(&mut out).unwrap() {}
        watcher.poll_links(&mut out);
        if (!watcher.indexing() && !watcher.has_deferred()) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Whether `out` lists `rel` of watch 0 as changed.
fn lists(out: &[Change], rel: &str) -> bool {
    out.iter().any(|c| {
        matches!(c, Change::Path { watch: 0, rel: r } | Change::Written { watch: 0, rel: r, .. }
            if r == rel.as_bytes())
    })
}

/// A directory (kept alive by the first) holding a tree `tree`, with the
/// directories `subdirs` in it, and `out` beside it; the directory, and the
/// tree.
fn tree_and_out(subdirs: &[&str]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let kept = tempfile::tempdir().unwrap();
    let dir = kept.path().canonicalize().unwrap();
    let root = dir.join("tree");
    for sub in subdirs {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    (kept, dir, root)
}

/// A tree `tree` (beside `out`) whose file has the names `a/x` and `zz/y`,
/// and `out/f` outside it; the directory, and the tree.
fn linked_inside_and_out() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (kept, dir, root) = tree_and_out(&["a", "zz"]);
    std::fs::write(root.join("a/x"), "old").unwrap();
    std::fs::hard_link(root.join("a/x"), root.join("zz/y")).unwrap();
    std::fs::hard_link(root.join("a/x"), dir.join("out/f")).unwrap();
    (kept, dir, root)
}

/// A write through a name outside the tree while the tree is walked, when
/// the index already knows one of the file's names from an event (a rename
/// read before the write): it still waits for the walk, which finds the
/// others. Before, the name known was listed and the write went no further,
/// so `zz/y` kept its old bytes (a review).
#[test]
fn a_write_outside_while_the_tree_is_walked_waits_for_the_walk_though_one_name_is_known() {
    let (_kept, dir, root) = linked_inside_and_out();
    let Some(mut watcher) = unread(&root) else {
        return;
    };
    std::fs::rename(root.join("a/x"), root.join("a/x2")).unwrap();
    std::fs::write(dir.join("out/f"), "new").unwrap();
    let out = read_until_walked(&mut watcher);
    assert!(lists(&out, "a/x2"), "{out:?}");
    assert!(lists(&out, "zz/y"), "{out:?}");
}

/// A file with names `y` in the tree and `out/f` outside, rewritten through
/// `out/f` and `out/f` removed, both before the read, while the tree is
/// walked: the file has one name when looked up, and the index, not built
/// yet, does not know it, so the write looked like one to a file of no
/// tree's and was dropped (a review). The removal, read in the same read,
/// has the file searched for by its inode.
#[test]
fn a_write_outside_then_that_name_removed_while_the_tree_is_walked_is_searched_for() {
    let (_kept, dir, root) = tree_and_out(&[]);
    std::fs::write(root.join("y"), "old").unwrap();
    std::fs::hard_link(root.join("y"), dir.join("out/f")).unwrap();
    let Some(mut watcher) = unread(&root) else {
        return;
    };
    std::fs::write(dir.join("out/f"), "new").unwrap();
    std::fs::remove_file(dir.join("out/f")).unwrap();
    let out = read_until_walked(&mut watcher);
    let searched = out
        .iter()
        .any(|c| matches!(c, Change::LinkedInode { watch: 0, .. }));
    assert!(searched || lists(&out, "y"), "{out:?}");
}

/// `RENAME_EXCHANGE` of two directories whose halves are read in two reads
/// of the queue (a buffer's end between them; here a buffer that holds one
/// event): `d3/f1`, swapped in, still gets the writes through its name
/// outside the tree. Read apart, the halves were two renames, and the index
/// moved both sides' names into `d0` (a review); only the walk of a
/// looked-up rename's new place made up for it (this test failed with that
/// walk turned off). Now the first half waits for the next buffer.
#[test]
fn an_exchange_whose_halves_are_read_apart_keeps_the_names_of_both_sides() {
    let (_kept, dir, root) = tree_and_out(&["d0", "d3"]);
    std::fs::write(root.join("d0/f1"), "one").unwrap();
    std::fs::hard_link(root.join("d0/f1"), dir.join("out/o1")).unwrap();
    std::fs::write(root.join("d3/f2"), "two").unwrap();
    std::fs::hard_link(root.join("d3/f2"), dir.join("out/o2")).unwrap();
    let Some(mut watcher) = unread(&root) else {
        return;
    };
    read_until_walked(&mut watcher);
    watcher.buffer = vec![0; 120];
    crate::watcher::exchange(&root.join("d0"), &root.join("d3"));
    read_until_walked(&mut watcher);
    std::fs::write(dir.join("out/o1"), "ONE").unwrap();
    std::fs::write(dir.join("out/o2"), "TWO").unwrap();
    let out = read_until_walked(&mut watcher);
    assert!(lists(&out, "d3/f1"), "{out:?}");
    assert!(lists(&out, "d0/f2"), "{out:?}");
}

/// More writes outside the trees than may wait for a walk (4,097 files with
/// a name in the tree rewritten through their outside names while it is
/// walked): each one past the bound is searched for by its inode, beside
/// the full sync, which compares size and mtime only (a review: a same-size
/// rewrite with its mtime put back was missed).
#[test]
fn writes_outside_past_the_bound_on_those_waiting_for_a_walk_are_searched_for() {
    use std::os::unix::fs::MetadataExt;
    let (_kept, dir, root) = tree_and_out(&[]);
    let many = 4097;
    for i in 0..many {
        std::fs::write(root.join(i.to_string()), "old").unwrap();
        std::fs::hard_link(root.join(i.to_string()), dir.join(format!("out/{i}"))).unwrap();
    }
    let Some(mut watcher) = unread(&root) else {
        return;
    };
    for i in 0..many {
        std::fs::write(dir.join(format!("out/{i}")), "new").unwrap();
    }
    let out = read_until_walked(&mut watcher);
    let searched: std::collections::HashSet<u64> = out
        .iter()
        .filter_map(|c| match c {
            Change::LinkedInode { inode, .. } => Some(inode.1),
            _ => None,
        })
        .collect();
    for i in 0..many {
        let ino = std::fs::metadata(root.join(i.to_string())).unwrap().ino();
        assert!(
            lists(&out, &i.to_string()) || searched.contains(&ino),
            "{i} neither listed nor searched for"
        );
    }
}

/// A file with two names in the tree (`d/a`, `e/b`) written through `d/a`,
/// then `d/a` swapped with a file outside (`RENAME_EXCHANGE`), before the
/// read: the write is kept a moment to be placed, and the file is noted at
/// once, by its inode, for the journal. Before, a daemon killed in that
/// moment left only `d/a`, which names the other file now, and the restart
/// never found `e/b` (a black-box attack, 3 of 3).
#[test]
fn a_linked_file_written_by_a_name_swapped_away_is_noted_before_it_is_placed() {
    use std::os::unix::fs::MetadataExt;
    let (_kept, dir, root) = tree_and_out(&["d", "e"]);
    std::fs::write(root.join("d/a"), "old").unwrap();
    std::fs::hard_link(root.join("d/a"), root.join("e/b")).unwrap();
    std::fs::write(dir.join("out/x"), "out").unwrap();
    let Some(mut watcher) = watching(&root) else {
        return;
    };
    read_until_walked(&mut watcher);
    let meta = std::fs::metadata(root.join("e/b")).unwrap();
    std::fs::write(root.join("d/a"), "new").unwrap();
    crate::watcher::exchange(&root.join("d/a"), &dir.join("out/x"));
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    let inode = (meta.dev(), meta.ino());
    assert!(out.contains(&Change::Kept { watch: 0, inode }), "{out:?}");
}

/// No thread to walk the trees (none could be started, or it died): a
/// write through a name outside the tree to a file with a name in it is
/// not placed from the empty index, which knows no name (it was dropped:
/// a review); the trees are compared whole and the file is searched for
/// by its inode.
#[test]
fn a_write_outside_with_no_walker_is_searched_for() {
    let (_kept, dir, root) = tree_and_out(&[]);
    std::fs::write(root.join("y"), "old").unwrap();
    std::fs::hard_link(root.join("y"), dir.join("out/f")).unwrap();
    let Some(mut watcher) = unread_with(&root, links::Links::refusing()) else {
        return;
    };
    read_until_walked(&mut watcher);
    std::fs::write(dir.join("out/f"), "new").unwrap();
    let out = read_until_walked(&mut watcher);
    let searched = out
        .iter()
        .any(|c| matches!(c, Change::LinkedInode { watch: 0, .. }));
    assert!(searched || lists(&out, "y"), "{out:?}");
}

/// A walk of the tree that ended after a rename it missed (`mv zz/d aa/d`
/// while it was between `aa` and `zz`: it saw `d` at neither place), its
/// result there before the rename was read: the result is taken in only
/// after the queue is read, so the rename is read while the walk still
/// counts, and the renamed directory is walked (a review: taken in first,
/// the tree counted as walked, the rename moved nothing, and `aa/d/f` never
/// got the writes through its name outside the tree).
#[test]
fn a_walk_that_missed_a_rename_is_taken_in_after_the_rename_is_read() {
    use crate::watcher::link_walker::{Done, Walker};
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;
    let (_kept, dir, root) = tree_and_out(&["aa", "zz/d"]);
    std::fs::write(root.join("zz/d/f"), "old").unwrap();
    std::fs::hard_link(root.join("zz/d/f"), dir.join("out/o")).unwrap();
    let (walker, asked, results) = Walker::manual();
    let Some(mut watcher) = unread_with(&root, links::Links::with_walker(walker)) else {
        return;
    };
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    let (watch, generation) = asked.recv_timeout(Duration::from_secs(5)).unwrap();
    std::fs::rename(root.join("zz/d"), root.join("aa/d")).unwrap();
    let missed = Done {
        watch,
        generation,
        found: Vec::new(),
        saw_linked: false,
        finished: Instant::now(),
    };
    results.send(missed).unwrap();
    watcher.poll_links(&mut out);
    let (part, generation) = asked
        .recv_timeout(Duration::from_secs(1))
        .expect("the renamed directory was not walked");
    let meta = std::fs::metadata(root.join("aa/d/f")).unwrap();
    let found = Done {
        watch: part,
        generation,
        found: vec![((meta.dev(), meta.ino()), b"aa/d/f".to_vec())],
        saw_linked: true,
        finished: Instant::now(),
    };
    results.send(found).unwrap();
    std::fs::write(dir.join("out/o"), "new").unwrap();
    let out = read_until_walked(&mut watcher);
    assert!(lists(&out, "aa/d/f"), "{out:?}");
}

/// The watch root deleted and made again, and watched again before the
/// new root's creation is read (the engine re-attaches as soon as it reads
/// the old root's deletion and finds a directory at the path): the
/// creation, read from a directory outside the trees, remembered the new
/// root as outside, and everything written in it went unseen (a black-box
/// attack: `rm -rf S && mkdir S`, then writes in `S` never arrived, with
/// `wait` idle, 2 to 6 rounds of 30).
#[test]
fn a_root_made_again_and_watched_before_its_creation_is_read_is_no_outside_place() {
    let (_kept, _dir, root) = tree_and_out(&[]);
    let Some(mut watcher) = watching(&root) else {
        return;
    };
    std::fs::remove_dir(&root).unwrap();
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    assert!(
        out.iter()
            .any(|c| matches!(c, Change::RootGone { watch: 0 }))
    );
    std::fs::create_dir(&root).unwrap();
    // Watched again before the creation is read.
    watcher.remove_root(0);
    let table = mounts::MountTable::open().unwrap();
    let excludes = ExcludeSet::new(&[]).unwrap();
    watcher.add_root(0, &root, excludes, &table.mounts).unwrap();
    std::fs::write(root.join("f"), "written in the new root").unwrap();
    let out = read_until_walked(&mut watcher);
    assert!(lists(&out, "f"), "the new root's file went unseen: {out:?}");
}

/// A directory above the watch root renamed away and back before the next
/// look at the root (`mv P P2`, writes in `P2/S`, `mv P2 P`): the tree's
/// directories were named below `P2`, outside every tree, so the writes went
/// unseen, and the root was back before the once-a-second check saw it
/// missing (a black-box attack: 17 of 20 rounds lost appends). The rename
/// says the root went (the engine looks at it again, and a root found back
/// is synced whole by content).
#[test]
fn a_directory_above_the_root_renamed_away_says_the_root_went() {
    let kept = tempfile::tempdir().unwrap();
    let dir = kept.path().canonicalize().unwrap();
    let root = dir.join("P/S");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/x"), "old").unwrap();
    let Some(mut watcher) = watching(&root) else {
        return;
    };
    std::fs::rename(dir.join("P"), dir.join("P2")).unwrap();
    std::fs::write(dir.join("P2/S/d/x"), "new, written while away").unwrap();
    // Read while away: `d` is named `P2/S/d` then.
    let mut out = read_until_walked(&mut watcher);
    std::fs::rename(dir.join("P2"), dir.join("P")).unwrap();
    out.extend(read_until_walked(&mut watcher));
    assert!(
        out.iter()
            .any(|c| matches!(c, Change::RootGone { watch: 0 })),
        "{out:?}"
    );
}
