//! What the rest of the engine asks a pair without changing it: whether and
//! when its next batch is due (`schedule.rs`, `lanes.rs`), what is on its way
//! to the target (`verify`), its lag, retries and progress (`status`, metrics).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{BURST_MAX_WAIT, BURST_QUIET, Cpus, MADE_MAX_WAIT, Pair};
use crate::engine::held::HeldPaths;
use crate::engine::on_the_way::OnTheWay;
use crate::engine::verify::LastVerify;
use crate::rsync::Progress;

impl Pair {
    /// Unique for the daemon's lifetime: a finished rsync or verify finds its
    /// pair by it, even after a reload changed the list of targets.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The target as configured: a reload matches pairs by it, and `status`
    /// shows it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Where rsync writes (`target + remote_path`): the label of every log
    /// line, metric and status entry about this pair.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Consecutive failed runs: the backoff, `status` and the metrics count them.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When a run last succeeded, for `status`.
    pub fn last_sync(&self) -> Option<SystemTime> {
        self.last_sync
    }

    /// Why the last run failed, until one succeeds: shown by `status`.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The paths rsync could not sync, retried on their own; `status` lists
    /// them and the metrics count them.
    pub fn held(&self) -> &HeldPaths {
        &self.held
    }

    /// The last comparison with the source, for `status`.
    pub fn last_verify(&self) -> Option<&LastVerify> {
        self.last_verify.as_ref()
    }

    /// Whether changes wait to be synced.
    pub fn has_pending(&self) -> bool {
        self.pending_full
            || !self.pending.is_empty()
            || !self.moves.is_empty()
            || !self.held.is_empty()
    }

    /// What is on its way to the target now (for `verify`): each pending or
    /// running path with what lies below it, each held path alone (retried as
    /// listed, it brings nothing below it), the old and new places of queued
    /// moves, or everything while a full sync is pending or running.
    pub fn on_the_way(&self) -> OnTheWay {
        if self.pending_full || self.running.as_ref().is_some_and(|b| b.full) {
            return OnTheWay::everything();
        }
        let mut way = OnTheWay::default();
        let moves = self
            .moves
            .iter()
            .chain(self.running.iter().flat_map(|b| &b.moves));
        for m in moves {
            way.add(&m.from);
            way.add(&m.to);
            m.fallback.iter().for_each(|p| way.add(p));
        }
        self.pending.iter().for_each(|p| way.add(p));
        self.trees.iter().for_each(|p| way.add_tree(p));
        self.held.iter().for_each(|(p, _)| way.add_exact(p));
        if let Some(batch) = &self.running {
            for path in &batch.paths {
                if batch.held_failures.contains_key(path) {
                    way.add_exact(path);
                } else {
                    way.add(path);
                }
            }
            batch.trees.iter().for_each(|p| way.add_tree(p));
        }
        way
    }

    /// When the oldest change of the running batch happened.
    pub fn running_since(&self) -> Option<Instant> {
        self.running.as_ref().and(self.running_first_change)
    }

    /// Whether a batch is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Failed and waiting out its retry backoff (nothing running), or with
    /// nothing left to send but held paths waiting out theirs: a stop does not
    /// wait for it, its changes go to the next start's full sync.
    pub fn in_backoff(&self) -> bool {
        let only_held = !self.pending_full && self.pending.is_empty() && self.moves.is_empty();
        self.running.is_none() && self.has_pending() && (self.retry_at.is_some() || only_held)
    }

    /// Since when the oldest change not yet synced has waited (replication
    /// lag): pending, running or held, counted from when it happened, however
    /// many failed runs and retries came since.
    pub fn oldest_pending(&self) -> Option<Instant> {
        let running = self.running.as_ref().and(self.running_first_change);
        [running, self.first_change, self.held.oldest()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Pending paths, a pending full sync counting as one.
    pub fn pending_count(&self) -> u64 {
        if self.pending_full {
            1
        } else {
            (self.pending.len() + self.moves.len() + self.held.len()) as u64
        }
    }

    /// The paths the pending batch would list, and how many, when it is a batch
    /// of listed paths (no full sync, or one its paths go before; no tree
    /// compared whole): what the engine weighs to choose its lane (`lanes.rs`).
    pub fn listed_pending(&self) -> Option<(usize, impl Iterator<Item = &[u8]> + Clone)> {
        if (self.pending_full && !self.lists_before_full()) || !self.trees.is_empty() {
            return None;
        }
        let pending = self.pending.iter().map(Vec::as_slice);
        let held = self.held.iter().map(|(path, _)| path.as_slice());
        Some((self.pending.len() + self.held.len(), pending.chain(held)))
    }

    /// Whether the next batch lists the paths pending with a full sync, which
    /// goes after them (see [`Pair::start`]): it is weighed as those paths,
    /// not as the full sync.
    pub(super) fn lists_before_full(&self) -> bool {
        self.pending_full
            && !self.listed_before_full
            && !self.compare_contents
            && !self.pending.is_empty()
    }

    /// When the pending batch may start: `delay` after its first change, not
    /// before a retry backoff ends, never while one runs; `cpus` says whether
    /// other runs keep every CPU busy (see `burst_due`).
    pub fn due_at(&self, delay: Duration, cpus: Cpus) -> Option<Instant> {
        if self.running.is_some() || !self.has_pending() || self.empty_hold {
            return None;
        }
        let pending = self.first_change.map(|first| {
            let due = if self.urgent {
                first
            } else {
                (first + delay).max(self.burst_due(first, cpus))
            };
            match self.retry_at {
                Some(retry) => due.max(retry),
                None => due,
            }
        });
        match (pending, self.held.next_retry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When a batch whose first change came while the last run ran may start:
    /// changes are still pouring in (a burst). While other runs keep every
    /// CPU busy (many targets), it waits for them to pause for
    /// [`BURST_QUIET`], but no longer than twice the last run took (at most
    /// [`BURST_MAX_WAIT`]): a burst then goes out in a few large runs instead
    /// of many small ones chasing it, which take the CPU from the writer. A
    /// run with CPUs free goes at once: it keeps up with the writer, and what
    /// is left when the writes stop is one run's worth, not the burst's
    /// second half. A change after a quiet moment goes at once.
    ///
    /// A batch with a directory just made waits the same way, at most
    /// [`MADE_MAX_WAIT`]: what is put in it (`cp -r`, an unpacked archive)
    /// comes microseconds later, and goes with it in one walk of the tree
    /// rather than chased by runs that each find a part.
    fn burst_due(&self, first: Instant, cpus: Cpus) -> Instant {
        let burst = match (self.last_run, self.last_change) {
            (Some((ended, took)), Some(last)) if first < ended && cpus == Cpus::Busy => {
                (last + BURST_QUIET).min(first + (took * 2).min(BURST_MAX_WAIT))
            }
            _ => first,
        };
        match self.last_change {
            Some(last) if !self.made.is_empty() => {
                burst.max((last + BURST_QUIET).min(first + MADE_MAX_WAIT))
            }
            _ => burst,
        }
    }

    /// Whether the changes have paused for [`BURST_QUIET`] by `now`.
    pub(super) fn quiet(&self, now: Instant) -> bool {
        self.last_change
            .is_none_or(|last| now >= last + BURST_QUIET)
    }

    /// The held paths to leave out of this batch: those rsync can never send
    /// (too long, too deep to list), so that their errors no longer make rsync
    /// skip every deletion of the run.
    pub fn held_paths(&self) -> Vec<Vec<u8>> {
        self.held.excluded()
    }

    /// Time until the next retry, while one is scheduled.
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        let whole = self.retry_at.filter(|_| self.last_error.is_some());
        let next = match (whole, self.held.next_retry()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(next.saturating_duration_since(now))
    }

    /// Progress of the running transfer, once it has run for a second (shorter
    /// ones are over before anyone could read it).
    pub fn progress(&self, now: Instant) -> Option<Progress> {
        let (started, progress) = self.transfer.as_ref()?;
        if now.duration_since(*started) < Duration::from_secs(1) {
            return None;
        }
        progress.borrow().clone()
    }
}
