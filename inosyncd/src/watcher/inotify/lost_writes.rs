//! Writes whose file inotify cannot follow to its other names.
//!
//! inotify names a write by the name written through, and says nothing of
//! the file's other names (hard links). A write read while its name still
//! holds the file has those names looked for (`name_search.rs`), and one
//! whose name was renamed before the read is carried to the new name
//! (`events::carry_gone_writes`). Two kinds are left: a write whose name was
//! removed before the read (`echo > d/c; rm d/c`, `d/b` the file's other
//! name), and one whose name another file (or directory) took before the
//! read (`echo > d/c; mv f d/c`: the look-up saw `f`). Nothing then says
//! which file was written. A write sets the file's change time (`st_ctime`),
//! which no program can set back, under every name: so the trees on that
//! filesystem are searched for the files changed since the queue was last
//! found empty (less a margin), and each is listed, with `--ignore-times` (a
//! same-size rewrite with its mtime put back included). Searches are walks
//! of whole trees, so they are made only where a file with several names may
//! be: a tree where a search found none, and into which no file arrived
//! since (made, moved in, or in a directory that arrived) that was not seen
//! to have one name, is spared them (a temporary file written and removed
//! before the read is the common case: an editor's save, a database's
//! journal).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use super::InotifyWatcher;
use crate::watcher::Change;
use crate::watcher::link_walker::Ctime;

/// How much earlier than the queue was last found empty a write that is
/// read now may have been made: the close, which is the event, comes after
/// the last write (a close long after it is a limit: docs/RELIABILITY.md
/// "Known limits"), and the clock that stamps change times runs a tick
/// behind.
const MARGIN: Duration = Duration::from_secs(2);

/// How long after a name was looked up another file taking it, read in a
/// later read, may still have done so before the look-up: the kernel queues
/// a rename's event just after the rename is visible, and a preempted
/// renamer may queue it after the read that found the queue empty.
const TAKEN_GRACE: Duration = Duration::from_millis(50);

/// Closes after writes read at names that held a file then: the change time
/// they may date from, and when the name was looked up.
pub(super) type WrittenSeen = BTreeMap<(u32, Vec<u8>), (Ctime, Instant)>;

/// Whether a tree may hold files with several names, and since when that
/// is known.
#[derive(Debug, Clone, Copy)]
pub(super) struct Links {
    maybe: bool,
    /// When a file with several names was last seen, or content arrived
    /// that was not looked at.
    seen_at: Instant,
    /// When a file last arrived (made, or moved in or within the tree): a
    /// search walking meanwhile may have passed its place before it came.
    arrived_at: Instant,
}

impl Default for Links {
    /// Not known: as if some were.
    fn default() -> Links {
        let now = Instant::now();
        Links {
            maybe: true,
            seen_at: now,
            arrived_at: now,
        }
    }
}

impl InotifyWatcher {
    /// Tree `watch` may hold a file with several names (one was seen, or
    /// content arrived that was not looked at).
    pub(super) fn note_links(&mut self, watch: u32) {
        if let Some(root) = self.roots.get_mut(&watch) {
            root.links = Links::default();
        }
    }

    /// Whether tree `watch` may hold a file with several names.
    pub(super) fn may_have_links(&self, watch: u32) -> bool {
        self.roots.get(&watch).is_some_and(|root| root.links.maybe)
    }

    /// An entry arrived at `rel` (made, or renamed there; `from_outside`:
    /// from outside the tree): a file with several names may have come with
    /// it. Seen whatever events the configuration counts as changes.
    pub(super) fn arrived(&mut self, watch: u32, rel: &[u8], is_dir: bool, from_outside: bool) {
        let Some(root) = self.roots.get_mut(&watch) else {
            return;
        };
        root.links.arrived_at = Instant::now();
        if root.links.maybe {
            return;
        }
        // A directory from outside holds what was never looked at; a file
        // made or moved in is looked at once (`ln` made it, or it has names
        // elsewhere).
        let linked = if is_dir {
            from_outside
        } else {
            crate::watcher::has_other_links(&root.path, rel)
        };
        if linked {
            self.note_links(watch);
        }
    }

    /// A search asked for at `started` walked tree `watch` whole and saw
    /// (or did not see) a file with several names: unless one was seen, or
    /// a file arrived, since, that is what the tree holds.
    pub fn walked(&mut self, watch: u32, saw_linked: bool, started: Instant) {
        if let Some(root) = self.roots.get_mut(&watch)
            && root.links.seen_at < started
            && root.links.arrived_at < started
        {
            root.links.maybe = saw_linked;
        }
    }

    /// Whether writes read while their names were gone wait for the next
    /// read to say where they went (`wait` is not idle yet; the queue is
    /// read again soon even if nothing comes).
    pub fn holds_gone_writes(&self) -> bool {
        !self.written_gone.is_empty() || !self.written_gone_before.is_empty()
    }

    /// The change time from which a write read now may date.
    pub(super) fn read_since(&self) -> Ctime {
        let at = self.quiet_at.checked_sub(MARGIN).unwrap_or(self.quiet_at);
        match at.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
            Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
        }
    }

    /// A close after a write, read at `rel`, which held a file then: another
    /// file taking that name in this read (or just after) means the look-up
    /// may have seen that one (see [`InotifyWatcher::name_taken`]). Past the
    /// bound on the writes kept by name in one read, a take-over would go
    /// unseen: the files changed since are looked for at once instead (once
    /// per tree and read).
    pub(super) fn written_at(
        &mut self,
        watch: u32,
        rel: &[u8],
        since: Ctime,
        out: &mut Vec<Change>,
    ) {
        if !self.may_have_links(watch) {
            return;
        }
        if self.written_seen.len() < super::events::WRITTEN_GONE_MAX {
            self.written_seen
                .insert((watch, rel.to_vec()), (since, Instant::now()));
        } else if self.written_unkept.insert(watch) {
            self.lost_write(watch, rel, "not kept (too many in one read)", since, out);
        }
    }

    /// An entry took the name `rel` (made there, or renamed there; a
    /// directory takes the names below it too): a write read at such a name
    /// a moment before may have been looked up on it.
    pub(super) fn name_taken(&mut self, watch: u32, rel: &[u8], out: &mut Vec<Change>) {
        if self.written_seen.is_empty()
            && self.written_seen_before.is_empty()
            && !self.holds_gone_writes()
        {
            return;
        }
        let now = Instant::now();
        let mut since = None;
        for (seen, this_read) in [
            (&mut self.written_seen, true),
            (&mut self.written_seen_before, false),
        ] {
            let taken: Vec<(u32, Vec<u8>)> = seen
                .range((watch, rel.to_vec())..)
                .take_while(|((w, r), _)| *w == watch && r.starts_with(rel))
                .filter(|((_, r), _)| r.len() == rel.len() || r[rel.len()] == b'/')
                .map(|(key, _)| key.clone())
                .collect();
            for key in taken {
                if let Some((from, looked_up)) = seen.remove(&key)
                    && (this_read || now.duration_since(looked_up) < TAKEN_GRACE)
                {
                    since = Some(since.map_or(from, |s: Ctime| s.min(from)));
                }
            }
        }
        // A write whose name was gone when read (its directory renamed
        // since, say) and that a rename would carry on: the name was taken
        // after the write, so what the rename carries is another entry.
        let below = |w: u32, r: &[u8]| {
            w == watch && r.starts_with(rel) && (r.len() == rel.len() || r[rel.len()] == b'/')
        };
        for gone in [&mut self.written_gone, &mut self.written_gone_before] {
            gone.retain(|(w, r, from)| {
                if !below(*w, r) {
                    return true;
                }
                since = Some(since.map_or(*from, |s: Ctime| s.min(*from)));
                false
            });
        }
        if let Some(since) = since {
            self.lost_write(watch, rel, "taken by another entry", since, out);
        }
    }

    /// A write through `rel` to a file that cannot be followed to its names
    /// (its name `how` before the write was read): where files with several
    /// names may be, the files changed since `since` are looked for, in the
    /// trees on the filesystem of `rel`'s directory.
    pub(super) fn lost_write(
        &mut self,
        watch: u32,
        rel: &[u8],
        how: &str,
        since: Ctime,
        out: &mut Vec<Change>,
    ) {
        let Some(root) = self.roots.get(&watch).filter(|root| root.links.maybe) else {
            return;
        };
        tracing::debug!(
            "{}: written, and {how} before the write was read; the files changed since are \
             looked for",
            String::from_utf8_lossy(rel)
        );
        let dir = match rel.iter().rposition(|b| *b == b'/') {
            Some(slash) => &rel[..slash],
            None => &[][..],
        };
        let dev = crate::watcher::absolute(&root.path, dir)
            .symlink_metadata()
            .ok()
            .map(|meta| std::os::unix::fs::MetadataExt::dev(&meta));
        out.push(Change::ChangedSince { watch, since, dev });
    }

    /// The end of a read: writes whose names were gone when read and that no
    /// rename carried in this read or the one before are lost (their names
    /// were removed); those read this time wait for the next.
    pub(super) fn finish_writes(&mut self, out: &mut Vec<Change>) {
        let uncarried = std::mem::replace(
            &mut self.written_gone_before,
            std::mem::take(&mut self.written_gone),
        );
        for (watch, rel, since) in uncarried {
            self.lost_write(watch, &rel, "removed", since, out);
        }
        self.written_seen_before = std::mem::take(&mut self.written_seen);
        self.written_unkept.clear();
        self.quiet_at = SystemTime::now();
    }

    /// The daemon stops reading events: writes still waiting for a rename
    /// to place them are placed now as lost (their search then runs before
    /// the stop's last runs, instead of holding the stop up).
    pub fn flush_gone_writes(&mut self, out: &mut Vec<Change>) {
        self.finish_writes(out);
        self.finish_writes(out);
    }
}
