//! The list of paths a batch hands rsync, made safe and complete. Before a batch
//! goes to rsync, every ancestor of every listed path is looked at (`lstat`,
//! never following a symlink; cached per batch), and a path is replaced by its
//! topmost ancestor that is not a real directory:
//!
//! - a symlink: rsync resolves listed paths with the kernel's path walk, so
//!   `conf/shadow` would be read through `conf` when `conf` just became a symlink
//!   to `/etc`, and the mirror would get a real `conf/` holding `/etc/shadow`. The
//!   symlink itself is listed instead, and mirrored as a symlink;
//! - a file (a directory that became a file, as `git checkout` does): the file is
//!   listed, and replaces the directory on the target (`--force`);
//! - nothing (the directory is gone): the topmost missing ancestor, whose parent
//!   exists, is listed, so `--delete-missing-args` deletes the whole subtree on the
//!   target. Listed under a parent that is itself gone, rsync drops the deletion
//!   ("parent dir is absent in the file list") and the target keeps the subtree.
//!
//! The look happens just before rsync starts; a change in the moments between is
//! seen as an event, and the next batch lists it again (the Landlock sandbox is
//! the line that holds for symlinks in that window).

use std::collections::{BTreeSet, HashMap};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What an ancestor of a listed path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A real directory: paths below it are fine.
    Dir,
    /// A symlink, a file, or nothing: the listed path becomes this ancestor.
    Stop,
}

/// The longest path (relative to the watch root) rsync can transfer: it works
/// with names relative to the root, and the kernel refuses longer ones
/// (PATH_MAX, 4096 bytes with the terminating NUL).
pub const MAX_RSYNC_PATH: usize = 4095;

/// Why a path that is too long is held, for `status` and the log.
pub fn too_long(path: &[u8]) -> String {
    format!(
        "the path is {} bytes long: rsync transfers paths of at most {MAX_RSYNC_PATH} bytes \
         below the watch root (PATH_MAX); shorten it (its parts that fit are mirrored)",
        path.len()
    )
}

/// The paths to hand rsync: each listed path, or its topmost ancestor (below
/// `root`) that is not a real directory. Sorted and without duplicates.
/// Ancestors are looked at relative to the root, so a root with a long path of
/// its own does not cut paths rsync can still transfer.
pub fn for_rsync(root: &Path, paths: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let root_fd = open_dir(root);
    let mut seen: HashMap<Vec<u8>, Kind> = HashMap::new();
    // Most lists come sorted (a batch's pending set): sorting them again at
    // the end costs one comparison a path, a tree set a search and a node.
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let mut replacement = None;
        for (end, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let ancestor = &path[..end];
            // Past what rsync transfers: the path is held as too long anyway.
            if ancestor.is_empty() || ancestor.len() > MAX_RSYNC_PATH {
                continue;
            }
            // Looked up before it is copied: most paths share their parents.
            let kind = match seen.get(ancestor) {
                Some(kind) => *kind,
                None => *seen
                    .entry(ancestor.to_vec())
                    .or_insert_with(|| kind_of(root, root_fd.as_ref(), ancestor)),
            };
            if kind == Kind::Stop {
                replacement = Some(ancestor.to_vec());
                break;
            }
        }
        match replacement {
            Some(ancestor) => {
                tracing::debug!(
                    "{} is below a symlink, a file or a missing directory ({}); listing that instead",
                    String::from_utf8_lossy(&path),
                    String::from_utf8_lossy(&ancestor)
                );
                out.push(ancestor);
            }
            None => {
                out.push(path);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The paths that do not lie below another one of the list (a tree compared
/// whole covers every tree below it), sorted.
pub fn topmost(paths: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let all: BTreeSet<Vec<u8>> = paths.into_iter().collect();
    let covered = |path: &[u8]| {
        path.iter()
            .enumerate()
            .any(|(end, b)| *b == b'/' && all.contains(&path[..end]))
    };
    all.iter().filter(|p| !covered(p)).cloned().collect()
}

/// Whether `path` is one of `trees` or lies below one of them.
pub fn covered_by(path: &[u8], trees: &[Vec<u8>]) -> bool {
    trees.iter().any(|t| {
        path == t.as_slice()
            || (path.len() > t.len() && path.starts_with(t) && path[t.len()] == b'/')
    })
}

/// The root, opened to look at paths relative to it.
pub fn open_dir(root: &Path) -> Option<OwnedFd> {
    let c_root = CString::new(root.as_os_str().as_bytes()).ok()?;
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    let fd = unsafe {
        libc::open(
            c_root.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a fresh descriptor nobody else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `lstat` of `rel` below the root opened as `root_fd` (never following a
/// symlink): its `st_mode`, or the error number.
pub fn lstat_mode(root_fd: &OwnedFd, rel: &[u8]) -> Result<u32, i32> {
    let c_rel = CString::new(rel).map_err(|_| libc::EINVAL)?;
    // SAFETY: a zeroed stat we own, a descriptor we own, a NUL-terminated name.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::fstatat(
            root_fd.as_raw_fd(),
            c_rel.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(st.st_mode)
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    }
}

fn kind_of(root: &Path, root_fd: Option<&OwnedFd>, rel: &[u8]) -> Kind {
    let is_dir = match root_fd {
        Some(fd) => lstat_mode(fd, rel).is_ok_and(|mode| mode & libc::S_IFMT == libc::S_IFDIR),
        None => {
            std::fs::symlink_metadata(root.join(OsStr::from_bytes(rel))).is_ok_and(|m| m.is_dir())
        }
    };
    if is_dir { Kind::Dir } else { Kind::Stop }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_their_topmost_ancestor_that_is_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::fs::write(root.join("file"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("conf")).unwrap();
        let listed = vec![
            b"conf/shadow".to_vec(),
            b"conf/passwd".to_vec(),
            b"real/sub/a".to_vec(),
            b"file/below".to_vec(),
            b"gone/deeper/x".to_vec(),
            b"gone/y".to_vec(),
            b"real/gone/x".to_vec(),
            b"top".to_vec(),
        ];
        let out = for_rsync(root, listed);
        let expected: Vec<Vec<u8>> = vec![
            b"conf".to_vec(),
            b"file".to_vec(),
            b"gone".to_vec(),
            b"real/gone".to_vec(),
            b"real/sub/a".to_vec(),
            b"top".to_vec(),
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn a_tree_below_another_is_covered_by_it() {
        let sorted: Vec<Vec<u8>> = ["a", "a b", "a/b", "a/b/c", "ab", "b/x"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let top: Vec<&[u8]> = vec![b"a", b"a b", b"ab", b"b/x"];
        assert_eq!(topmost(sorted), top);
    }
}
