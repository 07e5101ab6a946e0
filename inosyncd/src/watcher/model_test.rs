//! A model test of the watcher, under each backend: random operation sequences
//! (the churn mix) on a real directory, the real kernel events read through
//! [`Watcher`], and after each read two invariants: the inotify watch table
//! equals the directories on disk, and
//! every path that differs from the last read was reported (one that still exists
//! by its own name, since rsync does not recurse into a listed directory; one that
//! is gone by itself or an ancestor, whose deletion takes it along).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Change, Watcher};
use crate::config::{Backend, EventSet};
use crate::exclude::ExcludeSet;

/// xorshift64*: a fixed seed gives the same operations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &'a [Vec<u8>]) -> Option<&'a Vec<u8>> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }
}

/// Names the churn tests use: spaces, `%`, a newline, UTF-8.
const NAMES: &[&str] = &["a", "b c", "d%20e", "f\ng", "ü", "h", "-i"];

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

fn abs(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

/// Directories (relative, `""` for the root) and other entries on disk, never
/// following a symlink.
fn scan(root: &Path) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut dirs, mut files) = (vec![Vec::new()], Vec::new());
    let mut stack = vec![Vec::new()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(abs(root, &dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let rel = join(&dir, entry.file_name().as_bytes());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(rel.clone());
                stack.push(rel);
            } else {
                files.push(rel);
            }
        }
    }
    dirs.sort();
    files.sort();
    (dirs, files)
}

/// One random operation; returns the paths it meant to change (nothing when it
/// failed, e.g. a rename onto a non-empty directory). The test checks what
/// actually differs on disk, so this is only for reading a failure.
fn operate(rng: &mut Rng, root: &Path) -> Vec<Vec<u8>> {
    let (dirs, files) = scan(root);
    let dir = rng.pick(&dirs).cloned().unwrap_or_default();
    let name = format!("{}{}", NAMES[rng.below(NAMES.len())], rng.below(40));
    let new = join(&dir, name.as_bytes());
    let done = |ok: std::io::Result<()>, paths: Vec<Vec<u8>>| {
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!(
                "op {:?} {:?}",
                ok.is_ok(),
                paths
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<_>>()
            );
        }
        if ok.is_ok() { paths } else { Vec::new() }
    };
    match rng.below(11) {
        0 | 1 => done(std::fs::write(abs(root, &new), "x"), vec![new]),
        2 => match rng.pick(&files) {
            Some(file) => {
                let file = file.clone();
                let ok = std::fs::OpenOptions::new()
                    .append(true)
                    .open(abs(root, &file))
                    .and_then(|mut f| std::io::Write::write_all(&mut f, b"more"));
                done(ok, vec![file])
            }
            None => Vec::new(),
        },
        3 => done(std::fs::create_dir(abs(root, &new)), vec![new]),
        4 => {
            // The mkdir -p + write race.
            let deep = join(&join(&new, b"x"), b"y");
            let file = join(&deep, b"file");
            let ok = std::fs::create_dir_all(abs(root, &deep))
                .and_then(|()| std::fs::write(abs(root, &file), "deep"));
            done(ok, vec![new, file])
        }
        5 => match rng.pick(&files) {
            Some(file) => {
                let file = file.clone();
                done(
                    std::fs::rename(abs(root, &file), abs(root, &new)),
                    vec![file, new],
                )
            }
            None => Vec::new(),
        },
        6 => match rng.pick(&dirs[1.min(dirs.len())..]) {
            // A directory moves elsewhere (never into itself), or onto an empty one.
            Some(moved) if !new.starts_with(moved) && !dir.starts_with(moved) => {
                let moved = moved.clone();
                let target = if rng.below(4) == 0 {
                    dirs.iter()
                        .find(|d| !d.is_empty() && !d.starts_with(&moved) && !moved.starts_with(d))
                        .cloned()
                        .unwrap_or(new)
                } else {
                    new
                };
                done(
                    std::fs::rename(abs(root, &moved), abs(root, &target)),
                    vec![moved, target],
                )
            }
            _ => Vec::new(),
        },
        7 => match rng.pick(&files) {
            Some(file) => {
                let file = file.clone();
                done(std::fs::remove_file(abs(root, &file)), vec![file])
            }
            None => Vec::new(),
        },
        8 => match rng.pick(&dirs[1.min(dirs.len())..]) {
            Some(gone) => {
                let gone = gone.clone();
                done(std::fs::remove_dir_all(abs(root, &gone)), vec![gone])
            }
            None => Vec::new(),
        },
        9 => {
            // Two directories exchange places in one step.
            let pick = |rng: &mut Rng| rng.pick(&dirs[1.min(dirs.len())..]).cloned();
            match (pick(rng), pick(rng)) {
                (Some(a), Some(b)) if !a.starts_with(&b) && !b.starts_with(&a) => {
                    let c = |p: &[u8]| {
                        std::ffi::CString::new(abs(root, p).into_os_string().into_encoded_bytes())
                    };
                    let (Ok(ca), Ok(cb)) = (c(&a), c(&b)) else {
                        return Vec::new();
                    };
                    // SAFETY: two NUL-terminated paths that outlive the call.
                    let rc = unsafe {
                        libc::renameat2(
                            libc::AT_FDCWD,
                            ca.as_ptr(),
                            libc::AT_FDCWD,
                            cb.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                    done(
                        if rc == 0 {
                            Ok(())
                        } else {
                            Err(std::io::Error::last_os_error())
                        },
                        vec![a, b],
                    )
                }
                _ => Vec::new(),
            }
        }
        _ => {
            let target = abs(root, dirs.last().map_or(&[][..], Vec::as_slice));
            done(
                std::os::unix::fs::symlink(target, abs(root, &new)),
                vec![new],
            )
        }
    }
}

/// What rsync would compare: kind, size and mtime of files and symlinks; just
/// the kind of directories (their own mtime follows their entries).
fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, (u8, u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let (dirs, others) = scan(root);
    let mut out = BTreeMap::new();
    for dir in dirs.into_iter().filter(|d| !d.is_empty()) {
        out.insert(dir, (0, 0, 0));
    }
    for other in others {
        if let Ok(meta) = std::fs::symlink_metadata(abs(root, &other)) {
            let kind = if meta.file_type().is_symlink() { 1 } else { 2 };
            out.insert(
                other,
                (
                    kind,
                    meta.len(),
                    meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
                ),
            );
        }
    }
    out
}

fn shown(paths: &BTreeSet<Vec<u8>>) -> Vec<String> {
    paths
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

#[test]
fn inotify_the_watch_table_follows_random_churn_and_every_change_is_reported() {
    random_churn(Backend::Inotify);
}

#[test]
fn fanotify_every_change_under_random_churn_is_reported() {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: fanotify filesystem marks need root");
        return;
    }
    random_churn(Backend::Fanotify);
}

/// One at a time: the fanotify watcher briefly opens directories anywhere on the
/// filesystem to name them, and a directory held open is deleted only when it is
/// closed, so inotify's `IN_IGNORED` for it (and the table's update) comes late.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn random_churn(backend: Backend) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for seed in 1..=20u64 {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().canonicalize().expect("root");
        let mut watcher = Watcher::new(EventSet::default(), backend).expect("watcher");
        let excludes = ExcludeSet::new(&[]).expect("no excludes");
        watcher.add_root(0, &root, excludes).expect("watch root");
        watcher.scan_root(0, None);
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut before = snapshot(&root);
        let mut carried = Vec::new();
        for step in 0..150 {
            // One to three operations between two reads.
            for _ in 0..1 + rng.below(3) {
                operate(&mut rng, &root);
            }
            let after = snapshot(&root);
            let differ: BTreeSet<Vec<u8>> = before
                .iter()
                .filter(|(path, entry)| after.get(*path) != Some(entry))
                .map(|(path, _)| path.clone())
                .chain(after.keys().filter(|p| !before.contains_key(*p)).cloned())
                .collect();
            let mut changes = std::mem::take(&mut carried);
            while watcher.read_queued(&mut changes).expect("read events") {}
            // A tree reported covers everything below it (it is compared whole).
            let trees: BTreeSet<Vec<u8>> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Tree { rel, .. } => Some(rel.clone()),
                    _ => None,
                })
                .collect();
            let reported: BTreeSet<Vec<u8>> = changes
                .into_iter()
                .flat_map(|c| match c {
                    // A file written and not closed goes out once quiet.
                    Change::Path { rel, .. }
                    | Change::Made { rel, .. }
                    | Change::Written { rel, .. }
                    | Change::Tree { rel, .. } => vec![rel],
                    // The rename takes the old path away and brings the new tree.
                    Change::Move {
                        from, to, implied, ..
                    } => [vec![from, to], implied].concat(),
                    _ => Vec::new(),
                })
                .collect();
            let in_tree = |path: &[u8]| {
                path.iter()
                    .enumerate()
                    .any(|(end, b)| *b == b'/' && trees.contains(&path[..end]))
            };
            for path in &differ {
                let covered = if after.contains_key(path) {
                    reported.contains(path) || in_tree(path)
                } else {
                    let mut ancestor = path.as_slice();
                    loop {
                        if reported.contains(ancestor) {
                            break true;
                        }
                        match ancestor.iter().rposition(|b| *b == b'/') {
                            Some(slash) => ancestor = &ancestor[..slash],
                            None => break false,
                        }
                    }
                };
                assert!(
                    covered,
                    "seed {seed} step {step}: {:?} changed but was not reported (reported: {:?})",
                    String::from_utf8_lossy(path),
                    shown(&reported)
                );
            }
            before = after;
            if backend == Backend::Fanotify {
                continue;
            }
            let on_disk: BTreeSet<Vec<u8>> = scan(&root).0.into_iter().collect();
            // A deleted directory's IN_IGNORED comes when its inode is let go,
            // which another program holding it for a moment (any fanotify
            // listener on this filesystem naming it) delays: poll, with a deadline.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while watcher.inotify.watched_paths(0) != on_disk
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
                while watcher.read_queued(&mut carried).expect("read events") {}
            }
            let watched = watcher.inotify.watched_paths(0);
            assert_eq!(
                shown(&watched),
                shown(&on_disk),
                "seed {seed} step {step}: the watch table differs from the directories on disk"
            );
        }
    }
}
