//! Renames as inotify reports them: two events (`IN_MOVED_FROM`, then
//! `IN_MOVED_TO`) matched by their cookie within one read. A directory that
//! arrives keeps its watches; one that left and did not arrive is unwatched
//! and its old place compared whole; an exchange (two renames, each the
//! other's reverse) becomes two trees to compare (README "How a sync works",
//! "Watching (inotify)").

use super::InotifyWatcher;
use super::watch_tree::NodeId;
use crate::watcher::Change;

impl InotifyWatcher {
    /// A directory arrived by rename: if we saw it leave one of our directories, it
    /// keeps its watches and only changes place in the table.
    /// Returns whether it was a rename within the tree that missed no event.
    pub(super) fn moved_in(
        &mut self,
        cookie: u32,
        watch: u32,
        parent: NodeId,
        name: &[u8],
    ) -> bool {
        let Some(pos) = self.moved_out.iter().position(|(c, _, _)| *c == cookie) else {
            return false;
        };
        let (_, wd, from) = self.moved_out.swap_remove(pos);
        let Some(moved) = self.tree.node_of(wd) else {
            return false;
        };
        if from == watch {
            self.tree.move_to(moved, parent, name);
            !self.lost_while_moving.contains(&wd)
        } else {
            // Moved between two watched trees: start afresh under the new tree.
            self.drop_subtree(moved);
            false
        }
    }

    /// Directories that left by rename and did not reappear in our trees (by a
    /// matching `IN_MOVED_TO`, or found again by a scan): unwatch.
    pub(super) fn finish_moves(&mut self, out: &mut Vec<Change>) {
        // Entries that left and did not arrive in the same tree: a deletion there.
        for (_, watch, rel, is_dir) in std::mem::take(&mut self.renamed_from) {
            if is_dir {
                out.push(Change::Tree { watch, rel });
            } else {
                out.push(Change::Path { watch, rel });
            }
        }
        self.lost_while_moving.clear();
        self.finish_writes(out);
        self.tree.clear_moved();
        for (_, wd, _) in std::mem::take(&mut self.moved_out) {
            if let Some(node) = self.tree.node_of(wd)
                && self.tree.is_detached(node)
            {
                self.drop_subtree(node);
            }
        }
    }
}

/// `RENAME_EXCHANGE` of two entries reaches inotify as two renames, each the
/// reverse of the other (and so does a rename and its undoing in one read).
/// Replayed one after the other, the second would move back what the first
/// moved (the paths changed below them, and the target's trees): both places
/// are compared whole instead, which is right either way. Returns the
/// places so turned, by tree.
pub(super) fn unswap(changes: &mut [Change]) -> Vec<(u32, Vec<u8>)> {
    let mut swapped = Vec::new();
    for i in 0..changes.len() {
        let Change::Move {
            watch, from, to, ..
        } = &changes[i]
        else {
            continue;
        };
        let (watch, from, to) = (*watch, from.clone(), to.clone());
        let reverse = changes[i + 1..].iter().position(|c| {
            matches!(c, Change::Move { watch: w, from: f, to: t, .. }
                if *w == watch && *f == to && *t == from)
        });
        if let Some(offset) = reverse {
            changes[i] = Change::Tree {
                watch,
                rel: from.clone(),
            };
            changes[i + 1 + offset] = Change::Tree {
                watch,
                rel: to.clone(),
            };
            swapped.extend([(watch, from), (watch, to)]);
        }
    }
    swapped
}
