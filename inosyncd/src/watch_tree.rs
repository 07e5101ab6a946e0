//! The table of watched directories: a parent + name tree, not a full path per
//! watch. Users watch 10^5–10^6 directories, and a tree makes a directory rename one
//! update however many watches lie below it, because paths are rebuilt on demand by
//! walking up to the root.

use std::collections::HashMap;

use inotify::WatchDescriptor;

/// Index of a directory in the table.
pub type NodeId = u32;

/// "No node": the parent of a root, the end of a sibling list.
const NONE: NodeId = u32::MAX;
/// The parent of a directory that left its place by rename and has not (yet) been
/// seen arriving anywhere: its path is unknown, so its events are not trusted.
const DETACHED: NodeId = u32::MAX - 1;

struct Node {
    parent: NodeId,
    first_child: NodeId,
    next_sibling: NodeId,
    /// The watch this directory belongs to (a root's own index in the caller's list).
    watch: u32,
    name: Box<[u8]>,
    wd: WatchDescriptor,
}

/// Watched directories of all trees, indexed by inotify watch descriptor.
#[derive(Default)]
pub struct WatchTree {
    nodes: Vec<Option<Node>>,
    free: Vec<NodeId>,
    by_wd: HashMap<i32, NodeId>,
    per_watch: HashMap<u32, u64>,
}

impl WatchTree {
    /// The directory an event's watch descriptor belongs to.
    pub fn node_of(&self, wd: &WatchDescriptor) -> Option<NodeId> {
        self.by_wd.get(&wd.get_watch_descriptor_id()).copied()
    }

    fn node(&self, id: NodeId) -> &Node {
        self.nodes[id as usize].as_ref().expect("live node id")
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.nodes[id as usize].as_mut().expect("live node id")
    }

    /// Number of watched directories in one tree.
    pub fn count(&self, watch: u32) -> u64 {
        self.per_watch.get(&watch).copied().unwrap_or(0)
    }

    /// Watched directories in all trees.
    pub fn total(&self) -> usize {
        self.by_wd.len()
    }

    /// The tree a directory belongs to.
    pub fn watch_of(&self, id: NodeId) -> u32 {
        self.node(id).watch
    }

    /// Adds a directory below `parent` (or a root when `parent` is `None`). If the
    /// kernel handed back a descriptor we already know (the same directory reached
    /// again, e.g. by a scan racing an event, or a rename we have not seen), the
    /// existing entry is moved to the new place instead of duplicated.
    pub fn insert(
        &mut self,
        parent: Option<NodeId>,
        watch: u32,
        name: &[u8],
        wd: WatchDescriptor,
    ) -> NodeId {
        if let Some(existing) = self.node_of(&wd) {
            if let Some(parent) = parent {
                self.move_to(existing, parent, name);
            }
            return existing;
        }
        let node = Node {
            parent: parent.unwrap_or(NONE),
            first_child: NONE,
            next_sibling: NONE,
            watch,
            name: name.into(),
            wd: wd.clone(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Some(node);
                id
            }
            None => {
                self.nodes.push(Some(node));
                (self.nodes.len() - 1) as NodeId
            }
        };
        self.by_wd.insert(wd.get_watch_descriptor_id(), id);
        *self.per_watch.entry(watch).or_default() += 1;
        if let Some(parent) = parent {
            self.link(parent, id);
        }
        id
    }

    fn link(&mut self, parent: NodeId, child: NodeId) {
        let first = self.node(parent).first_child;
        let node = self.node_mut(child);
        node.parent = parent;
        node.next_sibling = first;
        self.node_mut(parent).first_child = child;
    }

    fn unlink(&mut self, child: NodeId) {
        let parent = self.node(child).parent;
        if parent == NONE || parent == DETACHED {
            return;
        }
        let next = self.node(child).next_sibling;
        if self.node(parent).first_child == child {
            self.node_mut(parent).first_child = next;
        } else {
            let mut cur = self.node(parent).first_child;
            while cur != NONE {
                if self.node(cur).next_sibling == child {
                    self.node_mut(cur).next_sibling = next;
                    break;
                }
                cur = self.node(cur).next_sibling;
            }
        }
        let node = self.node_mut(child);
        node.parent = DETACHED;
        node.next_sibling = NONE;
    }

    /// A directory was renamed away: it keeps its entry (and its watches below) but
    /// has no path until [`WatchTree::move_to`] gives it one again.
    pub fn detach(&mut self, id: NodeId) {
        if !self.is_root(id) {
            self.unlink(id);
        }
    }

    /// Whether a directory was detached and never re-attached.
    pub fn is_detached(&self, id: NodeId) -> bool {
        self.node(id).parent == DETACHED
    }

    /// The child directory of `parent` called `name`, if watched.
    pub fn child(&self, parent: NodeId, name: &[u8]) -> Option<NodeId> {
        let mut cur = self.node(parent).first_child;
        while cur != NONE {
            if &*self.node(cur).name == name {
                return Some(cur);
            }
            cur = self.node(cur).next_sibling;
        }
        None
    }

    /// A directory was renamed: re-parent it. Every path below follows, since paths
    /// are built from the tree.
    pub fn move_to(&mut self, id: NodeId, new_parent: NodeId, new_name: &[u8]) {
        self.unlink(id);
        self.node_mut(id).name = new_name.into();
        self.link(new_parent, id);
    }

    /// Removes a directory and everything below it from the table, returning their
    /// watch descriptors so the caller can drop the kernel watches still alive.
    pub fn remove_subtree(&mut self, id: NodeId) -> Vec<WatchDescriptor> {
        self.unlink(id);
        let mut removed = Vec::new();
        let mut stack = vec![id];
        while let Some(cur) = stack.pop() {
            let Some(node) = self.nodes[cur as usize].take() else {
                continue;
            };
            let mut child = node.first_child;
            while child != NONE {
                stack.push(child);
                child = self.node(child).next_sibling;
            }
            self.by_wd.remove(&node.wd.get_watch_descriptor_id());
            if let Some(count) = self.per_watch.get_mut(&node.watch) {
                *count -= 1;
            }
            self.free.push(cur);
            removed.push(node.wd);
        }
        removed
    }

    /// The path of a directory relative to its tree's root, `/`-separated, empty for
    /// the root itself; `None` while it or an ancestor is detached.
    pub fn rel_path(&self, id: NodeId) -> Option<Vec<u8>> {
        let mut parts = Vec::new();
        let mut cur = id;
        loop {
            match self.node(cur).parent {
                NONE => break,
                DETACHED => return None,
                parent => {
                    parts.push(&*self.node(cur).name);
                    cur = parent;
                }
            }
        }
        let mut path = Vec::new();
        for part in parts.iter().rev() {
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(part);
        }
        Some(path)
    }

    /// Whether a directory is the root of its tree.
    pub fn is_root(&self, id: NodeId) -> bool {
        self.node(id).parent == NONE
    }
}

/// Joins a directory's relative path and an entry name.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    path.extend_from_slice(dir);
    if !dir.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

impl WatchTree {
    /// The kernel watch descriptor of a directory.
    pub fn wd(&self, id: NodeId) -> WatchDescriptor {
        self.node(id).wd.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inotify::{Inotify, WatchMask};

    #[test]
    fn paths_follow_renames_and_detached_directories_have_none() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["a/b", "c"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let inotify = Inotify::init().unwrap();
        let add = |p: &str| {
            inotify
                .watches()
                .add(dir.path().join(p), WatchMask::CREATE)
                .unwrap()
        };
        let mut tree = WatchTree::default();
        let root = tree.insert(None, 7, b"", add(""));
        let a = tree.insert(Some(root), 7, b"a", add("a"));
        let b = tree.insert(Some(a), 7, b"b", add("a/b"));
        let c = tree.insert(Some(root), 7, b"c", add("c"));
        assert_eq!(tree.rel_path(b).unwrap(), b"a/b");
        assert_eq!(tree.count(7), 4);

        tree.move_to(a, c, b"renamed");
        assert_eq!(tree.rel_path(b).unwrap(), b"c/renamed/b");
        assert_eq!(tree.child(c, b"renamed"), Some(a));
        assert_eq!(tree.child(root, b"a"), None);

        tree.detach(a);
        assert!(tree.is_detached(a));
        assert_eq!(tree.rel_path(b), None);
        tree.move_to(a, root, b"back");
        assert_eq!(tree.rel_path(b).unwrap(), b"back/b");

        let removed = tree.remove_subtree(a);
        assert_eq!(removed.len(), 2);
        assert_eq!(tree.count(7), 2);
        assert_eq!(tree.child(root, b"back"), None);
    }
}
