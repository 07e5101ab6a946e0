//! Paths rsync could not sync, held apart from their pair's batches. One bad
//! path (unwritable on the target, too long, a race rsync lost) must not hold back
//! every other change: when a run is partly synced (the classifier found paths
//! of the batch named in rsync's errors), those paths are held and retried on
//! their own schedule (1 s, 2 s, 4 s … up to five minutes), and the rest of the
//! batch counts as synced.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::backoff;

/// Why a path is held and when it is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// What rsync said.
    pub reason: String,
    /// Consecutive runs that failed on it.
    pub failures: u32,
    /// When it goes into a batch again.
    pub retry_at: Instant,
    /// Left out of every other run (`--exclude`): rsync can never send it or
    /// anything below it (longer than a path can be), and with it in a run,
    /// rsync deletes nothing.
    pub excluded: bool,
    /// When the change it carries happened (its batch's oldest change): the
    /// replication lag counts from here, whatever retries followed.
    pub since: Instant,
}

/// The held paths of one pair.
#[derive(Debug, Default)]
pub struct HeldPaths(BTreeMap<Vec<u8>, Held>);

impl HeldPaths {
    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many paths are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The held paths, by path.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Held)> {
        self.0.iter()
    }

    /// When the next held path is due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.0.values().map(|h| h.retry_at).min()
    }

    /// The oldest change still held (for the replication lag).
    pub fn oldest(&self) -> Option<Instant> {
        self.0.values().map(|h| h.since).min()
    }

    /// Takes out the paths due by `now`, with their failure counts, for a
    /// batch; and the oldest change among them.
    pub fn take_due(&mut self, now: Instant) -> (BTreeMap<Vec<u8>, u32>, Option<Instant>) {
        let due: Vec<Vec<u8>> = self
            .0
            .iter()
            .filter(|(_, h)| h.retry_at <= now)
            .map(|(p, _)| p.clone())
            .collect();
        let mut oldest: Option<Instant> = None;
        let taken = due
            .into_iter()
            .filter_map(|p| self.0.remove(&p).map(|h| (p, h)))
            .map(|(p, h)| {
                oldest = Some(oldest.map_or(h.since, |o| o.min(h.since)));
                (p, h.failures)
            })
            .collect();
        (taken, oldest)
    }

    /// Takes out everything a full sync covers: every path but the excluded
    /// ones (which it cannot send, and which are left out of it).
    pub fn take_all(&mut self) -> (BTreeMap<Vec<u8>, u32>, Option<Instant>) {
        let (excluded, taken): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|(_, h)| h.excluded);
        self.0 = excluded;
        let oldest = taken.values().map(|h| h.since).min();
        (
            taken.into_iter().map(|(p, h)| (p, h.failures)).collect(),
            oldest,
        )
    }

    /// The paths to leave out of every run but their own retries.
    pub fn excluded(&self) -> Vec<Vec<u8>> {
        self.0
            .iter()
            .filter(|(_, h)| h.excluded)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Paths below `from` follow a rename to `to`.
    pub fn reroot(&mut self, from: &[u8], to: &[u8]) {
        let below: Vec<Vec<u8>> = self
            .0
            .keys()
            .filter(|p| p.len() > from.len() && p.starts_with(from) && p[from.len()] == b'/')
            .cloned()
            .collect();
        for path in below {
            if let Some(held) = self.0.remove(&path) {
                self.0.insert([to, &path[from.len()..]].concat(), held);
            }
        }
    }

    /// Holds `path` after its `failures`-th failure (`excluded`: see [`Held`];
    /// `since`: when its change happened).
    pub fn hold(
        &mut self,
        path: Vec<u8>,
        reason: &str,
        failures: u32,
        now: Instant,
        excluded: bool,
        since: Instant,
    ) {
        let retry_at = now + backoff(failures, Duration::from_secs(1));
        self.0.insert(
            path,
            Held {
                reason: reason.to_string(),
                failures,
                retry_at,
                excluded,
                since,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn held_paths_come_due_with_backoff() {
        let now = Instant::now();
        let mut held = HeldPaths::default();
        held.hold(b"x".to_vec(), "denied", 1, now, false, now);
        held.hold(b"y".to_vec(), "denied", 3, now, false, now);
        assert!(held.take_due(now).0.is_empty());
        let first = held.next_retry().unwrap();
        assert!(first >= now + Duration::from_secs(1));
        let (due, oldest) = held.take_due(now + Duration::from_millis(1300));
        assert_eq!(due.into_iter().collect::<Vec<_>>(), [(b"x".to_vec(), 1)]);
        assert_eq!(oldest, Some(now));
        assert_eq!(held.len(), 1);
        assert!(held.next_retry().unwrap() >= now + Duration::from_secs(4));
    }
}
