//! What `verify` must not call drift: the paths of a pair whose change is
//! queued, held or running, and everything below them (a queued move or a new
//! directory names only the directory, not the files under it), plus rsync's
//! own files on the target (temp files, partial directories), which are never
//! part of the mirror. Taken when a comparison starts and again when it ends:
//! a difference seen by the dry run may belong to a batch that finished while
//! it ran.

use std::collections::BTreeSet;

use crate::rsync::{PARTIAL_DIR, file_of_temp};

/// The paths on their way to one target.
#[derive(Debug, Default, Clone)]
pub struct OnTheWay {
    /// A full sync is pending or running: everything is on its way.
    all: bool,
    /// Each covers itself and what lies below it.
    roots: BTreeSet<Vec<u8>>,
    /// Each covers itself only: a held path, retried as it is listed, without
    /// what lies below it (a directory held for good must not hide drift
    /// inside it from every verify).
    exact: BTreeSet<Vec<u8>>,
}

impl OnTheWay {
    /// Everything is on its way (a full sync).
    pub fn everything() -> OnTheWay {
        OnTheWay {
            all: true,
            ..OnTheWay::default()
        }
    }

    /// Adds a path, and with it what lies below it.
    pub fn add(&mut self, path: &[u8]) {
        if path.is_empty() {
            // The root listed is its own attributes (a chmod or touch of
            // the root), not the tree: covering all would hide every drift.
            self.add_exact(path);
        } else {
            self.add_tree(path);
        }
    }

    /// Adds a tree compared whole, the root's included: all below it.
    pub fn add_tree(&mut self, path: &[u8]) {
        if !self.all {
            self.roots.insert(path.to_vec());
        }
    }

    /// Adds a path alone, not what lies below it (a held path).
    pub fn add_exact(&mut self, path: &[u8]) {
        if !self.all {
            self.exact.insert(path.to_vec());
        }
    }

    /// Both snapshots together.
    pub fn merge(&mut self, other: OnTheWay) {
        self.all |= other.all;
        if self.all {
            self.roots.clear();
            self.exact.clear();
        } else {
            self.roots.extend(other.roots);
            self.exact.extend(other.exact);
        }
    }

    /// Whether the difference at `path` (rsync's itemized `change`) is on its
    /// way or rsync's own: a path at or below a root; a `*deleting` of a temp
    /// file whose file is on its way or of any name rsync gives its temp files
    /// (rsync writes them under that name only, and the sweep removes stale
    /// ones); anything in a partial directory.
    pub fn covers(&self, change: &str, path: &[u8]) -> bool {
        if path
            .split(|b| *b == b'/')
            .any(|part| part == PARTIAL_DIR.as_bytes())
        {
            return true;
        }
        if change == "*deleting" && file_of_temp(path).is_some() {
            return true;
        }
        self.all || self.exact.contains(path) || self.has_root_at_or_above(path)
    }

    fn has_root_at_or_above(&self, path: &[u8]) -> bool {
        if self.roots.contains(path) || self.roots.contains(&[][..]) {
            return true;
        }
        path.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .any(|(end, _)| self.roots.contains(&path[..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn way(roots: &[&str]) -> OnTheWay {
        let mut way = OnTheWay::default();
        for r in roots {
            way.add(r.as_bytes());
        }
        way
    }

    #[test]
    fn a_held_path_covers_itself_only() {
        let mut way = OnTheWay::default();
        way.add_exact(b"held dir");
        let covered = |p: &str| way.covers(">f.st......", p.as_bytes());
        assert!(covered("held dir"));
        assert!(!covered("held dir/file"));
    }

    #[test]
    fn a_root_covers_itself_and_what_lies_below() {
        let way = way(&["moved", "a/b"]);
        let covered = |p: &str| way.covers(">f+++++++++", p.as_bytes());
        assert!(covered("moved"));
        assert!(covered("moved/sub/file"));
        assert!(covered("a/b/c"));
        assert!(!covered("movedx"));
        assert!(!covered("moved2/x"));
        assert!(!covered("a"));
        assert!(!covered("a/bc"));
    }

    #[test]
    fn rsync_files_are_never_drift() {
        let way = way(&[]);
        assert!(way.covers("*deleting", b"d/.big.bin.Wh1C4P"));
        assert!(way.covers("*deleting", b".inosync-partial/big.bin"));
        assert!(way.covers("cd+++++++++", b"d/.inosync-partial"));
        // A source file that looks like a temp file is still compared.
        assert!(!way.covers(">f+++++++++", b"d/.big.bin.Wh1C4P"));
        assert!(!way.covers("*deleting", b"d/big.bin"));
    }

    #[test]
    fn everything_covers_all_and_merge_keeps_both() {
        assert!(OnTheWay::everything().covers(">f.st......", b"x/y"));
        let mut first = way(&["a"]);
        first.merge(way(&["b"]));
        assert!(first.covers(">f+++++++++", b"a/1") && first.covers(">f+++++++++", b"b/2"));
        first.merge(OnTheWay::everything());
        assert!(first.covers(">f+++++++++", b"c"));
    }

    /// The root listed (its attributes changed) hides no drift below it; the
    /// root compared whole covers everything (found by a review).
    #[test]
    fn the_root_listed_covers_itself_and_the_root_compared_whole_everything() {
        let mut listed = OnTheWay::default();
        listed.add(b"");
        assert!(!listed.covers(">f.st......", b"d/x"));
        let mut whole = OnTheWay::default();
        whole.add_tree(b"");
        assert!(whole.covers(">f.st......", b"d/x"));
    }
}
