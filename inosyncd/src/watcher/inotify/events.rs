//! What each inotify event means for the trees: the watch table follows new,
//! moved and deleted directories; the change is a path, a file still being
//! written, a directory to compare whole, or a move the target can repeat.

use inotify::EventMask;

use super::watch_tree::{NodeId, Wd};
use super::{Change, InotifyWatcher};
use crate::watcher::join;

/// The most writes remembered while their names are gone (a burst of atomic
/// saves renames every file it writes): past it, a write read so has the
/// trees on its filesystem compared instead.
pub(super) const WRITTEN_GONE_MAX: usize = 10_000;

impl InotifyWatcher {
    pub(super) fn handle(
        &mut self,
        wd: Wd,
        mask: EventMask,
        cookie: u32,
        name: Option<Vec<u8>>,
        out: &mut Vec<Change>,
    ) {
        let from = out.len();
        self.handle_one(wd, mask, cookie, name, out);
        let names = EventMask::CREATE
            | EventMask::DELETE
            | EventMask::MOVED_FROM
            | EventMask::MOVED_TO
            | EventMask::Q_OVERFLOW;
        if !mask.intersects(names) {
            let roots = &self.roots;
            crate::watcher::drop_tmpfile_paths(out, from, |watch| {
                roots.get(&watch).map(|root| root.path.as_path())
            });
        }
    }

    fn handle_one(
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
        if self.watched_dir_went(node, mask, out) {
            return;
        }
        let Some((watch, rel)) = self.place(node, name.as_deref(), mask) else {
            return;
        };
        let is_dir = mask.contains(EventMask::ISDIR);
        if !is_dir
            && let Some(name) = &name
            && self.removed_name(wd, name, watch, &rel, mask, out)
        {
            return;
        }
        if is_dir && let Some(name) = &name {
            self.unreadable_changed(node, watch, name, &rel, mask, out);
        }
        if mask.contains(EventMask::MOVED_FROM) {
            self.renamed_from.push((cookie, watch, rel.clone(), is_dir));
            // A name like an `O_TMPFILE`'s is listed before the move, so that
            // a write to it (not listed for that name) goes with it (see
            // `named_like_a_tmpfile`).
            if crate::watcher::named_like_a_tmpfile(&rel) {
                out.push(Change::Path {
                    watch,
                    rel: rel.clone(),
                });
            }
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
        // Before the writes a rename carries here are looked up at it.
        if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
            self.name_taken(watch, &rel, out);
            self.arrived(
                watch,
                &rel,
                is_dir,
                mask.contains(EventMask::MOVED_TO) && from.is_none(),
            );
        }
        if let Some(from) = &from {
            self.carry_gone_writes(watch, from, &rel, out);
        }
        let (implied, implied_ok) = match (is_dir, name) {
            (true, Some(name)) => {
                self.directory_entry(node, watch, &name, &rel, cookie, mask, from.is_some(), out)
            }
            _ => (Vec::new(), false),
        };
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
            // What the rename left at its old name (see `left_at_old_name`),
            // after the move: listed before it, a new file there would have
            // the moved file compared by content.
            let left_behind = self
                .roots
                .get(&watch)
                .is_some_and(|root| crate::watcher::left_at_old_name(&root.path, &from))
                .then(|| from.clone());
            out.push(Change::Move {
                watch,
                from,
                to: rel,
                implied,
            });
            if let Some(rel) = left_behind {
                out.push(Change::Path { watch, rel });
            }
            return;
        }
        // The old path of a rename is reported when the read ends, unless its
        // arrival made it a move (see `finish_moves`).
        if mask.contains(EventMask::MOVED_FROM) {
            return;
        }
        self.report(watch, rel, mask, implied_ok, out);
    }

    /// A rename from `from` to `to` in `watch`'s tree: the writes read while
    /// their names were gone (`written_gone`) at or below `from` went to
    /// their new names, and a file there with other names has them looked
    /// for, as a write read at that name would (found by a black-box attack:
    /// `echo > d/c; mv d/c a`, read after both, left `d/c`'s other name `d/b`
    /// with its old content after a same-size rewrite with the mtime put
    /// back).
    fn carry_gone_writes(&mut self, watch: u32, from: &[u8], to: &[u8], out: &mut Vec<Change>) {
        if self.written_gone.is_empty() && self.written_gone_before.is_empty() {
            return;
        }
        let Some(root) = self.roots.get(&watch).map(|r| r.path.clone()) else {
            return;
        };
        let mut carried = Vec::new();
        for gone in [&mut self.written_gone, &mut self.written_gone_before] {
            gone.retain(|(w, rel, since)| {
                let below =
                    rel.len() > from.len() && rel.starts_with(from) && rel[from.len()] == b'/';
                if *w != watch || (rel.as_slice() != from && !below) {
                    return true;
                }
                let moved = [to, &rel[from.len()..]].concat();
                carried.push((moved, *since));
                false
            });
        }
        for (moved, since) in carried {
            match crate::watcher::absolute(&root, &moved).symlink_metadata() {
                Ok(meta) => {
                    if crate::watcher::is_linked(&meta) {
                        out.push(Change::Linked {
                            watch,
                            rel: Some(moved.clone()),
                        });
                    }
                    // Looked up at the new name: another entry taking it
                    // just after may have been what was seen there.
                    self.written_at(watch, &moved, since, out);
                }
                // Gone from the new name too (renamed again, or removed):
                // waits there for the next rename, or is lost (a black-box
                // attack: `mv d/a d/x; mv d/x d/y` after the write left its
                // other name stale).
                Err(_) => self.written_gone.push((watch, moved, since)),
            }
        }
    }

    /// A directory that could not be watched (its mode let the daemon's user
    /// not read it) changed: its attributes (a `chmod` or `chown` that may
    /// let it in now) have it watched and listed at once, as a new directory
    /// is; its removal or rename forgets it (its new name, if in the tree, is
    /// tried as any directory that arrives).
    fn unreadable_changed(
        &mut self,
        node: NodeId,
        watch: u32,
        name: &[u8],
        rel: &[u8],
        mask: EventMask,
        out: &mut Vec<Change>,
    ) {
        let Some(root) = self.roots.get_mut(&watch) else {
            return;
        };
        if !root.unreadable.contains_key(rel) {
            return;
        }
        if mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM) {
            root.unreadable.remove(rel);
        } else if mask.contains(EventMask::ATTRIB) && self.tree.child(node, name).is_none() {
            let emit = self.events.wants_new_entries();
            self.scan_dir(watch, node, name, rel.to_vec(), emit, out);
        }
    }

    /// The watched directory itself went (`IN_IGNORED`: deleted or unmounted;
    /// `IN_MOVE_SELF` of a watch root): its watches go, a root is gone. Returns
    /// whether the event was about that.
    fn watched_dir_went(&mut self, node: NodeId, mask: EventMask, out: &mut Vec<Change>) -> bool {
        if mask.contains(EventMask::IGNORED) {
            let root_of = self
                .tree
                .is_root(node)
                .then(|| self.tree.watch_of(node))
                .flatten();
            let gone = self.tree.remove_subtree(node);
            for wd in &gone {
                self.removed.forget_dir(*wd);
            }
            for stale in gone.into_iter().skip(1) {
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
            return true;
        }
        if mask.contains(EventMask::MOVE_SELF) {
            if self.tree.is_root(node)
                && let Some(watch) = self.tree.watch_of(node)
            {
                out.push(Change::RootGone { watch });
            }
            return true;
        }
        false
    }

    /// The watch and path of the entry `name` in the directory `node`, unless
    /// it cannot be placed or is excluded.
    fn place(
        &mut self,
        node: NodeId,
        name: Option<&[u8]>,
        mask: EventMask,
    ) -> Option<(u32, Vec<u8>)> {
        // A directory renamed away and not seen arriving belongs to no tree for now;
        // what happened in it is found by the scan when it arrives.
        let Some(watch) = self.tree.watch_of(node) else {
            if let Some(top) = self.tree.detached_top(node) {
                let wd = self.tree.wd(top);
                if !self.lost_while_moving.contains(&wd) {
                    self.lost_while_moving.push(wd);
                }
            }
            return None;
        };
        let Some(name) = name else {
            // The watched directory's own event: a root's attributes changed
            // (a chmod, chown or touch of the root), which only its own watch
            // reports. Any other directory's come to its parent's watch, by
            // name.
            return (self.tree.is_root(node) && mask.contains(EventMask::ATTRIB))
                .then(|| (watch, Vec::new()));
        };
        // A directory renamed away and not seen arriving: its path is unknown, and a
        // guessed path could name (and delete on the target) something else.
        let dir_rel = self.tree.rel_path(node)?;
        let rel = join(&dir_rel, name);
        let root = self.roots.get(&watch)?;
        if root.excludes.matches(&rel, mask.contains(EventMask::ISDIR)) {
            return None;
        }
        Some((watch, rel))
    }

    /// A directory entry that came, left or was renamed: its watches follow it,
    /// a new one is scanned. Returns what lies below it when it is a pure
    /// rename (listed apart, for the transfer that replaces a rename that
    /// cannot be done), and whether it is one.
    #[allow(clippy::too_many_arguments)]
    fn directory_entry(
        &mut self,
        node: NodeId,
        watch: u32,
        name: &[u8],
        rel: &[u8],
        cookie: u32,
        mask: EventMask,
        paired: bool,
        out: &mut Vec<Change>,
    ) -> (Vec<Vec<u8>>, bool) {
        // The directory leaving: never one given this place during this read
        // (by an earlier rename of it, or by a scan, which sees the present
        // and so may have put a directory where a later event moves it: when
        // two directories exchange places, the name is held by both). A
        // rename that finds none is not replayed as a move: the directory
        // that arrives is scanned and found where it is.
        let leaving = self
            .tree
            .children_named(node, name)
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
            && self.moved_in(cookie, watch, node, name)
            && paired;
        let mut implied = Vec::new();
        if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
            let emit = self.events.wants_new_entries();
            // A renamed directory's entries are not new: they are listed apart,
            // for the transfer that replaces a rename that cannot be done. If
            // it missed events on the way, they are all listed as changed.
            let mut found = Vec::new();
            self.scan_dir(watch, node, name, rel.to_vec(), emit, &mut found);
            for change in found {
                match change {
                    Change::Path { rel, .. } if pure => implied.push(rel),
                    other => out.push(other),
                }
            }
        }
        (implied, pure)
    }

    /// Keeps the file names whose removal was read (see `removed_names`), and
    /// makes a write or attribute change named by one of them a change of the
    /// file's other names: it went through a descriptor opened before the
    /// removal, and reached its other names, if it has any, which inotify does
    /// not say. They are compared as for any change of a file with other
    /// names: a full sync (once the writes pause). Returns whether the event
    /// was that.
    fn removed_name(
        &mut self,
        dir: Wd,
        name: &[u8],
        watch: u32,
        rel: &[u8],
        mask: EventMask,
        out: &mut Vec<Change>,
    ) -> bool {
        if mask.contains(EventMask::DELETE) {
            self.removed.removed(dir, name);
            return false;
        }
        if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO | EventMask::MOVED_FROM) {
            self.removed.named_again(dir, name);
            return false;
        }
        let written = EventMask::MODIFY | EventMask::ATTRIB | EventMask::CLOSE_WRITE;
        if !mask.intersects(written) || !self.removed.is_removed(dir, name) {
            return false;
        }
        // A close after writes through the removed name ends their settling,
        // which compares the other names then (the writes were linked); a
        // close alone wrote nothing after the removal. Without `IN_MODIFY`
        // among the events, the close is all there is to go by.
        if mask.contains(EventMask::CLOSE_WRITE) && self.events.triggers(EventMask::MODIFY) {
            return false;
        }
        if !self.events.triggers(mask) {
            return true;
        }
        tracing::debug!(
            "{}: written through after its removal; its other names, if any, are unknown: \
             full sync",
            String::from_utf8_lossy(rel)
        );
        if mask.contains(EventMask::MODIFY) {
            out.push(Change::Written {
                watch,
                rel: rel.to_vec(),
                linked: true,
            });
        } else {
            // The name is gone or another file's: nothing to look for by
            // name; the files changed since are.
            out.push(Change::Linked { watch, rel: None });
            let since = self.read_since();
            self.lost_write(watch, rel, "removed", since, out);
        }
        true
    }

    /// What an event that is not a move says, if `events` asks for it.
    fn report(
        &mut self,
        watch: u32,
        rel: Vec<u8>,
        mask: EventMask,
        implied_ok: bool,
        out: &mut Vec<Change>,
    ) {
        if !self.events.triggers(mask) {
            return;
        }
        let is_dir = mask.contains(EventMask::ISDIR);
        // Written and not closed: it goes out once quiet (see the engine). Its
        // other names, if it has any now, changed too, whatever becomes of
        // this one before it is quiet (a descriptor kept open writes on after
        // its name went).
        if !is_dir && mask.contains(EventMask::MODIFY) {
            let linked = self
                .roots
                .get(&watch)
                .is_some_and(|root| crate::watcher::has_other_links(&root.path, &rel));
            out.push(Change::Written { watch, rel, linked });
            return;
        }
        // Created and not yet closed: it goes out at its close (an ordinary
        // change) or once quiet, whole, instead of as it was at its creation.
        if !is_dir
            && mask.contains(EventMask::CREATE)
            && self.events.triggers(EventMask::CLOSE_WRITE)
            && let Some(root) = self.roots.get(&watch)
            && crate::watcher::is_new_file(&root.path, &rel)
        {
            out.push(Change::Written {
                watch,
                rel,
                linked: false,
            });
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
        // unknown, so the whole tree, and every tree on its filesystem, is
        // compared (size and mtime show them, and modes and owners); a write
        // also has them looked for (`name_search.rs`): a same-size rewrite
        // with its mtime set back shows in none of those. An attribute change
        // alone needs no search: the compare sends it without the content.
        // One `lstat` for both questions: linked now, or gone since.
        let meta = (!is_dir && mask.intersects(EventMask::CLOSE_WRITE | EventMask::ATTRIB))
            .then(|| self.roots.get(&watch))
            .flatten()
            .map(|root| crate::watcher::absolute(&root.path, &rel).symlink_metadata());
        let held_a_file = matches!(meta, Some(Ok(_)));
        match meta {
            Some(Ok(meta)) if crate::watcher::is_linked(&meta) => {
                self.note_links(watch);
                tracing::debug!(
                    "{}: changed and has other hard links; full sync",
                    String::from_utf8_lossy(&rel)
                );
                out.push(Change::Linked {
                    watch,
                    rel: mask.contains(EventMask::CLOSE_WRITE).then(|| rel.clone()),
                });
            }
            // Renamed before the write was read: the rename, read next, says
            // where it went (`carry_gone_writes`). Past the bound, the trees
            // are compared instead.
            Some(Err(_)) if mask.contains(EventMask::CLOSE_WRITE) => {
                if self.written_gone.len() < WRITTEN_GONE_MAX {
                    let since = self.read_since();
                    self.written_gone.push((watch, rel.clone(), since));
                } else {
                    out.push(Change::Linked { watch, rel: None });
                    let since = self.read_since();
                    self.lost_write(watch, &rel, "renamed or removed", since, out);
                }
            }
            _ => {}
        }
        if held_a_file && mask.contains(EventMask::CLOSE_WRITE) {
            let since = self.read_since();
            self.written_at(watch, &rel, since, out);
        }
        // A directory made: everything in it is new (see `Change::Made`).
        if is_dir && mask.contains(EventMask::CREATE) {
            out.push(Change::Made { watch, rel });
            return;
        }
        out.push(Change::Path { watch, rel });
    }
}
