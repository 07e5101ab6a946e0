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

/// The held paths of one pair: those waiting for their retry, and those
/// whose retry runs now (still shown and counted until it succeeds: they are
/// not on the target yet).
#[derive(Debug, Default)]
pub struct HeldPaths {
    waiting: BTreeMap<Vec<u8>, Held>,
    retrying: BTreeMap<Vec<u8>, Held>,
}

impl HeldPaths {
    /// Whether nothing waits for a retry.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// How many paths wait for a retry.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// The paths waiting for a retry, by path.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Held)> + Clone {
        self.waiting.iter()
    }

    /// Every held path, waiting or retried now (`true`), by path: what
    /// `status` lists.
    pub fn shown(&self) -> impl Iterator<Item = (&Vec<u8>, &Held, bool)> {
        let waiting = self.waiting.iter().map(|(p, h)| (p, h, false));
        let retrying = self.retrying.iter().map(|(p, h)| (p, h, true));
        let mut all: Vec<_> = waiting.chain(retrying).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.into_iter()
    }

    /// How many paths are held, waiting or retried now: what the
    /// `inosync_held_paths` gauge says.
    pub fn shown_count(&self) -> usize {
        self.waiting.len() + self.retrying.len()
    }

    /// The running batch ended: the paths it retried that are still here
    /// were synced (those it did not sync are held again by then:
    /// [`HeldPaths::hold`], [`HeldPaths::run_failed`]).
    pub fn run_ended(&mut self) {
        self.retrying.clear();
    }

    /// The running batch failed as a whole or was stopped: the paths it
    /// retried wait again as they were (reason, failures, since), due at
    /// `retry_at`; nothing was learnt about them.
    pub fn run_failed(&mut self, retry_at: Instant) {
        for (path, held) in std::mem::take(&mut self.retrying) {
            self.waiting
                .entry(path)
                .or_insert(Held { retry_at, ..held });
        }
    }

    /// The target failed as a whole (a run failed): no held path is tried
    /// before `at`, the pair's retry. A full sync takes none of them, so one
    /// due while it failed made the pair due at once, and the full sync ran
    /// again in a loop (a review).
    pub fn postpone(&mut self, at: Instant) {
        for held in self.waiting.values_mut() {
            held.retry_at = held.retry_at.max(at);
        }
    }

    /// Every held path is due at `now`: an administrator asked for a sync
    /// (`inosyncctl sync`), having fixed the target, most likely.
    pub fn due_now(&mut self, now: Instant) {
        for held in self.waiting.values_mut() {
            held.retry_at = held.retry_at.min(now);
        }
    }

    /// When the next held path is due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.waiting.values().map(|h| h.retry_at).min()
    }

    /// The oldest change still held (for the replication lag).
    pub fn oldest(&self) -> Option<Instant> {
        let all = self.waiting.values().chain(self.retrying.values());
        all.map(|h| h.since).min()
    }

    /// Takes the paths due by `now` into the batch starting now, with their
    /// failure counts; and the oldest change among them.
    pub fn take_due(&mut self, now: Instant) -> (BTreeMap<Vec<u8>, u32>, Option<Instant>) {
        self.take_where(|h| h.retry_at <= now)
    }

    /// How many runs failed on `path`, while it waits for its retry.
    pub fn failures(&self, path: &[u8]) -> Option<u32> {
        self.waiting.get(path).map(|h| h.failures)
    }

    fn take_where(
        &mut self,
        taken: impl Fn(&Held) -> bool,
    ) -> (BTreeMap<Vec<u8>, u32>, Option<Instant>) {
        let (now, later): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, h)| taken(h));
        self.waiting = later;
        let oldest = now.values().map(|h| h.since).min();
        let failures = now.iter().map(|(p, h)| (p.clone(), h.failures)).collect();
        self.retrying = now;
        (failures, oldest)
    }

    /// The paths to leave out of every run but their own retries.
    pub fn excluded(&self) -> Vec<Vec<u8>> {
        self.waiting
            .iter()
            .filter(|(_, h)| h.excluded)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Paths below `from` follow a rename to `to`.
    pub fn reroot(&mut self, from: &[u8], to: &[u8]) {
        for map in [&mut self.waiting, &mut self.retrying] {
            let below: Vec<Vec<u8>> = map
                .keys()
                .filter(|p| p.len() > from.len() && p.starts_with(from) && p[from.len()] == b'/')
                .cloned()
                .collect();
            for path in below {
                if let Some(held) = map.remove(&path) {
                    map.insert([to, &path[from.len()..]].concat(), held);
                }
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
        self.retrying.remove(&path);
        // Held already (a full sync failed on it again): its change is as
        // old as it was.
        let since = self
            .waiting
            .get(&path)
            .map_or(since, |h| h.since.min(since));
        self.waiting.insert(
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
