//! What each inotify event means for the trees: the watch table follows new,
//! moved and deleted directories; the change is a path, a file still being
//! written, a directory to compare whole, or a move the target can repeat.

use inotify::EventMask;

use super::watch_tree::Wd;
use super::{Change, InotifyWatcher};
use crate::watcher::join;

impl InotifyWatcher {
    pub(super) fn handle(
        &mut self,
        wd: Wd,
        mask: EventMask,
        cookie: u32,
        name: Option<Vec<u8>>,
        out: &mut Vec<Change>,
    ) {
        if mask.contains(EventMask::Q_OVERFLOW) {
            self.overflows += 1;
            tracing::warn!(
                "inotify queue overflow: rescanning every watch and scheduling full syncs"
            );
            self.rescan_all(out);
            return;
        }
        let Some(node) = self.tree.node_of(wd) else {
            return;
        };
        if mask.contains(EventMask::IGNORED) {
            let root_of = self
                .tree
                .is_root(node)
                .then(|| self.tree.watch_of(node))
                .flatten();
            for stale in self.tree.remove_subtree(node).into_iter().skip(1) {
                self.rm_watch(stale);
            }
            if let Some(watch) = root_of
                && let Some(root) = self.roots.get_mut(&watch)
            {
                tracing::error!(
                    "watch root {} was deleted or unmounted; its changes are no longer seen",
                    root.path.display()
                );
                root.node = None;
                out.push(Change::RootGone { watch });
            }
            return;
        }
        if mask.contains(EventMask::MOVE_SELF) {
            if self.tree.is_root(node)
                && let Some(watch) = self.tree.watch_of(node)
            {
                out.push(Change::RootGone { watch });
            }
            return;
        }
        // A directory renamed away and not seen arriving belongs to no tree for now;
        // what happened in it is found by the scan when it arrives.
        let Some(watch) = self.tree.watch_of(node) else {
            if let Some(top) = self.tree.detached_top(node) {
                let wd = self.tree.wd(top);
                if !self.lost_while_moving.contains(&wd) {
                    self.lost_while_moving.push(wd);
                }
            }
            return;
        };
        let Some(name) = name else {
            return;
        };
        // A directory renamed away and not seen arriving: its path is unknown, and a
        // guessed path could name (and delete on the target) something else.
        let Some(dir_rel) = self.tree.rel_path(node) else {
            return;
        };
        let rel = join(&dir_rel, &name);
        let is_dir = mask.contains(EventMask::ISDIR);
        let Some(root) = self.roots.get(&watch) else {
            return;
        };
        if root.excludes.matches(&rel, is_dir) {
            return;
        }
        if mask.contains(EventMask::MOVED_FROM) {
            self.renamed_from.push((cookie, watch, rel.clone(), is_dir));
        }
        // The other half of a rename within this tree: one move, which the target
        // can do as a rename instead of a transfer.
        let from = mask
            .contains(EventMask::MOVED_TO)
            .then(|| {
                let at = self
                    .renamed_from
                    .iter()
                    .position(|(c, w, _, _)| *c == cookie && *w == watch)?;
                Some(self.renamed_from.swap_remove(at).2)
            })
            .flatten();
        let mut implied = Vec::new();
        let mut implied_ok = false;
        if is_dir {
            // The directory leaving: never one given this place during this read
            // (by an earlier rename of it, or by a scan, which sees the present
            // and so may have put a directory where a later event moves it: when
            // two directories exchange places, the name is held by both). A
            // rename that finds none is not replayed as a move: the directory
            // that arrives is scanned and found where it is.
            let leaving = self
                .tree
                .children_named(node, &name)
                .into_iter()
                .find(|c| !self.tree.was_placed(*c));
            if mask.contains(EventMask::MOVED_FROM)
                && let Some(child) = leaving
            {
                self.tree.detach(child);
                self.moved_out.push((cookie, self.tree.wd(child), watch));
            }
            // A pure rename: the directory kept its watches and missed nothing.
            let pure = mask.contains(EventMask::MOVED_TO)
                && self.moved_in(cookie, watch, node, &name)
                && from.is_some();
            implied_ok = pure;
            if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                let emit = self.events.wants_new_entries();
                // A renamed directory's entries are not new: they are listed apart,
                // for the transfer that replaces a rename that cannot be done. If
                // it missed events on the way, they are all listed as changed.
                let mut found = Vec::new();
                self.scan_dir(watch, node, &name, rel.clone(), emit, &mut found);
                for change in found {
                    match change {
                        Change::Path { rel, .. } if pure => implied.push(rel),
                        other => out.push(other),
                    }
                }
            }
        }
        // A directory that missed events on the way is not renamed on the target:
        // what arrived is transferred, what left is deleted, as for any new tree.
        let from = match from {
            Some(from) if is_dir && !implied_ok => {
                // Its old path is a deletion, as for any entry that left (or
                // another tree, should one have taken its name).
                out.push(Change::Tree { watch, rel: from });
                None
            }
            other => other,
        };
        if let Some(from) = from {
            out.push(Change::Move {
                watch,
                from,
                to: rel,
                implied,
            });
            return;
        }
        // The old path of a rename is reported when the read ends, unless its
        // arrival made it a move (see `finish_moves`).
        if mask.contains(EventMask::MOVED_FROM) {
            return;
        }
        if self.events.triggers(mask) {
            // Written and not closed: it goes out once quiet (see the engine).
            if !is_dir && mask.contains(EventMask::MODIFY) {
                out.push(Change::Written { watch, rel });
                return;
            }
            // A directory deleted or arrived from elsewhere (or that missed
            // events on the way): whatever holds its name by the time rsync
            // runs is made equal as a whole tree.
            if is_dir
                && (mask.contains(EventMask::DELETE)
                    || (mask.contains(EventMask::MOVED_TO) && !implied_ok))
            {
                out.push(Change::Tree { watch, rel });
                return;
            }
            // A file with other hard links changed: its other names changed too,
            // and inotify reports only the one written through. Where they are is
            // unknown, so the whole tree is compared (size and mtime show them).
            if !is_dir
                && mask.intersects(EventMask::CLOSE_WRITE | EventMask::ATTRIB)
                && let Some(root) = self.roots.get(&watch)
                && crate::watcher::has_other_links(&root.path, &rel)
            {
                tracing::debug!(
                    "{}: changed and has other hard links; full sync",
                    String::from_utf8_lossy(&rel)
                );
                out.push(Change::Everything { watch });
            }
            out.push(Change::Path { watch, rel });
        }
    }
}
