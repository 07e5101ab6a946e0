//! Files of a tree with other names outside it (hard links: a `cp -al`
//! snapshot, a deploy tool's release directory). A write through an outside
//! name is reported with the file's own handle and the outside directory; the
//! kernel cannot say which other names the file has. So each tree is walked in
//! the background for its files with several names (at start, and again when a
//! file on its filesystem gains a name: the kernel reports that as an attribute
//! change of the file alone), and renames keep the index current: an outside
//! write of such a file becomes a change of its names in the trees (each checked
//! to still be that file), and while a walk of the trees on its filesystem is
//! not done, a full sync of them.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::records::Fid;
use crate::exclude::ExcludeSet;
use crate::watcher::link_walker::Walker;
pub use crate::watcher::link_walker::{Inode, is_still};

/// A walk asked for and not done yet.
struct Walk {
    generation: u64,
    root: PathBuf,
    excludes: ExcludeSet,
    /// Asked for again while it ran: it runs once more when it is done.
    again: bool,
}

/// Past this many remembered outside files, they are looked up again.
const MAX_REMEMBERED: usize = 4096;

/// The index of files with several names, per tree.
#[derive(Default)]
pub struct Links {
    names: HashMap<Inode, Vec<(u32, Vec<u8>)>>,
    /// How many indexed inodes each filesystem has: none, and a write outside
    /// the trees on it needs no look-up at all.
    per_dev: HashMap<u64, usize>,
    walker: Walker,
    walks: HashMap<u32, Walk>,
    /// Walks of a part of a tree (a directory that arrived), by generation:
    /// the tree they belong to.
    parts: HashMap<u64, u32>,
    generation: u64,
    indexed: HashSet<u32>,
    /// Files written outside the trees: their inode when they have several
    /// names, `None` when one (until a name of theirs comes or goes).
    outside: HashMap<Fid, Option<Inode>>,
    /// Files that gained (or lost) a name since the trees were walked.
    relinked: HashSet<Fid>,
    /// Too many of those to remember: every tree is walked again.
    walk_all: bool,
    /// Writes outside the trees waiting for a walk to place them (inode, and
    /// whether the file was closed).
    deferred: HashMap<Inode, bool>,
    /// Walks that ended after the queue was last found empty: a rename made
    /// while one ran, which it may have missed, is read first.
    ended: Vec<crate::watcher::link_walker::Done>,
}

impl Links {
    /// Starts the walk of a tree, in the background (the index of that tree
    /// counts as incomplete until it is done).
    pub fn index(&mut self, watch: u32, root: PathBuf, excludes: ExcludeSet) {
        self.indexed.remove(&watch);
        if let Some(asked) = self.walks.get_mut(&watch) {
            asked.again = true;
            asked.root = root;
            asked.excludes = excludes;
            return;
        }
        self.ask(watch, root, excludes);
    }

    /// Starts the walk of one directory of a tree (`below`, one that arrived
    /// by a rename from where no walk looked), in the background: the tree's
    /// index counts as incomplete until it is done, as for a whole walk, but
    /// the cost is that directory's, not the tree's.
    pub fn index_part(&mut self, watch: u32, root: PathBuf, excludes: ExcludeSet, below: &[u8]) {
        // A tree never walked whole stays unindexed: a part proves nothing.
        // One whose other parts are still walked was walked whole (the
        // second half of a `RENAME_EXCHANGE` of two directories comes while
        // the first half's part is walked: a fuzzer found its names never
        // learnt).
        if !self.indexed.contains(&watch) && self.walked(watch) {
            return;
        }
        self.generation += 1;
        if self.walker.ask(
            watch,
            self.generation,
            root,
            below.to_vec(),
            excludes,
            Default::default(),
        ) {
            self.indexed.remove(&watch);
            self.parts.insert(self.generation, watch);
        } else {
            // No thread: the tree stays unindexed, writes outside wait or are
            // compared whole.
            self.indexed.remove(&watch);
        }
    }

    /// An index whose walks are all refused (see [`Walker::refusing`]).
    #[cfg(test)]
    pub fn refusing() -> Links {
        Links::with_walker(Walker::refusing())
    }

    /// An index whose walks `walker` does (see [`Walker::manual`]).
    #[cfg(test)]
    pub fn with_walker(walker: Walker) -> Links {
        Links {
            walker,
            ..Links::default()
        }
    }

    /// Whether a walk of tree `watch` (whole or a part) is still to be
    /// taken in: a directory renamed meanwhile may have been passed by it
    /// at neither name, or have its names learnt at the old one.
    pub fn walking_tree(&self, watch: u32) -> bool {
        !self.walked(watch)
    }

    /// Whether the walks of tree `watch` are all done.
    fn walked(&self, watch: u32) -> bool {
        !self.walks.contains_key(&watch) && !self.parts.values().any(|w| *w == watch)
    }

    fn ask(&mut self, watch: u32, root: PathBuf, excludes: ExcludeSet) {
        self.generation += 1;
        if self.walker.ask(
            watch,
            self.generation,
            root.clone(),
            Vec::new(),
            excludes.clone(),
            Default::default(),
        ) {
            self.walks.insert(
                watch,
                Walk {
                    generation: self.generation,
                    root,
                    excludes,
                    again: false,
                },
            );
        }
    }

    /// Whether a walk ended after `read_up_to` (when the queue was last
    /// found empty): the queue is to be read before it is taken in.
    pub fn ended_after(&mut self, read_up_to: std::time::Instant) -> bool {
        self.ended.extend(self.walker.done());
        self.ended.iter().any(|done| done.finished > read_up_to)
    }

    /// Takes in the walks that ended by `read_up_to`, when the queue was
    /// last found empty (every rename made while they ran has been read by
    /// then; those that ended since wait for the next read), and asks again
    /// for those asked for again meanwhile.
    pub fn poll(&mut self, read_up_to: std::time::Instant) {
        self.ended.extend(self.walker.done());
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ended)
            .into_iter()
            .partition(|done| done.finished <= read_up_to);
        self.ended = later;
        for done in ready {
            if let Some(watch) = self.parts.remove(&done.generation) {
                for (inode, rel) in done.found {
                    self.learn(watch, rel, inode);
                }
                if self.walked(watch) {
                    self.indexed.insert(watch);
                }
                continue;
            }
            let Some(asked) = self.walks.get(&done.watch) else {
                continue;
            };
            if asked.generation != done.generation {
                continue;
            }
            for (inode, rel) in done.found {
                self.learn(done.watch, rel, inode);
            }
            if let Some(asked) = self.walks.remove(&done.watch) {
                if asked.again {
                    self.ask(done.watch, asked.root, asked.excludes);
                } else if self.walked(done.watch) {
                    self.indexed.insert(done.watch);
                }
            }
        }
        // A thread that died (a panic) answers no walk (what it finished
        // before is taken in above): those asked of it
        // are given up, their trees left unindexed, rather than waited for
        // (and `wait` with them) for ever.
        if !self.walker.alive() && self.walking() {
            tracing::error!(
                "the thread that indexes hard links has ended; writes through names \
                 outside the trees are compared whole and searched for"
            );
            let watches: Vec<u32> = self
                .walks
                .keys()
                .chain(self.parts.values())
                .copied()
                .collect();
            for watch in watches {
                self.indexed.remove(&watch);
            }
            self.walks.clear();
            self.parts.clear();
        }
    }

    /// Forgets a tree (removed, or watched another way).
    pub fn forget(&mut self, watch: u32) {
        self.walks.remove(&watch);
        self.parts.retain(|_, w| *w != watch);
        self.indexed.remove(&watch);
        for names in self.names.values_mut() {
            names.retain(|(w, _)| *w != watch);
        }
        self.names.retain(|_, names| !names.is_empty());
        self.per_dev.clear();
        for (dev, _) in self.names.keys() {
            *self.per_dev.entry(*dev).or_default() += 1;
        }
    }

    /// Whether a file written outside the trees on filesystem `dev` may have a
    /// name in one of `watches` (the trees on it): not when they are all
    /// indexed and none holds a file with several names.
    pub fn may_have_names(&self, dev: u64, watches: &[u32]) -> bool {
        !self.indexed_all(watches) || self.per_dev.get(&dev).is_some_and(|n| *n > 0)
    }

    /// `rel` of `watch` is a file with several names.
    pub fn learn(&mut self, watch: u32, rel: Vec<u8>, inode: Inode) {
        let names = self.names.entry(inode).or_insert_with(|| {
            *self.per_dev.entry(inode.0).or_default() += 1;
            Vec::new()
        });
        if !names.iter().any(|(w, r)| *w == watch && *r == rel) {
            names.push((watch, rel));
        }
    }

    /// `from` in `watch` was renamed to `to` (in `to_watch`; `None`: out of
    /// every tree): names at or below it follow.
    pub fn reroot(&mut self, watch: u32, from: &[u8], to: Option<(u32, &[u8])>) {
        let below = |r: &[u8]| {
            r == from || (r.len() > from.len() && r.starts_with(from) && r[from.len()] == b'/')
        };
        for names in self.names.values_mut() {
            for name in names.iter_mut().filter(|(w, r)| *w == watch && below(r)) {
                if let Some((to_watch, to)) = to {
                    *name = (to_watch, [to, &name.1[from.len()..]].concat());
                }
            }
        }
    }

    /// A name of this file came or went: its link count is looked up again.
    pub fn changed(&mut self, fid: &Fid) {
        self.outside.remove(fid);
    }

    /// This file gained or lost a name (somewhere on its filesystem): until it
    /// is placed, a write through one of its names may be one of the trees'.
    /// Returns whether there were too many to remember: then every tree is
    /// walked again after this read, and the caller makes those on the
    /// file's filesystem count as unwalked until then ([`Links::unindex`]).
    pub fn relinked(&mut self, fid: &Fid) -> bool {
        self.outside.remove(fid);
        if self.relinked.len() >= MAX_REMEMBERED {
            // Too many to remember (a `cp -al` of a large tree): every tree is
            // walked again instead, which places them all.
            self.relinked.clear();
            self.walk_all = true;
            return true;
        }
        self.relinked.insert(fid.clone());
        false
    }

    /// Trees that count as unwalked until their next walk is done: a write
    /// read meanwhile waits for it (a review: after the set of files that
    /// gained a name overflowed, a write later in the read, its file's new
    /// name forgotten, was taken for a file of no tree's and dropped).
    pub fn unindex(&mut self, watches: &[u32]) {
        for watch in watches {
            self.indexed.remove(watch);
        }
    }

    /// Keeps a write outside the trees until no walk runs; `false` when too
    /// many wait already (the caller syncs the trees whole instead).
    pub fn defer(&mut self, inode: Inode, closed: bool) -> bool {
        if self.deferred.len() >= MAX_REMEMBERED && !self.deferred.contains_key(&inode) {
            return false;
        }
        *self.deferred.entry(inode).or_default() |= closed;
        true
    }

    /// Whether a tree is being walked (see [`super::FanWatcher::indexing`]).
    pub fn walking(&self) -> bool {
        !self.walks.is_empty() || !self.parts.is_empty()
    }

    /// Whether writes wait for a walk (changes on their way: `wait` waits).
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// The writes that waited, once no walk runs any more.
    pub fn take_deferred(&mut self) -> Vec<(Inode, bool)> {
        if self.walking() || self.deferred.is_empty() {
            return Vec::new();
        }
        std::mem::take(&mut self.deferred).into_iter().collect()
    }

    /// Whether every tree must be walked again (asked once).
    pub fn take_walk_all(&mut self) -> bool {
        std::mem::take(&mut self.walk_all)
    }

    /// Whether this file gained or lost a name since the trees were walked.
    pub fn was_relinked(&self, fid: &Fid) -> bool {
        self.relinked.contains(fid)
    }

    /// The file is being placed (its trees walked again).
    pub fn forget_relinked(&mut self, fid: &Fid) {
        self.relinked.remove(fid);
    }

    /// What is remembered of a file written outside the trees: `Some(None)`
    /// when it has one name, `Some(Some(inode))` when several, `None` when it
    /// must be looked up (then [`Links::remember_outside`]).
    pub fn known_outside(&self, fid: &Fid) -> Option<Option<Inode>> {
        self.outside.get(fid).copied()
    }

    /// Remembers what a look-up of a file written outside found: its inode and
    /// link count.
    pub fn remember_outside(&mut self, fid: &Fid, found: Option<(Inode, u64)>) -> Option<Inode> {
        // One name left, and the index knows it in a tree: the outside name
        // written through was removed since (`echo x >> out/x; rm out/x`).
        let inode = found.and_then(|(inode, links)| {
            (links > 1 || (links == 1 && self.names.contains_key(&inode))).then_some(inode)
        });
        if self.outside.len() >= MAX_REMEMBERED {
            self.outside.clear();
        }
        self.outside.insert(fid.clone(), inode);
        inode
    }

    /// Whether the index knows files with several names on filesystem `dev`.
    pub fn has_names_on(&self, dev: u64) -> bool {
        self.per_dev.get(&dev).is_some_and(|n| *n > 0)
    }

    /// Names of file `inode` found not to be that file any more.
    pub fn forget_names(&mut self, inode: Inode, gone: &[(u32, Vec<u8>)]) {
        if let Some(names) = self.names.get_mut(&inode) {
            names.retain(|name| !gone.contains(name));
        }
    }

    /// The names in the trees of file `inode`, as last known.
    pub fn names_of(&self, inode: Inode) -> Vec<(u32, Vec<u8>)> {
        self.names.get(&inode).cloned().unwrap_or_default()
    }

    /// Whether every tree in `watches` has been walked.
    pub fn indexed_all(&self, watches: &[u32]) -> bool {
        watches.iter().all(|w| self.indexed.contains(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_walk_finds_files_with_several_names_and_renames_move_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/linked"), "x").unwrap();
        std::fs::write(root.join("single"), "x").unwrap();
        std::fs::hard_link(root.join("a/b/linked"), dir.path().join("outside")).unwrap();
        let mut links = Links::default();
        links.index(7, root.clone(), ExcludeSet::new(&[]).unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !links.indexed_all(&[7]) && std::time::Instant::now() < deadline {
            links.poll(std::time::Instant::now());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let meta = std::fs::metadata(dir.path().join("outside")).unwrap();
        let inode = (meta.dev(), meta.ino());
        assert_eq!(links.names_of(inode), [(7, b"a/b/linked".to_vec())]);
        assert!(is_still(&root, b"a/b/linked", inode));
        links.reroot(7, b"a", Some((7, b"c")));
        assert_eq!(links.names_of(inode), [(7, b"c/b/linked".to_vec())]);
        assert!(
            !is_still(&root, b"c/b/linked", inode),
            "not renamed on disk"
        );
    }

    #[test]
    fn a_part_walk_learns_the_names_below_it_only_and_holds_the_index_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("old")).unwrap();
        std::fs::create_dir_all(root.join("new/sub")).unwrap();
        std::fs::write(root.join("old/linked"), "x").unwrap();
        std::fs::write(root.join("new/sub/linked"), "y").unwrap();
        std::fs::hard_link(root.join("old/linked"), dir.path().join("o1")).unwrap();
        std::fs::hard_link(root.join("new/sub/linked"), dir.path().join("o2")).unwrap();
        let inode = |name: &str| {
            let meta = std::fs::metadata(dir.path().join(name)).unwrap();
            (meta.dev(), meta.ino())
        };
        let mut links = Links::default();
        let wait = |links: &mut Links| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while links.walking() && std::time::Instant::now() < deadline {
                links.poll(std::time::Instant::now());
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        };
        // Never walked whole: a part walk does not make it indexed.
        links.index_part(7, root.clone(), ExcludeSet::new(&[]).unwrap(), b"new");
        assert!(!links.walking() && !links.indexed_all(&[7]));
        // Walked whole while "new" was elsewhere, then "new" arrives.
        std::fs::rename(root.join("new"), dir.path().join("away")).unwrap();
        links.index(7, root.clone(), ExcludeSet::new(&[]).unwrap());
        wait(&mut links);
        assert!(links.indexed_all(&[7]));
        assert!(links.names_of(inode("o2")).is_empty());
        std::fs::rename(dir.path().join("away"), root.join("new")).unwrap();
        let before = links.names_of(inode("o1"));
        links.index_part(7, root.clone(), ExcludeSet::new(&[]).unwrap(), b"new");
        assert!(!links.indexed_all(&[7]), "indexed while its part is walked");
        wait(&mut links);
        assert!(links.indexed_all(&[7]));
        assert_eq!(
            links.names_of(inode("o2")),
            [(7, b"new/sub/linked".to_vec())]
        );
        assert_eq!(links.names_of(inode("o1")), before);
    }
}
