//! The table of watched directories: a parent + name tree, not a full path per
//! watch. Users watch 10^5–10^6 directories, so an entry is 24 bytes plus its name
//! in a shared arena and one hash-map slot, and a directory rename is one update
//! however many watches lie below it: paths are rebuilt on demand by walking up.

use std::collections::{HashMap, HashSet};

/// Index of a directory in the table.
pub type NodeId = u32;

/// An inotify watch descriptor, as the kernel numbers it.
pub type Wd = i32;

/// "No node": the parent of a root, the end of a sibling list.
const NONE: NodeId = u32::MAX;
/// The parent of a directory that left its place by rename and has not (yet) been
/// seen arriving anywhere: its path is unknown, so its events are not trusted.
const DETACHED: NodeId = u32::MAX - 1;
/// The parent of a free slot.
const FREE: NodeId = u32::MAX - 2;

/// One watched directory: 24 bytes.
#[derive(Clone, Copy)]
struct Node {
    parent: NodeId,
    first_child: NodeId,
    next_sibling: NodeId,
    /// Where the name starts in the arena.
    name_at: u32,
    /// Names are at most 255 bytes (NAME_MAX).
    name_len: u16,
    wd: Wd,
}

/// Watched directories of all trees, indexed by inotify watch descriptor.
#[derive(Default)]
pub struct WatchTree {
    nodes: Vec<Node>,
    free: Vec<NodeId>,
    /// Every name, back to back; freed names stay until a compaction.
    names: Vec<u8>,
    dead_name_bytes: usize,
    by_wd: HashMap<Wd, NodeId>,
    /// Which tree each root belongs to.
    roots: HashMap<NodeId, u32>,
    /// Which tree each detached directory left (a handful at a time).
    detached_from: HashMap<NodeId, u32>,
    per_watch: HashMap<u32, u64>,
    /// Directories given a place since last cleared (see `moved`).
    moved: HashSet<NodeId>,
}

impl WatchTree {
    /// The directory an event's watch descriptor belongs to.
    pub fn node_of(&self, wd: Wd) -> Option<NodeId> {
        self.by_wd.get(&wd).copied()
    }

    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    fn name(&self, id: NodeId) -> &[u8] {
        let node = self.node(id);
        &self.names[node.name_at as usize..node.name_at as usize + node.name_len as usize]
    }

    /// Number of watched directories in one tree.
    pub fn count(&self, watch: u32) -> u64 {
        self.per_watch.get(&watch).copied().unwrap_or(0)
    }

    /// Watched directories in all trees.
    pub fn total(&self) -> usize {
        self.by_wd.len()
    }

    /// The path of every directory of one tree (tests compare it with the disk).
    #[cfg(test)]
    pub fn rel_paths(&self, watch: u32) -> std::collections::BTreeSet<Vec<u8>> {
        self.by_wd
            .values()
            .filter(|id| self.watch_of(**id) == Some(watch))
            .filter_map(|id| self.rel_path(*id))
            .collect()
    }

    /// The directory that left by rename (and is detached) that `id` lies in, if
    /// it lies in one.
    pub fn detached_top(&self, id: NodeId) -> Option<NodeId> {
        let mut cur = id;
        loop {
            match self.node(cur).parent {
                NONE => return None,
                DETACHED => return Some(cur),
                parent => cur = parent,
            }
        }
    }

    /// The tree a directory belongs to (`None` while it is detached).
    pub fn watch_of(&self, id: NodeId) -> Option<u32> {
        let mut cur = id;
        loop {
            match self.node(cur).parent {
                NONE => return self.roots.get(&cur).copied(),
                DETACHED => return None,
                parent => cur = parent,
            }
        }
    }

    fn store_name(&mut self, name: &[u8]) -> (u32, u16) {
        let at = self.names.len() as u32;
        let len = name.len().min(u16::MAX as usize);
        self.names.extend_from_slice(&name[..len]);
        (at, len as u16)
    }

    /// Adds a directory below `parent`, or a root of tree `watch` when `parent` is
    /// `None`. If the kernel handed back a descriptor we already know (the same
    /// directory reached again, e.g. by a scan racing an event, or a rename we have
    /// not seen yet), the existing entry is moved to the new place instead.
    pub fn insert(&mut self, parent: Option<NodeId>, watch: u32, name: &[u8], wd: Wd) -> NodeId {
        if let Some(existing) = self.node_of(wd) {
            if let Some(parent) = parent
                && (self.node(existing).parent != parent || self.name(existing) != name)
            {
                self.move_to(existing, parent, name);
            }
            return existing;
        }
        let (name_at, name_len) = self.store_name(name);
        let node = Node {
            parent: NONE,
            first_child: NONE,
            next_sibling: NONE,
            name_at,
            name_len,
            wd,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as NodeId
            }
        };
        self.by_wd.insert(wd, id);
        self.moved.insert(id);
        *self.per_watch.entry(watch).or_default() += 1;
        match parent {
            Some(parent) => self.link(parent, id),
            None => {
                self.roots.insert(id, watch);
            }
        }
        id
    }

    fn link(&mut self, parent: NodeId, child: NodeId) {
        self.detached_from.remove(&child);
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
        if !self.is_root(id)
            && let Some(watch) = self.watch_of(id)
        {
            self.unlink(id);
            self.detached_from.insert(id, watch);
        }
    }

    /// Whether a directory was detached and never re-attached.
    pub fn is_detached(&self, id: NodeId) -> bool {
        self.node(id).parent == DETACHED
    }

    /// The directories given a place (added, or moved) since
    /// [`WatchTree::clear_moved`]: while the events of one read are replayed, a
    /// scan (which sees the present) may already have put a directory where a
    /// later event of the read says another one leaves.
    pub fn was_placed(&self, id: NodeId) -> bool {
        self.moved.contains(&id)
    }

    /// Forgets which directories moved (the events of a read are all replayed).
    pub fn clear_moved(&mut self) {
        self.moved.clear();
    }

    /// Every child directory of `parent` called `name` (a name is held by two
    /// nodes for a moment while two directories exchange places).
    pub fn children_named(&self, parent: NodeId, name: &[u8]) -> Vec<NodeId> {
        let mut found = Vec::new();
        let mut cur = self.node(parent).first_child;
        while cur != NONE {
            if self.name(cur) == name {
                found.push(cur);
            }
            cur = self.node(cur).next_sibling;
        }
        found
    }

    /// The child directory of `parent` called `name`, if watched.
    pub fn child(&self, parent: NodeId, name: &[u8]) -> Option<NodeId> {
        let mut cur = self.node(parent).first_child;
        while cur != NONE {
            if self.name(cur) == name {
                return Some(cur);
            }
            cur = self.node(cur).next_sibling;
        }
        None
    }

    /// A directory was renamed: re-parent it. Every path below follows, since paths
    /// are built from the tree.
    pub fn move_to(&mut self, id: NodeId, new_parent: NodeId, new_name: &[u8]) {
        self.moved.insert(id);
        self.unlink(id);
        if self.name(id) != new_name {
            self.dead_name_bytes += self.node(id).name_len as usize;
            let (name_at, name_len) = self.store_name(new_name);
            let node = self.node_mut(id);
            node.name_at = name_at;
            node.name_len = name_len;
        }
        self.link(new_parent, id);
    }

    /// Removes a directory and everything below it from the table, returning their
    /// watch descriptors so the caller can drop the kernel watches still alive.
    pub fn remove_subtree(&mut self, id: NodeId) -> Vec<Wd> {
        let watch = self.watch_of(id).or_else(|| self.detached_from.remove(&id));
        self.unlink(id);
        let mut removed = Vec::new();
        let mut stack = vec![id];
        while let Some(cur) = stack.pop() {
            let node = *self.node(cur);
            if node.parent == FREE {
                continue;
            }
            let mut child = node.first_child;
            while child != NONE {
                stack.push(child);
                child = self.node(child).next_sibling;
            }
            self.by_wd.remove(&node.wd);
            self.roots.remove(&cur);
            self.dead_name_bytes += node.name_len as usize;
            self.node_mut(cur).parent = FREE;
            self.free.push(cur);
            removed.push(node.wd);
        }
        if let Some(watch) = watch
            && let Some(count) = self.per_watch.get_mut(&watch)
        {
            *count = count.saturating_sub(removed.len() as u64);
        }
        self.compact_names();
        removed
    }

    /// Rewrites the name arena once more than half of it is dead.
    fn compact_names(&mut self) {
        if self.dead_name_bytes < 1 << 20 || self.dead_name_bytes * 2 < self.names.len() {
            return;
        }
        let mut names = Vec::with_capacity(self.names.len() - self.dead_name_bytes);
        for node in self.nodes.iter_mut().filter(|n| n.parent != FREE) {
            let start = node.name_at as usize;
            let at = names.len() as u32;
            names.extend_from_slice(&self.names[start..start + node.name_len as usize]);
            node.name_at = at;
        }
        self.names = names;
        self.dead_name_bytes = 0;
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
                    parts.push(self.name(cur));
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

    /// The kernel watch descriptor of a directory.
    pub fn wd(&self, id: NodeId) -> Wd {
        self.node(id).wd
    }
}

#[cfg(test)]
mod tests;
