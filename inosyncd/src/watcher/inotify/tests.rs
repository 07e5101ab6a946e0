//! The inotify backend against a real tree: renames and exchanges, in one read or several, keep the watch table right.

use super::*;

fn mv(from: &str, to: &str) -> Change {
    Change::Move {
        watch: 0,
        from: from.as_bytes().to_vec(),
        to: to.as_bytes().to_vec(),
        implied: Vec::new(),
    }
}

fn tree(rel: &str) -> Change {
    Change::Tree {
        watch: 0,
        rel: rel.as_bytes().to_vec(),
    }
}

/// A watcher on the tree at `root`, scanned.
fn watched(root: &std::path::Path) -> InotifyWatcher {
    watched_for(root, crate::config::EventSet::default())
}

/// [`watched`], counting `events` as changes.
fn watched_for(root: &std::path::Path, events: crate::config::EventSet) -> InotifyWatcher {
    let mut watcher = InotifyWatcher::new(events);
    watcher
        .add_root(0, root, crate::exclude::ExcludeSet::new(&[]).unwrap())
        .unwrap();
    watcher.scan_root(0, None);
    watcher
}

/// A tree (its directory, kept alive by the first) holding one file with
/// two names, `d/b` and `d/c`.
fn two_names() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("d")).unwrap();
    std::fs::write(root.join("d/b"), "old").unwrap();
    std::fs::hard_link(root.join("d/b"), root.join("d/c")).unwrap();
    (dir, root)
}

/// Paths as text, for readable assertions.
fn shown(set: std::collections::BTreeSet<Vec<u8>>) -> Vec<String> {
    set.iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// `RENAME_EXCHANGE` of two watched directories: afterwards each one's
/// watch reports its new name (the second half of the exchange used to take
/// the directory that had just arrived under that name, swapping the names
/// of the two in the watch table: every later change in either was reported
/// under the other's path).
#[test]
fn two_exchanged_directories_report_their_new_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(root.join("b")).unwrap();
    let mut watcher = watched(&root);
    crate::watcher::exchange(&root.join("a"), &root.join("b"));
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    // What was b is a now: a file written into it is a/new.
    std::fs::write(root.join("a/new"), "x").unwrap();
    std::fs::write(root.join("b/other"), "y").unwrap();
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    let paths: std::collections::BTreeSet<Vec<u8>> = out
        .into_iter()
        .filter_map(|c| match c {
            Change::Path { rel, .. } => Some(rel),
            _ => None,
        })
        .collect();
    assert!(paths.contains(b"a/new".as_slice()), "{paths:?}");
    assert!(paths.contains(b"b/other".as_slice()), "{paths:?}");
    assert!(!paths.contains(b"b/new".as_slice()), "{paths:?}");
}

/// The same across two parents, each with a subdirectory of its own: the
/// watch table must equal the directories on disk afterwards.
#[test]
fn an_exchange_across_parents_keeps_the_watch_table_right() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for d in ["p1/x/y/-i34/deep", "p2/f/g"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let mut watcher = watched(&root);
    crate::watcher::exchange(&root.join("p1/x/y"), &root.join("p2/f"));
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    assert_eq!(
        shown(watcher.watched_paths(0)),
        [
            "",
            "p1",
            "p1/x",
            "p1/x/y",
            "p1/x/y/g",
            "p2",
            "p2/f",
            "p2/f/-i34",
            "p2/f/-i34/deep"
        ]
    );
}

/// A directory moved out of one of two directories that then exchange
/// places, all in one read.
#[test]
fn a_move_then_an_exchange_in_one_read_keeps_the_watch_table_right() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("u/f/x/y/a15/x/d7/x/y/i34/x")).unwrap();
    let mut watcher = watched(&root);
    std::fs::rename(root.join("u/f/x/y/a15"), root.join("d34")).unwrap();
    crate::watcher::exchange(&root.join("d34/x/d7/x/y"), &root.join("u/f"));
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    let mut on_disk = std::collections::BTreeSet::new();
    let mut stack = vec![Vec::new()];
    while let Some(d) = stack.pop() {
        on_disk.insert(d.clone());
        for e in std::fs::read_dir(crate::watcher::absolute(&root, &d))
            .unwrap()
            .flatten()
        {
            if e.file_type().unwrap().is_dir() {
                stack.push(crate::watcher::join(&d, e.file_name().as_bytes()));
            }
        }
    }
    assert_eq!(shown(watcher.watched_paths(0)), shown(on_disk));
}

#[test]
fn an_exchange_is_two_trees_and_a_chain_stays_moves() {
    let mut changes = vec![mv("a", "b"), mv("b", "a"), mv("c", "d"), mv("d", "e")];
    unswap(&mut changes);
    assert_eq!(changes, [tree("a"), tree("b"), mv("c", "d"), mv("d", "e")]);
}

/// Drops this thread's right to read what its permissions forbid
/// (`CAP_DAC_OVERRIDE`, `CAP_DAC_READ_SEARCH`): the test thread then meets a
/// mode 000 directory as a daemon not run as root does. Capabilities are per
/// thread; the other tests keep theirs. `false` when it could not.
fn read_as_permissions_say() -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget fills the two structs we own for this thread.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return false;
    }
    data[0].effective &= !((1 << 1) | (1 << 2));
    // SAFETY: capset reads the structs we own; it only lowers this thread's set.
    unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) == 0 }
}

/// A directory the daemon may not read when it comes is a tree not fully
/// watched: said as the watch limit is (`degraded`, so `wait` and the
/// periodic full syncs cover it, and each looks for its watch again), and
/// watched once it may be read. It was only logged: after a `chmod 755`,
/// nothing written in it ever arrived, and `wait` said idle (found by a
/// black-box attack on a daemon run as an unprivileged user).
#[test]
fn a_directory_that_cannot_be_read_degrades_the_tree_until_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("locked")).unwrap();
    std::fs::set_permissions(
        root.join("locked"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    if !read_as_permissions_say() {
        return;
    }
    let mut watcher = watched(&root);
    let why = watcher.degraded(0).map(str::to_string);
    assert!(
        why.as_deref().is_some_and(|w| w.contains("locked")),
        "not degraded: {why:?}"
    );
    std::fs::set_permissions(
        root.join("locked"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert!(!watcher.retry_degraded(0), "still degraded");
    assert!(watcher.watched_paths(0).contains(b"locked".as_slice()));
}

/// A directory the daemon could not read, made readable by a `chmod`: the
/// chmod's event watches it at once and lists what it holds, and the tree is
/// no longer degraded. Before, it stayed without a watch until the next
/// periodic full sync (up to a minute; `wait`'s full sync did not try it), and
/// a same-size rewrite with its mtime kept, made meanwhile, never arrived
/// while `wait` said idle (found by a black-box attack on a daemon run as an
/// unprivileged user).
#[test]
fn a_directory_made_readable_is_watched_at_its_chmod() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("locked")).unwrap();
    std::fs::write(root.join("locked/f"), "original").unwrap();
    std::fs::set_permissions(root.join("locked"), PermissionsExt::from_mode(0o000)).unwrap();
    if !read_as_permissions_say() {
        return;
    }
    let mut watcher = watched(&root);
    assert!(watcher.degraded(0).is_some(), "not degraded");
    std::fs::set_permissions(root.join("locked"), PermissionsExt::from_mode(0o755)).unwrap();
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    assert!(
        watcher.watched_paths(0).contains(b"locked".as_slice()),
        "{:?}",
        shown(watcher.watched_paths(0))
    );
    assert_eq!(watcher.degraded(0), None);
    let listed = |out: &[Change], path: &[u8]| {
        out.iter()
            .any(|c| matches!(c, Change::Path { rel, .. } if rel == path))
    };
    assert!(listed(&out, b"locked/f"), "{out:?}");
    std::fs::write(root.join("locked/f"), "ORIGINAL").unwrap();
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    assert!(
        out.iter()
            .any(|c| matches!(c, Change::Path { rel, .. } | Change::Written { rel, .. } if rel == b"locked/f")),
        "{out:?}"
    );
}

/// The same, its parent renamed first (`mv a b`) while it was unreadable. A
/// review feared it stayed remembered by its old path only (its `chmod` not
/// recognised, a retry forgetting it, and nothing written in it arriving);
/// the moved directory is scanned again, so it is known by its new path.
#[test]
fn a_directory_unreadable_when_its_parent_was_renamed_is_watched_at_its_chmod() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("a/locked")).unwrap();
    std::fs::set_permissions(root.join("a/locked"), PermissionsExt::from_mode(0o000)).unwrap();
    if !read_as_permissions_say() {
        return;
    }
    let mut watcher = watched(&root);
    assert!(watcher.degraded(0).is_some(), "not degraded");
    std::fs::rename(root.join("a"), root.join("b")).unwrap();
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    watcher.retry_unreadable(0);
    assert!(
        watcher
            .degraded(0)
            .is_some_and(|why| why.contains("b/locked")),
        "{:?}",
        watcher.degraded(0)
    );
    std::fs::set_permissions(root.join("b/locked"), PermissionsExt::from_mode(0o755)).unwrap();
    while watcher.read_queued(&mut out).unwrap() {}
    assert!(
        watcher.watched_paths(0).contains(b"b/locked".as_slice()),
        "{:?}",
        shown(watcher.watched_paths(0))
    );
    assert_eq!(watcher.degraded(0), None);
}

/// A file with another name (`d/b`) rewritten through `d/c`, and `d/c` renamed
/// to `a` before the write is read: the write's name is gone when read, so
/// its other names were never looked for, and `d/b` kept its old content
/// after a same-size rewrite with the mtime put back (found by a black-box
/// attack, 3 of 3 under inotify). The rename read after it carries the write
/// to the new name, whose other names are then looked for.
#[test]
fn a_write_through_a_name_renamed_before_it_is_read_reaches_the_files_other_names() {
    let (_dir, root) = two_names();
    let mut watcher = watched(&root);
    std::fs::write(root.join("d/c"), "new").unwrap();
    std::fs::rename(root.join("d/c"), root.join("a")).unwrap();
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    assert!(
        out.iter()
            .any(|c| matches!(c, Change::Linked { rel: Some(rel), .. } if rel == b"a")),
        "{out:?}"
    );
}

/// A file with another name (`d/b`, `d/c`) rewritten through `d/b`, then
/// swapped with `f` (`RENAME_EXCHANGE`), both before the read: the write was
/// looked up at `d/b`, which by then was the other file, so `d/c` kept its
/// old bytes (a black-box attack, 3 of 3). The swapped-in file's other names
/// are looked for.
#[test]
fn a_linked_file_swapped_away_after_a_write_has_its_other_names_looked_for() {
    let (_dir, root) = two_names();
    std::fs::write(root.join("f"), "eff").unwrap();
    let mut watcher = watched(&root);
    std::fs::write(root.join("d/b"), "new").unwrap();
    crate::watcher::exchange(&root.join("d/b"), &root.join("f"));
    let mut out = Vec::new();
    while watcher.read_queued(&mut out).unwrap() {}
    assert!(
        out.iter()
            .any(|c| matches!(c, Change::Linked { rel: Some(rel), .. } if rel == b"f")),
        "{out:?}"
    );
}

/// Every `Change::ChangedSince` among `out`.
fn searches_by_change_time(out: &[Change]) -> usize {
    out.iter()
        .filter(|c| matches!(c, Change::ChangedSince { .. }))
        .count()
}

/// Reads the queue twice (a write read while its name is gone waits for
/// the read after it), then once more for good measure.
fn read_thrice(watcher: &mut InotifyWatcher) -> Vec<Change> {
    let mut out = Vec::new();
    for _ in 0..3 {
        while watcher.read_queued(&mut out).unwrap() {}
    }
    out
}

/// `d/c` of [`two_names`] (beside a file `t`, and `y/c` in a directory `y`)
/// rewritten, then `after`, before the watcher reads any of it: what it
/// makes of them.
fn after_a_write_through_d_c(after: impl FnOnce(&std::path::Path)) -> Vec<Change> {
    let (_dir, root) = two_names();
    std::fs::write(root.join("t"), "tee").unwrap();
    std::fs::create_dir(root.join("y")).unwrap();
    std::fs::write(root.join("y/c"), "why").unwrap();
    let mut watcher = watched(&root);
    read_thrice(&mut watcher);
    std::fs::write(root.join("d/c"), "new").unwrap();
    after(&root);
    read_thrice(&mut watcher)
}

/// A file with two names written through `d/c`, and `d/c` removed, before
/// the read: nothing says which file was written, so the files changed
/// since the queue was last empty are looked for, from a time before the
/// write (the other name `d/b` kept its old content before, whatever its
/// size).
#[test]
fn a_write_through_a_name_removed_before_the_read_is_looked_for_by_change_time() {
    use std::os::unix::fs::MetadataExt;
    let (_dir, root) = two_names();
    let mut watcher = watched(&root);
    read_thrice(&mut watcher);
    std::fs::write(root.join("d/c"), "new").unwrap();
    std::fs::remove_file(root.join("d/c")).unwrap();
    let out = read_thrice(&mut watcher);
    let meta = std::fs::metadata(root.join("d/b")).unwrap();
    let changed = i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec());
    let since: Vec<i128> = out
        .iter()
        .filter_map(|c| match c {
            Change::ChangedSince { since, .. } => Some(*since),
            _ => None,
        })
        .collect();
    assert!(!since.is_empty(), "{out:?}");
    assert!(since.iter().all(|s| *s <= changed), "{since:?} {changed}");
    assert!(!watcher.holds_gone_writes());
}

/// The same with `d/c` taken by another file (`mv t d/c`) before the read:
/// the look-up at `d/c` saw `f`, not the file written.
#[test]
fn a_write_through_a_name_another_file_took_before_the_read_is_looked_for_by_change_time() {
    let out = after_a_write_through_d_c(|root| {
        std::fs::rename(root.join("t"), root.join("d/c")).unwrap();
    });
    assert!(searches_by_change_time(&out) > 0, "{out:?}");
}

/// Past the bound on the writes kept by name in one read, a write whose
/// name another file takes before the read is still looked for (a write
/// read past it was not kept, so the take-over went unseen and the other
/// name kept its old content).
#[test]
fn a_write_past_the_bound_whose_name_another_file_took_is_looked_for() {
    let (_dir, root) = two_names();
    std::fs::write(root.join("t"), "tee").unwrap();
    std::fs::create_dir(root.join("many")).unwrap();
    let many = super::events::WRITTEN_GONE_MAX;
    for i in 0..many {
        std::fs::write(root.join(format!("many/{i}")), "").unwrap();
    }
    // Closes only: the bound's writes fit in the kernel's queue.
    let events = crate::config::EventSet::from_names(&["IN_CLOSE_WRITE"]).unwrap();
    let mut watcher = watched_for(&root, events);
    read_thrice(&mut watcher);
    for i in 0..many {
        std::fs::write(root.join(format!("many/{i}")), "x").unwrap();
    }
    std::fs::write(root.join("d/c"), "new").unwrap();
    std::fs::rename(root.join("t"), root.join("d/c")).unwrap();
    let out = read_thrice(&mut watcher);
    assert_eq!(
        watcher.overflows, 0,
        "the test's writes overflowed the queue"
    );
    assert!(searches_by_change_time(&out) > 0, "{} changes", out.len());
}

/// A tree holding one file `a` with one name (its directory, kept alive by
/// the first), watched, its queue read.
fn one_name_watched() -> (tempfile::TempDir, std::path::PathBuf, InotifyWatcher) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("a"), "one name").unwrap();
    let mut watcher = watched(&root);
    read_thrice(&mut watcher);
    (dir, root, watcher)
}

/// A tree a search walked without seeing a file with several names is
/// spared the search for a temporary file written and removed before the
/// read (an editor's save), until a file with several names is seen in it.
#[test]
fn a_tree_without_files_of_several_names_is_spared_the_search() {
    let (_dir, root, mut watcher) = one_name_watched();
    watcher.walked(0, false, std::time::Instant::now());
    std::fs::write(root.join("4913"), "").unwrap();
    std::fs::remove_file(root.join("4913")).unwrap();
    let out = read_thrice(&mut watcher);
    assert_eq!(searches_by_change_time(&out), 0, "{out:?}");
    std::fs::hard_link(root.join("a"), root.join("b")).unwrap();
    read_thrice(&mut watcher);
    std::fs::write(root.join("4913"), "").unwrap();
    std::fs::remove_file(root.join("4913")).unwrap();
    let out = read_thrice(&mut watcher);
    assert!(searches_by_change_time(&out) > 0, "{out:?}");
}

/// A link made while a search walks (its walk may have passed the place
/// already) keeps the tree among those searched: the walk that saw no file
/// with several names must not spare it (a review: the next write through
/// the new name, removed before the read, was dropped).
#[test]
fn a_link_made_while_a_search_walks_keeps_the_tree_searched() {
    let (_dir, root, mut watcher) = one_name_watched();
    let started = std::time::Instant::now();
    std::fs::hard_link(root.join("a"), root.join("b")).unwrap();
    read_thrice(&mut watcher);
    watcher.walked(0, false, started);
    std::fs::write(root.join("b"), "new").unwrap();
    std::fs::remove_file(root.join("b")).unwrap();
    let out = read_thrice(&mut watcher);
    assert!(searches_by_change_time(&out) > 0, "{out:?}");
}

/// The name written through taken by a directory (`rm d/c; mkdir d/c`),
/// or by a directory renamed above it (`mv d x; mv y d`), before the read:
/// the look-up saw another entry (a review).
#[test]
fn a_write_through_a_name_a_directory_took_before_the_read_is_looked_for() {
    for take in ["mkdir", "parent"] {
        let out = after_a_write_through_d_c(|root| {
            if take == "mkdir" {
                std::fs::remove_file(root.join("d/c")).unwrap();
                std::fs::create_dir(root.join("d/c")).unwrap();
            } else {
                std::fs::rename(root.join("d"), root.join("x")).unwrap();
                std::fs::rename(root.join("y"), root.join("d")).unwrap();
            }
        });
        assert!(searches_by_change_time(&out) > 0, "{take}: {out:?}");
    }
}

/// The name written through renamed, and its new name then taken by
/// another file (`mv d/c e; mv t e`), before the read: the write carried
/// to `e` was looked up on `t` (a review).
#[test]
fn a_write_carried_to_a_name_another_file_took_is_looked_for() {
    let out = after_a_write_through_d_c(|root| {
        std::fs::rename(root.join("d/c"), root.join("e")).unwrap();
        std::fs::rename(root.join("t"), root.join("e")).unwrap();
    });
    assert!(searches_by_change_time(&out) > 0, "{out:?}");
}

/// An exclude dropped lets in what no search walked: the tree is searched
/// again (a review).
#[test]
fn an_exclude_dropped_keeps_the_tree_searched() {
    let (_dir, _root, mut watcher) = one_name_watched();
    watcher.walked(0, false, std::time::Instant::now());
    assert!(!watcher.may_have_links(0));
    watcher.set_excludes(0, crate::exclude::ExcludeSet::new(&[]).unwrap());
    assert!(watcher.may_have_links(0));
}

/// A write removed before the read, still waiting for a rename to place it
/// when the daemon stops reading: placed as lost at once (a review: the
/// stop waited its whole grace for it).
#[test]
fn writes_waiting_for_a_rename_are_placed_when_reading_stops() {
    let (_dir, root) = two_names();
    let mut watcher = watched(&root);
    read_thrice(&mut watcher);
    std::fs::write(root.join("d/c"), "new").unwrap();
    std::fs::remove_file(root.join("d/c")).unwrap();
    let mut out = Vec::new();
    // One read: the next would place it.
    assert!(watcher.read_queued(&mut out).unwrap());
    assert!(watcher.holds_gone_writes());
    watcher.flush_gone_writes(&mut out);
    assert!(!watcher.holds_gone_writes());
    assert!(searches_by_change_time(&out) > 0, "{out:?}");
}

/// The name written through taken by another file, then a directory above
/// it renamed, before the read (`mv t d/c; mv d e`): when read, the write's
/// name was gone (its directory moved), and the rename carried it to
/// `e/c`, which is `t` (a black-box fuzzer, 4 of 40 seeds with such
/// chains).
#[test]
fn a_write_whose_gone_name_another_file_took_is_looked_for() {
    let out = after_a_write_through_d_c(|root| {
        std::fs::rename(root.join("t"), root.join("d/c")).unwrap();
        std::fs::rename(root.join("d"), root.join("e")).unwrap();
    });
    assert!(searches_by_change_time(&out) > 0, "{out:?}");
}
