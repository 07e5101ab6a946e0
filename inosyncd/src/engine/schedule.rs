//! What is due and when: which pairs may start a batch, which batches are due,
//! the next wake-up, the periodic and degraded full syncs, hurrying everything on
//! the way out, and when the engine counts as idle.

use super::batch::FullReason;
use std::time::Duration;

use tokio::time::Instant;

use super::Engine;
use super::lanes::{Lane, Sizes};
use super::pair::{Cpus, Pair};
use super::watches::Watch;

/// Which pending batches are due by `now`, oldest first, and the next moment
/// one falls due after it: from the pairs, their delays and how busy the CPUs
/// are alone, so the rule is one function (a batch already due waits for a
/// slot; the end of a run wakes the engine for it, and is also when the CPUs
/// become free).
pub(super) fn due<'a, K: Ord + Copy>(
    pairs: impl Iterator<Item = (K, &'a Pair, Duration)>,
    now: Instant,
    cpus: Cpus,
) -> (Vec<(Instant, K)>, Option<Instant>) {
    let mut due_now = Vec::new();
    let mut next = None;
    for (key, pair, delay) in pairs {
        match pair.due_at(delay, cpus) {
            Some(at) if at <= now => due_now.push((at, key)),
            Some(at) => next = Some(next.map_or(at, |n: Instant| n.min(at))),
            None => {}
        }
    }
    due_now.sort();
    (due_now, next)
}

impl Engine {
    /// (Re)starts the periodic full sync and verify from the config's intervals.
    pub(super) fn reset_periodic_full_sync(&mut self) {
        self.next_verify = (self.config.verify_interval > 0.0)
            .then(|| Instant::now() + Duration::from_secs_f64(self.config.verify_interval));
        self.periodic_full_sync = (self.config.full_sync_interval > 0.0).then(|| {
            let every = Duration::from_secs_f64(self.config.full_sync_interval);
            (every, Instant::now() + every)
        });
    }

    /// On the way out: makes every pending batch due now, except those of
    /// targets in retry backoff (a target that is down would hold up the stop
    /// for the whole grace period; their changes go to the next start's full
    /// sync). Returns how many paths are hurried and how many are left.
    pub(super) fn hurry_all(&mut self) -> (u64, u64) {
        self.settle(true);
        let now = Instant::now();
        let (mut hurried, mut left) = (0, 0);
        for watch in self.watches.values_mut().filter(|w| !w.holds_syncs()) {
            for pair in &mut watch.pairs {
                if pair.in_backoff() {
                    left += pair.pending_count();
                } else {
                    hurried += pair.pending_count();
                    pair.hurry(now);
                }
            }
        }
        (hurried, left)
    }

    /// Nothing pending or running, paused watches, missing sources and targets
    /// in retry backoff aside (their changes are held on purpose, or cannot go
    /// now, and go to the next start's full sync).
    pub(super) fn is_flushed(&self) -> bool {
        self.running == 0
            && !self.settling.busy(None)
            && !self.watcher.placing()
            && self
                .watches
                .values()
                .filter(|w| !w.holds_syncs() && w.source_problem().is_none())
                .flat_map(|w| &w.pairs)
                .all(|p| p.in_backoff() || (!p.has_pending() && !p.is_running()))
    }

    /// Every `full_sync_interval`, a full sync of every pair: a safety net for
    /// anything inotify could not tell us (e.g. changes made by another host on a
    /// shared file system).
    pub(super) fn schedule_periodic_full_sync(&mut self) {
        self.schedule_degraded_full_sync();
        let Some((every, due)) = self.periodic_full_sync else {
            return;
        };
        let now = Instant::now();
        if now < due {
            return;
        }
        tracing::info!("periodic full sync of every watch (full_sync_interval)");
        for watch in self.watches.values_mut() {
            for pair in &mut watch.pairs {
                pair.record_full(now, true, FullReason::Interval);
            }
        }
        self.periodic_full_sync = Some((every, now + every));
    }

    /// How often a degraded watch gets a full sync: `full_sync_interval`, or every
    /// minute when that is off.
    pub(super) fn degraded_period(&self) -> Duration {
        if self.config.full_sync_interval > 0.0 {
            Duration::from_secs_f64(self.config.full_sync_interval)
        } else {
            Duration::from_secs(60)
        }
    }

    pub(super) fn degraded_ids(&self) -> Vec<u32> {
        self.watches
            .keys()
            .copied()
            .filter(|id| self.watcher.degraded(*id).is_some())
            .collect()
    }

    /// Watches that could not get a watch on every directory are kept right by full
    /// syncs; before each, the missing watches are tried again.
    pub(super) fn schedule_degraded_full_sync(&mut self) {
        let now = Instant::now();
        if now < self.degraded_full_sync {
            return;
        }
        self.degraded_full_sync = now + self.degraded_period();
        for id in self.degraded_ids() {
            self.watcher.retry_degraded(id);
            if let Some(watch) = self.watches.get_mut(&id) {
                tracing::info!(
                    "{}: full sync (not every directory is watched)",
                    watch.spec.path.display()
                );
                for pair in &mut watch.pairs {
                    pair.record_full(now, true, FullReason::Degraded);
                }
            }
        }
    }

    /// `wait` in a watch that is not watched in every directory (the watch
    /// limit): a change there may have been seen by nobody, so idle would not
    /// mean equal. Such watches in `scope` get a full sync now, and `wait`
    /// answers once it is done (found by a black-box attack: `wait` said idle
    /// while files written in unwatched directories waited for the next
    /// periodic full sync, up to a minute).
    pub(super) fn full_sync_degraded_for_wait(&mut self, scope: Option<u32>) {
        let now = Instant::now();
        for id in self.degraded_ids() {
            if scope.is_some_and(|s| s != id) {
                continue;
            }
            // As before a periodic one: a directory watched from now on
            // reports what is written in it after this full sync (before, it
            // stayed unwatched until the next periodic one, and a same-size
            // rewrite with its mtime kept made meanwhile never arrived; found
            // by a black-box attack).
            self.watcher.retry_unreadable(id);
            if let Some(watch) = self.watches.get_mut(&id) {
                tracing::info!(
                    "{}: full sync for `wait` (not every directory is watched)",
                    watch.spec.path.display()
                );
                for pair in &mut watch.pairs {
                    pair.record_full(now, true, FullReason::Degraded);
                }
            }
        }
    }

    /// The pairs that may start a batch now or later, with their watch's delay.
    /// The pairs that may start a batch, each with its place and its watch's
    /// delay, as [`due`] takes them.
    fn scheduled_pairs(&self) -> impl Iterator<Item = ((u32, usize), &Pair, Duration)> {
        self.schedulable()
            .into_iter()
            .map(|(id, i, delay)| ((id, i), &self.watches[&id].pairs[i], delay))
    }

    pub(super) fn schedulable(&self) -> Vec<(u32, usize, Duration)> {
        let mut out = Vec::new();
        for (id, watch) in &self.watches {
            if watch.holds_syncs() || watch.missing.is_some() {
                continue;
            }
            let delay = Duration::from_secs_f64(self.watch_delay(watch).0);
            for i in 0..watch.pairs.len() {
                out.push((*id, i, delay));
            }
        }
        out
    }

    /// Starts every batch whose time has come, oldest first, while its lane has
    /// room: a large batch waiting for a slot holds back no small one behind it.
    pub(super) fn start_due_batches(&mut self) {
        self.release_stalled_large_runs();
        let (due_now, _) = due(self.scheduled_pairs(), Instant::now(), self.cpus());
        if due_now.is_empty() || !self.has_room(Lane::Small) {
            return;
        }
        let mut sizes = Sizes::default();
        // The batches still to start in this pass: a split leaves them their
        // share of the slots (`split_share`).
        let mut due = due_now.len();
        for (_, (id, i)) in due_now {
            if !self.has_room(Lane::Small) {
                break;
            }
            // Chosen just before it starts: an earlier start in this pass may
            // have made it a full sync (a replaced root found by its source
            // check), which is large.
            let weight = self.weigh(id, i, &mut sizes);
            if self.has_room(weight.lane) {
                let share = self.split_share(weight.lane, due);
                self.start(id, i, weight, share);
            }
            due -= 1;
        }
    }

    /// The next moment something is due: a batch, a deadline, a periodic sync, the
    /// next look at the watch roots. A batch already due waits for a slot: the
    /// end of a run wakes the engine for it.
    pub(super) fn next_wakeup(&self) -> Instant {
        let mut wake = self.next_source_check;
        if let (_, Some(next)) = due(self.scheduled_pairs(), Instant::now(), self.cpus()) {
            wake = wake.min(next);
        }
        for waiter in &self.waiters {
            wake = wake.min(waiter.deadline);
        }
        // A walk ends without an event: a `wait` looks again soon.
        if !self.waiters.is_empty() && self.watcher.indexing() {
            wake = wake.min(Instant::now() + Duration::from_millis(10));
        }
        if let Some(check) = self.large_runs.next_check() {
            wake = wake.min(check);
        }
        for watch in self.watches.values() {
            for (deadline, _) in watch.removing.iter().flatten() {
                wake = wake.min(*deadline);
            }
        }
        if let Some((_, due)) = self.periodic_full_sync {
            wake = wake.min(due);
        }
        if let Some(due) = self.next_verify {
            wake = wake.min(due);
        }
        if let Some(due) = self.settling.next_due() {
            wake = wake.min(due);
        }
        if !self.degraded_ids().is_empty() {
            wake = wake.min(self.degraded_full_sync);
        }
        if let Some(due) = self.watcher.next_background() {
            wake = wake.min(Instant::from_std(due));
        }
        wake
    }

    /// Nothing pending or running in one watch, or anywhere: what `wait` waits for.
    pub(super) fn is_idle(&self, scope: Option<u32>) -> bool {
        self.is_idle_where(scope, |_| true)
    }

    /// The one notion of idle: no rsync running (for the whole daemon) and no
    /// pending or running batch in the watches in scope that `counts`.
    fn is_idle_where(&self, scope: Option<u32>, counts: impl Fn(&Watch) -> bool) -> bool {
        (scope.is_some() || self.running == 0)
            && !self.settling.busy(scope)
            && !self.watcher.placing()
            && !self.watcher.indexing()
            && self
                .watches
                .iter()
                .filter(|(id, w)| scope.is_none_or(|s| s == **id) && counts(w))
                .all(|(_, w)| w.is_idle())
    }

    /// Why a watch in scope cannot sync, if one cannot.
    pub(super) fn source_problem(&self, scope: Option<u32>) -> Option<super::Refusal> {
        self.watches
            .iter()
            .filter(|(id, _)| scope.is_none_or(|s| s == **id))
            .find_map(|(_, w)| w.source_problem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn due_batches_come_oldest_first_and_the_next_one_wakes_the_engine() {
        let t0 = Instant::now();
        let mut a = Pair::new(0, "a/".into(), "a/".into());
        let mut b = Pair::new(1, "b/".into(), "b/".into());
        let idle = Pair::new(2, "c/".into(), "c/".into());
        b.record(b"x", t0);
        a.record(b"y", t0 + Duration::from_secs(1));
        let delay = Duration::from_secs(5);
        let pairs = [(0, &a, delay), (1, &b, delay), (2, &idle, delay)];
        let (now, next) = due(pairs.into_iter(), t0 + Duration::from_secs(3), Cpus::Busy);
        assert!(now.is_empty());
        assert_eq!(next, Some(t0 + Duration::from_secs(5)));
        let (now, next) = due(pairs.into_iter(), t0 + Duration::from_secs(6), Cpus::Busy);
        assert_eq!(
            now.iter().map(|(_, k)| *k).collect::<Vec<_>>(),
            [1, 0],
            "not oldest first"
        );
        assert_eq!(next, None);
    }
}
