//! No listed path is read through a symlink. rsync resolves each path it is
//! given with the kernel's path walk, so `conf/shadow` is read through `conf`
//! when `conf` has just become a symlink to `/etc`, and the mirror gets a real
//! `conf/` holding `/etc/shadow`. Before a batch goes to rsync, every ancestor of
//! every listed path is looked at (`lstat`, never following): a path below a
//! symlink (or below anything that is not a directory) is replaced by that
//! ancestor, which rsync then mirrors as what it is — a symlink stays a symlink.
//!
//! The look happens just before rsync starts; a swap in the moments between is
//! seen as an event, and the next batch replaces whatever rsync copied by the
//! symlink (and the Landlock sandbox is the line that holds in that window).

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What an ancestor of a listed path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A real directory: paths below it are fine.
    Dir,
    /// A symlink or a file: the listed path becomes this ancestor.
    Stop,
    /// Not there (deleted since the event): rsync deals with the listed path.
    Gone,
}

/// The paths to hand rsync: each listed path, or its topmost ancestor (below
/// `root`) that is not a real directory. Sorted and without duplicates.
pub fn without_symlinked_ancestors(root: &Path, paths: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut seen: HashMap<Vec<u8>, Kind> = HashMap::new();
    let mut out = BTreeSet::new();
    for path in paths {
        let mut replacement = None;
        for (end, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let ancestor = &path[..end];
            if ancestor.is_empty() {
                continue;
            }
            let kind = *seen
                .entry(ancestor.to_vec())
                .or_insert_with(|| kind_of(&root.join(OsStr::from_bytes(ancestor))));
            match kind {
                Kind::Dir => {}
                Kind::Stop => {
                    replacement = Some(ancestor.to_vec());
                    break;
                }
                Kind::Gone => break,
            }
        }
        match replacement {
            Some(ancestor) => {
                tracing::info!(
                    "{} is below a symlink or file ({}); syncing that entry itself instead",
                    String::from_utf8_lossy(&path),
                    String::from_utf8_lossy(&ancestor)
                );
                out.insert(ancestor);
            }
            None => {
                out.insert(path);
            }
        }
    }
    out.into_iter().collect()
}

fn kind_of(path: &Path) -> Kind {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Kind::Dir,
        Ok(_) => Kind::Stop,
        Err(_) => Kind::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_a_symlink_become_the_symlink() {
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
            b"gone/x".to_vec(),
            b"top".to_vec(),
        ];
        let out = without_symlinked_ancestors(root, listed);
        let expected: Vec<Vec<u8>> = vec![
            b"conf".to_vec(),
            b"file".to_vec(),
            b"gone/x".to_vec(),
            b"real/sub/a".to_vec(),
            b"top".to_vec(),
        ];
        assert_eq!(out, expected);
    }
}
