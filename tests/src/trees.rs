//! Tree comparison as rsync -a promises to keep a tree (types, modes, contents,
//! mtimes of everything but directories, symlink targets), and the odd names
//! every sync must survive.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{Daemon, ODD_NAMES};

/// One entry of a tree as rsync -a promises to keep it.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        mtime: (i64, i64),
        content: Vec<u8>,
    },
    Symlink {
        target: Vec<u8>,
        mtime: (i64, i64),
    },
    Other {
        mode: u32,
        mtime: (i64, i64),
    },
}

fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let mut child_rel = rel.clone();
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(entry.file_name().as_bytes());
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let mode = meta.mode() & 0o7777;
            let item = if meta.file_type().is_symlink() {
                let target = fs::read_link(&path)
                    .map(|t| t.into_os_string().into_vec())
                    .unwrap_or_default();
                Entry::Symlink {
                    target,
                    mtime: (meta.mtime(), meta.mtime_nsec()),
                }
            } else if meta.is_dir() {
                stack.push((path, child_rel.clone()));
                Entry::Dir { mode }
            } else if meta.is_file() {
                Entry::File {
                    mode,
                    mtime: (meta.mtime(), meta.mtime_nsec()),
                    content: fs::read(&path).unwrap_or_default(),
                }
            } else {
                Entry::Other {
                    mode,
                    mtime: (meta.mtime(), meta.mtime_nsec()),
                }
            };
            out.insert(child_rel, item);
        }
    }
    out
}

/// Compares two trees; `Err` lists the first differences in words.
pub fn compare_trees(src: &Path, dst: &Path) -> Result<(), String> {
    let a = snapshot(src);
    let b = snapshot(dst);
    let mut problems = Vec::new();
    for (path, entry) in &a {
        match b.get(path) {
            None => problems.push(format!(
                "missing on target: {}",
                String::from_utf8_lossy(path)
            )),
            Some(other) if other != entry => problems.push(format!(
                "differs: {} (source {}, target {})",
                String::from_utf8_lossy(path),
                describe(entry),
                describe(other)
            )),
            Some(_) => {}
        }
    }
    for path in b.keys().filter(|p| !a.contains_key(*p)) {
        problems.push(format!(
            "extra on target: {}",
            String::from_utf8_lossy(path)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let total = problems.len();
        problems.truncate(15);
        Err(format!(
            "{total} difference(s):\n  {}",
            problems.join("\n  ")
        ))
    }
}

fn describe(entry: &Entry) -> String {
    match entry {
        Entry::Dir { mode } => format!("dir {mode:o}"),
        Entry::File {
            mode,
            mtime,
            content,
        } => {
            format!(
                "file {mode:o} mtime {}.{:09} {} bytes",
                mtime.0,
                mtime.1,
                content.len()
            )
        }
        Entry::Symlink { target, mtime } => format!(
            "symlink -> {} mtime {}.{:09}",
            String::from_utf8_lossy(target),
            mtime.0,
            mtime.1
        ),
        Entry::Other { mode, mtime } => {
            format!("special {mode:o} mtime {}.{:09}", mtime.0, mtime.1)
        }
    }
}

/// Asserts the two trees are equal, with the daemon's log on failure.
pub fn assert_trees_equal(src: &Path, dst: &Path, daemon: &Daemon) {
    if let Err(problems) = compare_trees(src, dst) {
        panic!(
            "target differs from source: {problems}\n--- daemon log ---\n{}",
            daemon.log()
        );
    }
}

/// Writes each of [`ODD_NAMES`] as a file, and as a directory (`dir NAME`) holding a
/// file of that name, below `root`.
pub fn write_odd_names(root: &Path) {
    for name in ODD_NAMES {
        fs::write(join_bytes(root, name), name).expect("write odd name");
        let dir = join_bytes(root, &[b"dir ".as_slice(), name].concat());
        fs::create_dir(&dir).expect("mkdir odd name");
        fs::write(join_bytes(&dir, name), b"inside").expect("write in odd dir");
    }
}

/// Joins a directory and a raw byte name (names need not be UTF-8).
pub fn join_bytes(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// Writes `bytes` to `path` and puts its mtime back, to the nanosecond: with
/// the same size, a change only a comparison of contents sees (`cp -p`,
/// `tar x`, a reproducible build).
pub fn rewrite_keeping_mtime(path: &Path, bytes: impl AsRef<[u8]>) {
    let mtime = fs::metadata(path).expect("stat").modified().expect("mtime");
    fs::write(path, bytes).expect("write");
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(mtime))
        .expect("set the mtime back");
}
