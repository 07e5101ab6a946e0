//! Writes whose file inotify cannot follow to its other names.
//!
//! inotify names a write by the name written through, and says nothing of
//! the file's other names (hard links). A write read while its name still
//! holds the file has those names looked for (`name_search.rs`), and one
//! whose name was renamed before the read is carried to the new name
//! (`events::carry_gone_writes`). Two kinds are left: a write whose name was
//! removed before the read (`echo > d/c; rm d/c`, `d/b` the file's other
//! name), and one whose name another file took before the read (`echo >
//! d/c; mv f d/c`: the look-up saw `f`). Nothing then says which file was
//! written. A write sets the file's change time (`st_ctime`), which no
//! program can set back, under every name: so the trees on that filesystem
//! are searched for the files changed since the queue was last found empty
//! (less a margin), and each is listed, with `--ignore-times` (a same-size
//! rewrite with its mtime put back included). Searches are walks of whole
//! trees, so they are made only where a file with several names may be: a
//! tree where a search found none, and no file with several names was seen
//! since (made, moved in, written or listed in a directory that arrived), is
//! spared them (a temporary file written and removed before the read is the
//! common case: an editor's save).

use std::time::{Duration, Instant, SystemTime};

use super::InotifyWatcher;
use crate::watcher::Change;
use crate::watcher::link_walker::Ctime;

/// How much earlier than the queue was last found empty a write that is
/// read now may have been made: its close, which is the event, comes after
/// it; and the clock that stamps change times runs a tick behind.
const MARGIN: Duration = Duration::from_secs(2);

/// Whether a tree may hold files with several names, and since when that
/// is known.
#[derive(Debug, Clone, Copy)]
pub(super) struct Links {
    maybe: bool,
    /// When a file with several names was last seen, or content arrived
    /// that was not looked at.
    seen_at: Instant,
}

impl Default for Links {
    /// Not known: as if some were.
    fn default() -> Links {
        Links {
            maybe: true,
            seen_at: Instant::now(),
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

    /// A search asked for at `started` walked tree `watch` whole and saw
    /// (or did not see) a file with several names: unless one was seen
    /// since, that is what the tree holds.
    pub fn walked(&mut self, watch: u32, saw_linked: bool, started: Instant) {
        if let Some(root) = self.roots.get_mut(&watch)
            && root.links.seen_at < started
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
    /// file taking that name in this read or the next means the look-up may
    /// have seen that one (see [`InotifyWatcher::name_taken`]).
    pub(super) fn written_at(&mut self, watch: u32, rel: &[u8]) {
        if self.may_have_links(watch) && self.written_seen.len() < super::events::WRITTEN_GONE_MAX {
            let since = self.read_since();
            self.written_seen.insert((watch, rel.to_vec()), since);
        }
    }

    /// A file took the name `rel` (created there, or renamed there): a write
    /// read at that name a moment before may have been looked up on it.
    pub(super) fn name_taken(&mut self, watch: u32, rel: &[u8], out: &mut Vec<Change>) {
        if self.written_seen.is_empty() && self.written_seen_before.is_empty() {
            return;
        }
        let key = (watch, rel.to_vec());
        let since = [&mut self.written_seen, &mut self.written_seen_before]
            .into_iter()
            .filter_map(|seen| seen.remove(&key))
            .min();
        if let Some(since) = since {
            self.lost_write(watch, rel, "taken by another file", since, out);
        }
    }

    /// A write through `rel` to a file that cannot be followed to its names
    /// (its name `how` before the write was read): where files with several
    /// names may be, the files changed since `since` are looked for.
    pub(super) fn lost_write(
        &mut self,
        watch: u32,
        rel: &[u8],
        how: &str,
        since: Ctime,
        out: &mut Vec<Change>,
    ) {
        if self.may_have_links(watch) {
            tracing::debug!(
                "{}: written, and {how} before the write was read; the files changed since \
                 are looked for",
                String::from_utf8_lossy(rel)
            );
            out.push(Change::ChangedSince { watch, since });
        }
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
        self.quiet_at = SystemTime::now();
    }
}
