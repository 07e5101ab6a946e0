//! What each fanotify event means for the trees: a changed path, a file still
//! being written, a directory to compare whole, a move the target can repeat,
//! or the root itself gone. Directory handles are placed by `places`.

use std::os::unix::ffi::OsStrExt;

use inotify::EventMask;

use super::FanWatcher;
use super::outside::NameLinks;
use super::places::Place;
use super::records::Event;
use crate::watcher::Change;
use crate::watcher::join;

/// What writes a file or changes its attributes.
const WRITTEN: u64 = libc::FAN_CLOSE_WRITE | libc::FAN_ATTRIB | libc::FAN_MODIFY;

impl FanWatcher {
    /// Names each filesystem in `event` by its device number instead of the
    /// fsid the group reported (unique within a group, not across groups).
    pub(super) fn rekey(&self, group: usize, event: &mut Event) {
        let fids = [
            event.entry.as_mut().map(|e| &mut e.dir),
            event.old.as_mut().map(|e| &mut e.dir),
            event.new.as_mut().map(|e| &mut e.dir),
            event.object.as_mut(),
        ];
        for fid in fids.into_iter().flatten() {
            if let Some(dev) = self.groups.dev_of(group, fid.fsid()) {
                *fid = fid.keyed(dev);
            }
        }
    }

    pub(super) fn handle_all(&mut self, events: &mut [Event], out: &mut Vec<Change>) {
        let mut at = 0;
        while at < events.len() {
            let event = std::mem::take(&mut events[at]);
            if let Some(next) = events.get_mut(at + 1)
                && is_exchange(&event, next)
            {
                // RENAME_EXCHANGE: two renames that happened at once; applied
                // one after the other they would collide, so both are
                // transferred.
                let next = std::mem::take(next);
                self.handle(event, true, out);
                self.handle(next, true, out);
                at += 2;
                continue;
            }
            self.handle(event, false, out);
            at += 1;
        }
    }

    pub(super) fn everything(&self, out: &mut Vec<Change>) {
        for watch in self.roots.keys() {
            out.push(Change::Everything { watch: *watch });
        }
    }

    pub(super) fn handle(&mut self, event: Event, exchanged: bool, out: &mut Vec<Change>) {
        let from = out.len();
        let names_changed = event.mask & (libc::FAN_CREATE | libc::FAN_DELETE | libc::FAN_RENAME);
        self.handle_one(event, exchanged, out);
        if names_changed == 0 {
            let roots = &self.roots;
            crate::watcher::drop_tmpfile_paths(out, from, |watch| {
                roots.get(&watch).map(|root| root.path())
            });
        }
    }

    fn handle_one(&mut self, event: Event, exchanged: bool, out: &mut Vec<Change>) {
        let mask = event.mask;
        if event.pid != self.own_pid {
            tracing::trace!("fanotify {mask:#x} {event:?}");
        }
        if mask & libc::FAN_Q_OVERFLOW != 0 {
            self.overflows += 1;
            tracing::warn!("fanotify queue overflow: full sync of every fanotify-watched tree");
            self.everything(out);
            return;
        }
        // The daemon's own writes (its log, its state file) change no tree; as
        // events they were logged in turn, and at trace level (or with the log's
        // directory deleted) each line made another one.
        if event.pid == self.own_pid {
            return;
        }
        let is_dir = mask & libc::FAN_ONDIR != 0;
        // The object left its place: whatever was unplaced inside it is covered
        // by the path this event names.
        if mask & (libc::FAN_DELETE | libc::FAN_RENAME) != 0
            && let Some(object) = &event.object
        {
            self.unplaced.remove(object);
            for (watch, root) in &self.roots {
                if root.fid == *object {
                    out.push(Change::RootGone { watch: *watch });
                }
            }
        }
        // A name came or went: its link count may have changed.
        if !is_dir
            && mask & (libc::FAN_CREATE | libc::FAN_DELETE | libc::FAN_RENAME) != 0
            && let Some(object) = &event.object
        {
            self.links.changed(object);
        }
        if mask & libc::FAN_RENAME != 0 {
            self.renamed(&event, is_dir, exchanged, out);
            return;
        }
        let Some(entry) = &event.entry else {
            // An attribute change of a file alone, with no name: its link count
            // changed (a hard link made or removed, anywhere).
            if !is_dir
                && mask & libc::FAN_ATTRIB != 0
                && let Some(object) = &event.object
            {
                self.link_count_changed(object);
            }
            return;
        };
        let entry_changed = mask & (libc::FAN_CREATE | libc::FAN_DELETE) != 0;
        let Some(place) = self.place_entry(entry, is_dir, entry_changed) else {
            // Written in a directory gone before it could be placed: the file
            // went with it, unless it has another name (`rm -rf` of a
            // directory holding one name of a file written just before).
            if !is_dir
                && mask & WRITTEN != 0
                && let Some(object) = &event.object
            {
                self.written_by_unplaced_name(object);
            }
            return;
        };
        // A new name of a file written by a name gone since (a link made, an
        // `O_TMPFILE` given a name): one of the names it is known by.
        if !is_dir
            && mask & libc::FAN_CREATE != 0
            && let Some(object) = &event.object
        {
            self.gone_names_link(object, entry, &place);
        }
        // A directory created is known from birth (its events never need a
        // lookup); one deleted is remembered where it was, for events about it
        // still queued (a file closed after its directory went).
        if is_dir
            && entry_changed
            && let Some(object) = &event.object
        {
            self.remember(object.clone(), place.clone());
        }
        let Place::Inside { watch, rel } = place else {
            // Written through a name outside every tree, or excluded from
            // one: the file may have another name in a tree (a hard link).
            if matches!(place, Place::Outside | Place::Excluded)
                && !is_dir
                && mask & (libc::FAN_CLOSE_WRITE | libc::FAN_MODIFY | libc::FAN_ATTRIB) != 0
                && let Some(object) = &event.object
            {
                self.written_outside(object, entry, mask, out);
            }
            return;
        };
        // The root's own events: only its attributes (a chmod, chown or
        // touch of the root, reported as its ".") are a change of it.
        let root_attributes = is_dir && mask & libc::FAN_ATTRIB != 0;
        if (rel.is_empty() && !root_attributes) || !self.events.triggers(inotify_mask(mask)) {
            return;
        }
        // Written and not closed (events of one file merge: a close in the same
        // event makes it an ordinary change): it goes out once quiet.
        let settled =
            libc::FAN_CLOSE_WRITE | libc::FAN_ATTRIB | libc::FAN_CREATE | libc::FAN_DELETE;
        if !is_dir && mask & libc::FAN_MODIFY != 0 && mask & settled == 0 {
            // Its other names changed too, whatever becomes of this one before
            // it is quiet (a descriptor kept open writes on after its name went).
            let linked = event
                .object
                .as_ref()
                .is_some_and(|object| self.has_other_names(object, watch, &rel));
            out.push(Change::Written { watch, rel, linked });
            return;
        }
        // A directory deleted: whatever holds its name by the time rsync runs
        // (`rm -rf d; mkdir d`) is made equal as a whole tree.
        if is_dir && mask & libc::FAN_DELETE != 0 {
            out.push(Change::Tree { watch, rel });
            return;
        }
        // A new name in a tree for a file that just gained one (a link made
        // from outside): remembered, for writes through the outside name.
        if !is_dir
            && mask & libc::FAN_CREATE != 0
            && event
                .object
                .as_ref()
                .is_some_and(|o| self.links.was_relinked(o))
            && let Some(inode) = self.other_links(watch, &rel)
        {
            self.links.learn(watch, rel.clone(), inode);
        }
        // Created and not yet closed: it goes out at its close (an ordinary
        // change) or once quiet, whole, instead of as it was at its creation.
        if !is_dir
            && mask & libc::FAN_CREATE != 0
            && mask & (libc::FAN_CLOSE_WRITE | libc::FAN_DELETE) == 0
            && self.events.triggers(EventMask::CLOSE_WRITE)
            && let Some(root) = self.roots.get(&watch)
            && crate::watcher::is_new_file(root.path(), &rel)
        {
            out.push(Change::Written {
                watch,
                rel,
                linked: false,
            });
            return;
        }
        // Its other names changed too, wherever they are (a write the kernel
        // merged with the name's deletion included).
        if !is_dir
            && mask & WRITTEN != 0
            && let Some(object) = &event.object
            && self.has_other_names(object, watch, &rel)
        {
            match self.all_other_names(watch, &rel) {
                // Each listed: sent with `--ignore-times`, so a same-size
                // rewrite with its mtime set back reaches every name.
                Some(names) => {
                    for (watch, rel) in names {
                        out.push(Change::Path { watch, rel });
                    }
                }
                // Not all known (a name in an excluded directory, outside
                // the trees, or not indexed yet): the trees compared whole,
                // and, at a close after a write (a write left open settles
                // first), its names in them looked for too (a
                // same-size rewrite with its mtime set back shows in no
                // compare; found by a black-box attack with a name in an
                // excluded directory).
                None => out.push(Change::Linked {
                    watch,
                    rel: (mask & libc::FAN_CLOSE_WRITE != 0).then(|| rel.clone()),
                }),
            }
        }
        // A directory made: everything in it is new (see `Change::Made`).
        if is_dir && mask & libc::FAN_CREATE != 0 {
            out.push(Change::Made { watch, rel });
            return;
        }
        out.push(Change::Path { watch, rel });
    }

    /// Whether file `object`, written (or its attributes changed) through
    /// `rel`, has other names now (which changed too). A name gone already is
    /// kept until its other names, if any, can be found (see `gone_names`).
    fn has_other_names(&mut self, object: &super::records::Fid, watch: u32, rel: &[u8]) -> bool {
        match self.name_links(watch, rel) {
            // Another file with several names took the name since (`mv t
            // name`, or swapped in): the one written is not there, and its
            // names are not the new one's (a black-box attack: the new
            // file's other names were sent, the written file's kept their
            // old bytes).
            NameLinks::Several(_) if !self.is_still_object(watch, rel, object) => {
                self.written_by_gone_name(object, watch, rel.to_vec());
                false
            }
            NameLinks::Several(inode) => {
                // Remembered, for writes through its names outside the trees.
                self.links.learn(watch, rel.to_vec(), inode);
                true
            }
            NameLinks::Missing => {
                self.written_by_gone_name(object, watch, rel.to_vec());
                false
            }
            // The name may hold another file by now (`mv other name` after the
            // write): where files of this filesystem have other names, it is
            // checked to still be the file written, else it is gone too.
            NameLinks::One => {
                if self.may_be_linked(object) && !self.is_still_object(watch, rel, object) {
                    self.written_by_gone_name(object, watch, rel.to_vec());
                }
                false
            }
        }
    }

    /// The other names of the file at `rel`, when the link index knows all of
    /// them (as many names, still that file, as it has links): a `cp -al`
    /// copy in the tree, or links made while the daemon runs.
    fn all_other_names(&self, watch: u32, rel: &[u8]) -> Option<Vec<(u32, Vec<u8>)>> {
        use std::os::unix::fs::MetadataExt;
        let root = self.roots.get(&watch)?;
        let meta = crate::watcher::absolute(root.path(), rel)
            .symlink_metadata()
            .ok()?;
        let inode = (meta.dev(), meta.ino());
        let mut known = 1u64;
        let mut others = Vec::new();
        for (w, r) in self.links.names_of(inode) {
            if (w, r.as_slice()) == (watch, rel) {
                continue;
            }
            if self
                .roots
                .get(&w)
                .is_some_and(|root| super::links::is_still(root.path(), &r, inode))
            {
                known += 1;
                others.push((w, r));
            }
        }
        (known >= meta.nlink()).then_some(others)
    }

    /// Whether `object` may have names in the trees besides one it was
    /// written through: it gained or lost a name since the trees were
    /// indexed, or the index has files with several names on its filesystem.
    fn may_be_linked(&self, object: &super::records::Fid) -> bool {
        let dev = object.fsid();
        let watches = self.watches_on(&[dev]);
        self.links.was_relinked(object) || self.links.may_have_names(dev, &watches)
    }

    /// Whether `rel` of `watch` is the file `object` (its handle compared).
    fn is_still_object(&self, watch: u32, rel: &[u8], object: &super::records::Fid) -> bool {
        let Some(root) = self.roots.get(&watch) else {
            return true;
        };
        match super::handles::fid_of(&crate::watcher::absolute(root.path(), rel), 0) {
            Ok(fid) => fid.handle_type() == object.handle_type() && fid.handle() == object.handle(),
            // Gone meanwhile: the look-up of the gone name decides.
            Err(_) => false,
        }
    }

    /// A rename: a move the target can repeat, or (when that could go wrong) the
    /// old path deleted and the new one transferred with everything below it.
    ///
    /// Paths found by looking a directory up are where it is now, not where it
    /// was when its event happened; a directory rename read after such a lookup
    /// in the same drain may already be part of them, and replaying it as a move
    /// would move those paths a second time. So it is transferred: what it holds
    /// now is listed, and nothing pending is re-rooted. (After the drain every
    /// rename that happened before the lookups has been read.)
    fn renamed(&mut self, event: &Event, is_dir: bool, exchanged: bool, out: &mut Vec<Change>) {
        let (Some(old), Some(new)) = (&event.old, &event.new) else {
            return;
        };
        let from = self.place_entry(old, is_dir, true);
        let to = self.place_entry(new, is_dir, true);
        // A name like an `O_TMPFILE`'s is listed before the move, so that a
        // write to it (not listed for that name) goes with it (see
        // `named_like_a_tmpfile`); what the rename left at its old name (see
        // `left_at_old_name`) after it: listed before, a new file there
        // (`mv app.log app.log.1`, then a new `app.log`) would have the
        // moved file compared by content.
        let mut left_behind = None;
        if !exchanged && let Some(Place::Inside { watch, rel }) = &from {
            if crate::watcher::named_like_a_tmpfile(rel) {
                out.push(Change::Path {
                    watch: *watch,
                    rel: rel.clone(),
                });
            } else if self
                .roots
                .get(watch)
                .is_some_and(|root| crate::watcher::left_at_old_name(root.path(), rel))
            {
                left_behind = Some((*watch, rel.clone()));
            }
        }
        // A directory above a watch root renamed: the tree's directories are
        // named below its new place, outside every tree, until it is back,
        // and the once-a-second look at the root may not see it gone (a
        // black-box attack: `mv P P2`, appends in `P2/S`, `mv P2 P` within a
        // second lost the appends, 17 of 20). The root went: the engine looks
        // at it at once, and syncs it whole by content once it is back.
        if is_dir && !matches!(from, Some(Place::Inside { .. })) {
            for watch in self.roots_below(old) {
                out.push(Change::RootGone { watch });
            }
        }
        // Back to a place it left earlier in this read: the kernel merges a
        // rename into one alike still queued from the same process (renamed
        // to `q`, back to `p` and to `q` again by one program reads as two
        // renames), so the events no longer say where it is. It is taken as
        // a swap is: both places compared whole, each name checked, and a
        // directory looked up (a fuzzer: a directory swapped three times in
        // one read was remembered at the other's name, and a file moved out
        // of it later stayed on the mirror). Renames outside every tree are
        // not followed: wherever such an entry is, it is outside.
        let in_a_tree =
            |place: &Option<Place>| matches!(place, Some(Place::Inside { .. } | Place::Excluded));
        let returned = (in_a_tree(&from) || in_a_tree(&to))
            && event
                .object
                .as_ref()
                .is_some_and(|object| self.renames.returns(object, old, new));
        let swapped = exchanged || returned;
        let transfer = swapped || (is_dir && self.looked_up);
        if !swapped {
            self.gone_names_follow(event.object.as_ref(), is_dir, (old, &from), (new, &to));
        }
        if is_dir {
            // Every remembered path below it changed.
            self.generation += 1;
            if let Some(object) = &event.object {
                match &to {
                    _ if returned => self.forget(object),
                    Some(to) => self.remember(object.clone(), to.clone()),
                    None => {}
                }
            }
        }
        // Where it may be instead: the place it left (its rename away again
        // merged into an earlier one).
        if returned && let Some(Place::Inside { watch, rel }) = &from {
            self.learn_arrived(*watch, rel, is_dir, event.object.as_ref());
        }
        // A name that arrives from where the index never looked (outside the
        // trees, an excluded directory, a swap: each side of one has its own
        // event): a write through a name left there must reach it too (see
        // `learn_arrived`).
        if let Some(Place::Inside { watch, rel }) = &to
            && (swapped || !matches!(from, Some(Place::Inside { .. })))
        {
            self.learn_arrived(*watch, rel, is_dir, event.object.as_ref());
        }
        // Names of files with other links follow (exchanged ones: a swap is not
        // a rename of one place to the other; the index checks each name).
        if !swapped && let Some(Place::Inside { watch, rel }) = &from {
            let into = match &to {
                Some(Place::Inside { watch, rel }) => Some((*watch, rel.as_slice())),
                _ => None,
            };
            self.links.reroot(*watch, rel, into);
            // A directory renamed while its tree is walked: the walk (a
            // part's, of a directory swapped in, say) may come after it and
            // find nothing at the old name, and the index had nothing there
            // to move yet, so its new place is walked too (a fuzzer:
            // `RENAME_EXCHANGE` of `d0` and `d3`, then `mv d0 d5`, and a
            // write through an outside name missed `d5`). So is one placed
            // by looking a directory up in this read: where it is now, not
            // where it was, so the names moved may not be its own (a fuzzer:
            // `mv p/c q/c2; mv p q/c2/d/p2` read together moved `p/c/d/f`
            // below `p2`, and `q/c2/d/f` missed the write).
            // And so is one moved between trees, or within one whose
            // excludes depend on the place: the names the index moved are
            // those the old place's excludes let it see (a review: a log
            // excluded by one tree and moved into another that keeps it).
            // A look-up matters only where the index knows names to move
            // wrongly: on a filesystem with files of several names (a
            // review: every rename after another in one read is placed by
            // a look-up, and walked for nothing otherwise).
            let known_here = event
                .object
                .as_ref()
                .is_some_and(|object| self.links.has_names_on(object.fsid()));
            if is_dir
                && let Some((into, to)) = into
                && ((self.looked_up && known_here)
                    || into != *watch
                    || self
                        .roots
                        .get(watch)
                        .is_some_and(|root| root.excludes.may_differ_below(rel, to))
                    || self.links.walking_tree(*watch)
                    || self.links.walking_tree(into))
            {
                let to = to.to_vec();
                self.index_part(into, &to);
            }
        }
        // A file with other names renamed within the trees is learnt at its
        // new name too: its old one may be where the index has not looked
        // yet (a directory swapped in, its walk still running; a fuzzer:
        // `RENAME_EXCHANGE` of two directories, a linked file then renamed
        // out of one, and a write through an excluded name missed it).
        if !is_dir
            && !swapped
            && let Some(Place::Inside { watch, rel }) = &to
            && let Some(inode) = self.other_links(*watch, rel)
        {
            self.links.learn(*watch, rel.clone(), inode);
        }
        match (from, to) {
            (
                Some(Place::Inside { watch, rel: from }),
                Some(Place::Inside {
                    watch: into,
                    rel: to,
                }),
            ) if watch == into && !from.is_empty() && !to.is_empty() && !transfer => {
                let implied = if is_dir {
                    self.list_tree(watch, &to)
                } else {
                    Vec::new()
                };
                out.push(Change::Move {
                    watch,
                    from,
                    to,
                    implied,
                });
            }
            (from, to) => {
                // A directory that left, or arrived from elsewhere, or was
                // swapped: whatever holds each name when rsync runs is made
                // equal as a whole tree. One renamed within a tree but read
                // too late to be placed may still be renamed on the target
                // first, so the comparison finds its files there.
                if let (
                    Some(Place::Inside { watch, rel: old }),
                    Some(Place::Inside {
                        watch: into,
                        rel: new,
                    }),
                ) = (&from, &to)
                    && is_dir
                    && !swapped
                    && watch == into
                    && !old.is_empty()
                    && !new.is_empty()
                {
                    out.push(Change::Renamed {
                        watch: *watch,
                        from: old.clone(),
                        to: new.clone(),
                    });
                }
                let change = |watch, rel| {
                    if is_dir {
                        Change::Tree { watch, rel }
                    } else {
                        Change::Path { watch, rel }
                    }
                };
                if let Some(Place::Inside { watch, rel }) = from
                    && !rel.is_empty()
                    && self.events.triggers(EventMask::MOVED_FROM)
                {
                    out.push(change(watch, rel));
                }
                if let Some(Place::Inside { watch, rel }) = to
                    && !rel.is_empty()
                    && self.events.triggers(EventMask::MOVED_TO)
                {
                    out.push(change(watch, rel));
                }
            }
        }
        if let Some((watch, rel)) = left_behind {
            out.push(Change::Path { watch, rel });
        }
    }

    /// Handles still unplaced when the queue is drained: a full sync of every
    /// tree on their filesystem.
    pub(super) fn escalate_unplaced(&mut self, out: &mut Vec<Change>) {
        if self.unplaced.is_empty() {
            return;
        }
        let mut filesystems: Vec<u64> = self.unplaced.drain().map(|f| f.fsid()).collect();
        filesystems.sort_unstable();
        filesystems.dedup();
        let watches = self.watches_on(&filesystems);
        if watches.is_empty() {
            return;
        }
        if super::once_a_minute(&mut self.escalation_logged) {
            tracing::warn!(
                "events in a directory that no longer exists and was never seen could not \
                 be placed: full sync of watch(es) {watches:?} (logged once a minute)"
            );
        }
        for watch in watches {
            out.push(Change::Everything { watch });
        }
    }

    /// Every entry below `rel` (not following symlinks, excluded ones left out),
    /// for a directory that arrived whole.
    fn list_tree(&self, watch: u32, rel: &[u8]) -> Vec<Vec<u8>> {
        let Some(root) = self.roots.get(&watch) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let mut stack = vec![rel.to_vec()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(crate::watcher::absolute(root.path(), &dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let child = join(&dir, entry.file_name().as_bytes());
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if root.excludes.matches(&child, is_dir) {
                    continue;
                }
                if is_dir {
                    stack.push(child.clone());
                }
                found.push(child);
            }
        }
        found
    }
}

/// The last of `events` when it is a rename that [`FanWatcher::handle_all`]
/// would handle alone (pairing exchanges from the start, as it does): the
/// first half of an exchange, perhaps, whose second half is read next.
pub(super) fn take_unpaired_rename(events: &mut Vec<Event>) -> Option<Event> {
    let mut at = 0;
    let mut last_alone = false;
    while at < events.len() {
        if at + 1 < events.len() && is_exchange(&events[at], &events[at + 1]) {
            at += 2;
            last_alone = false;
        } else {
            at += 1;
            last_alone = true;
        }
    }
    let last = events.last()?;
    if last_alone && last.mask & libc::FAN_RENAME != 0 {
        events.pop()
    } else {
        None
    }
}

/// Whether `second` is the other half of an exchange of `first`'s two entries.
pub(super) fn is_exchange(first: &Event, second: &Event) -> bool {
    first.mask & libc::FAN_RENAME != 0
        && second.mask & libc::FAN_RENAME != 0
        && first.old.is_some()
        && first.old == second.new
        && first.new == second.old
}

/// fanotify's content and entry bits are inotify's, so the configured inotify
/// event names decide which fanotify events count.
fn inotify_mask(mask: u64) -> EventMask {
    let mut bits = (mask & 0xfff) as u32;
    if mask & libc::FAN_ONDIR != 0 {
        bits |= libc::IN_ISDIR;
    }
    EventMask::from_bits_retain(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::fanotify::records::{DirEntry, Fid};

    /// A rename of `from` to `to` (entries of one directory).
    fn rename(from: &str, to: &str) -> Event {
        let entry = |name: &str| DirEntry {
            dir: Fid::new(1, 1, b"dir"),
            name: name.as_bytes().to_vec(),
        };
        Event {
            mask: libc::FAN_RENAME,
            old: Some(entry(from)),
            new: Some(entry(to)),
            ..Event::default()
        }
    }

    /// The rename that ends a buffer is held for the next one when
    /// `handle_all` would take it alone, and only then: the same two
    /// directories swapped twice (`x<->y`, `x<->y`) and the first half of a
    /// third at the end is held, though it pairs with the event before it
    /// (a review).
    #[test]
    fn a_rename_that_ends_a_buffer_is_held_when_it_would_be_handled_alone() {
        let mut alone = vec![rename("a", "b")];
        assert!(take_unpaired_rename(&mut alone).is_some());
        let mut pair = vec![rename("x", "y"), rename("y", "x")];
        assert!(take_unpaired_rename(&mut pair).is_none());
        assert_eq!(pair.len(), 2);
        let mut third = vec![rename("x", "y"), rename("y", "x"), rename("x", "y")];
        let held = take_unpaired_rename(&mut third);
        assert_eq!(held, Some(rename("x", "y")));
        assert_eq!(third.len(), 2);
        let mut not_a_rename = vec![rename("x", "y"), Event::default()];
        assert!(take_unpaired_rename(&mut not_a_rename).is_none());
    }
}
