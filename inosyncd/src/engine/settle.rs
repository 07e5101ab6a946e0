//! Files written and not closed (`IN_MODIFY` alone: `truncate(2)` by path, a log
//! or a database a program keeps open). Each write is an event; sending the file
//! on each would re-send a 200 MB file being written dozens of times. A written
//! file goes out once it is closed (its close is an ordinary change, which ends
//! its settling), or once it has been quiet for [`QUIET`]; one written without
//! pause goes out at least every [`LONGEST`]. The pair's delay counts from then.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// How long a written file must see no write before it counts as changed.
pub const QUIET: Duration = Duration::from_secs(1);

/// How long a file written without a pause waits at most before it goes out
/// (and then again, for as long as the writes go on).
pub const LONGEST: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Since {
    first: Instant,
    last: Instant,
    /// The file had other names at one of the writes (see `Change::Written`).
    linked: bool,
}

impl Since {
    fn due(&self) -> Instant {
        (self.last + QUIET).min(self.first + LONGEST)
    }
}

/// The files being written, per watch, since when and until when.
#[derive(Debug, Default)]
pub struct Settling {
    files: HashMap<(u32, Vec<u8>), Since>,
}

impl Settling {
    /// `rel` of `watch` was written now (`linked`: it had other names).
    pub fn written(&mut self, watch: u32, rel: Vec<u8>, linked: bool, now: Instant) {
        self.files
            .entry((watch, rel))
            .and_modify(|s| {
                s.last = now;
                s.linked |= linked;
            })
            .or_insert(Since {
                first: now,
                last: now,
                linked,
            });
    }

    /// `rel` changed in a way that makes it pending anyway (closed, deleted,
    /// renamed): it no longer waits here. Whether it had other names when it
    /// was written (they changed too, whatever this change says of the name).
    pub fn changed(&mut self, watch: u32, rel: &[u8]) -> bool {
        if self.files.is_empty() {
            return false;
        }
        self.files
            .remove(&(watch, rel.to_vec()))
            .is_some_and(|s| s.linked)
    }

    /// `from` of `watch` was renamed to `to`: the files settling at or below it
    /// are still being written (their descriptors follow the rename) and go out
    /// under their new names. Left at the old ones, they would list paths gone
    /// from the source while the target renamed its stale copies.
    pub fn moved(&mut self, watch: u32, from: &[u8], to: &[u8]) {
        if self.files.is_empty() {
            return;
        }
        let below = |rel: &[u8]| {
            rel == from
                || (rel.len() > from.len() && rel.starts_with(from) && rel[from.len()] == b'/')
        };
        let moving: Vec<(u32, Vec<u8>)> = self
            .files
            .keys()
            .filter(|(w, rel)| *w == watch && below(rel))
            .cloned()
            .collect();
        for key in moving {
            if let Some(since) = self.files.remove(&key) {
                let renamed = [to, &key.1[from.len()..]].concat();
                // Renamed over a file settling there: both were written, and
                // a link of the one replaced still counts (its other names
                // changed, and no close of it may come).
                self.files
                    .entry((watch, renamed))
                    .and_modify(|there| {
                        there.first = there.first.min(since.first);
                        there.last = there.last.max(since.last);
                        there.linked |= since.linked;
                    })
                    .or_insert(since);
            }
        }
    }

    /// Forgets a watch (removed, or its root went away: a full sync follows).
    pub fn forget(&mut self, watch: u32) {
        self.files.retain(|(w, _), _| *w != watch);
    }

    /// Takes out the files whose time has come, each with whether it had
    /// other names when it was written.
    pub fn take_due(&mut self, now: Instant) -> Vec<(u32, Vec<u8>, bool)> {
        if self.files.is_empty() {
            return Vec::new();
        }
        let due: Vec<(u32, Vec<u8>)> = self
            .files
            .iter()
            .filter(|(_, s)| s.due() <= now)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|key| {
                let since = self.files.remove(&key)?;
                Some((key.0, key.1, since.linked))
            })
            .collect()
    }

    /// When the next file comes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.files.values().map(Since::due).min()
    }

    /// Whether a file of `watch` (or of any, for `None`) is still settling: it
    /// is a change on its way, so `wait` must not report idle yet.
    pub fn busy(&self, watch: Option<u32>) -> bool {
        self.files
            .keys()
            .any(|(w, _)| watch.is_none_or(|s| s == *w))
    }

    /// The files of `watch` still settling.
    pub fn paths(&self, watch: u32) -> impl Iterator<Item = &[u8]> {
        self.files
            .keys()
            .filter(move |(w, _)| *w == watch)
            .map(|(_, rel)| rel.as_slice())
    }

    /// How many files of `watch` are settling.
    pub fn count(&self, watch: u32) -> usize {
        self.files.keys().filter(|(w, _)| *w == watch).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_file_goes_out_when_quiet_or_after_the_longest_wait() {
        let start = Instant::now();
        let mut s = Settling::default();
        s.written(0, b"log".to_vec(), false, start);
        assert_eq!(s.next_due(), Some(start + QUIET));
        // Written every half second: never quiet, out after LONGEST.
        let mut now = start;
        while now < start + LONGEST {
            assert!(s.take_due(now).is_empty(), "out early at {:?}", now - start);
            s.written(0, b"log".to_vec(), false, now);
            now += Duration::from_millis(500);
        }
        assert_eq!(s.take_due(now), vec![(0, b"log".to_vec(), false)]);
        assert!(!s.busy(None));
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_for_one_second_is_due_and_a_close_ends_the_wait() {
        let start = Instant::now();
        let mut s = Settling::default();
        s.written(0, b"a".to_vec(), false, start);
        s.written(1, b"b".to_vec(), false, start);
        assert!(
            s.take_due(start + QUIET - Duration::from_millis(1))
                .is_empty()
        );
        s.changed(1, b"b");
        assert!(s.busy(Some(0)) && !s.busy(Some(1)));
        assert_eq!(s.take_due(start + QUIET), vec![(0, b"a".to_vec(), false)]);
        assert_eq!(s.next_due(), None);
    }

    /// Written once while it had other names: they changed too, whether the
    /// file settles or its name changes first (the engine compares the watch
    /// whole then, as the name may be gone).
    #[tokio::test(start_paused = true)]
    async fn a_write_while_linked_is_remembered_until_the_file_leaves() {
        let start = Instant::now();
        let mut s = Settling::default();
        s.written(0, b"a".to_vec(), true, start);
        s.written(0, b"a".to_vec(), false, start);
        s.written(0, b"b".to_vec(), false, start);
        s.written(0, b"b".to_vec(), true, start);
        s.written(0, b"c".to_vec(), false, start);
        s.moved(0, b"b", b"moved");
        assert!(s.changed(0, b"moved"), "the link is forgotten on a rename");
        // `mv d a` over a linked `a`, both settling: the link still counts.
        s.written(0, b"d".to_vec(), false, start);
        s.moved(0, b"d", b"a");
        assert!(!s.changed(0, b"c"));
        assert_eq!(s.take_due(start + QUIET), vec![(0, b"a".to_vec(), true)]);
    }
}
