//! The batch state of one (watch, target) pair: what is pending, what is running,
//! and how the last run went. At most one batch runs and one waits per pair; a
//! change that arrives while a batch runs goes into the next one.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::backoff::backoff;
use super::batch::{Batch, FullReason};
use super::held::HeldPaths;
use super::leftovers::Leftovers;
use super::on_the_way::OnTheWay;
use crate::rsync::{Move, Outcome, Progress, RunResult};

/// Past this many pending paths a pair gives up listing them and does one full
/// sync instead: memory stays bounded however long a target is down.
const MAX_PENDING_PATHS: usize = 200_000;

/// One destination of one watch.
#[derive(Debug)]
pub struct Pair {
    /// Unique for the daemon's lifetime, so a finished rsync finds its pair even
    /// after a reload changed the list of targets.
    pub id: u64,
    /// The target as configured.
    pub target: String,
    /// `target + remote_path`.
    pub destination: String,
    pending: BTreeSet<Vec<u8>>,
    /// Pending directories whose whole tree is compared (each also in `pending`).
    trees: BTreeSet<Vec<u8>>,
    /// Moves seen since the last batch, in order (renamed on the target first).
    moves: Vec<Move>,
    pending_full: bool,
    full_reason: FullReason,
    /// The first change of the running batch (for the replication lag).
    running_first_change: Option<Instant>,
    /// When the oldest pending change arrived: the delay counts from here.
    first_change: Option<Instant>,
    /// Skip the delay (initial sync, explicit requests).
    urgent: bool,
    running: Option<Batch>,
    /// Stops the running rsync early (to restart it with a new speed).
    stop: Option<oneshot::Sender<()>>,
    /// The `--bwlimit` the running rsync was started with.
    pub speed_in_use: u32,

    /// When the running rsync started, and what it last reported of its progress.
    pub transfer: Option<(Instant, watch::Receiver<Option<Progress>>)>,
    retry_at: Option<Instant>,
    /// Consecutive failures.
    pub failures: u32,
    /// Last successful sync.
    pub last_sync: Option<SystemTime>,
    /// Why the last run failed, until one succeeds.
    pub last_error: Option<String>,
    /// The running full sync may delete nothing (`--max-delete=0`): the source
    /// root was empty when it started.
    pub guarded: bool,
    /// A guarded full sync found the target not empty: the empty source is not
    /// mirrored (that would wipe the target) until a change arrives in it or
    /// `sync --force` allows it.
    empty_hold: bool,
    /// `sync --force` was given: the next full sync may mirror an empty source.
    empty_source_ok: bool,
    /// Paths rsync could not sync, retried on their own.
    pub held: HeldPaths,
    /// Where runs that did not finish may have left rsync's files.
    leftovers: Leftovers,
    /// The last comparison with the source (`verify`).
    pub last_verify: Option<super::verify::LastVerify>,
    /// The next full sync compares contents (`--checksum`): the source root was
    /// replaced by another tree, whose files may have the sizes and mtimes of the
    /// old ones (a reproducible build sets every mtime alike).
    pub compare_contents: bool,
}

impl Pair {
    /// A pair with nothing pending.
    pub fn new(id: u64, target: String, destination: String) -> Pair {
        Pair {
            id,
            target,
            destination,
            pending: BTreeSet::new(),
            trees: BTreeSet::new(),
            moves: Vec::new(),
            pending_full: false,
            full_reason: FullReason::Initial,
            running_first_change: None,
            first_change: None,
            urgent: false,
            running: None,
            stop: None,
            speed_in_use: 0,

            transfer: None,
            retry_at: None,
            failures: 0,
            last_sync: None,
            last_error: None,
            guarded: false,
            empty_hold: false,
            empty_source_ok: false,
            held: HeldPaths::default(),
            leftovers: Leftovers::default(),
            last_verify: None,
            compare_contents: false,
        }
    }

    /// Whether the next full sync may delete from an empty source.
    pub fn may_mirror_empty_source(&self) -> bool {
        self.empty_source_ok
    }

    /// `sync --force`: the next full sync mirrors the source even when it is empty.
    pub fn allow_empty_source(&mut self) {
        self.empty_source_ok = true;
        self.empty_hold = false;
    }

    /// Held because the source was empty while the target was not.
    pub fn is_held_empty(&self) -> bool {
        self.empty_hold
    }

    /// The source is not empty after all (files arrived while the guarded full
    /// sync ran, their events recorded before the hold): the full sync runs
    /// again at once, guarded again if it is empty by then.
    pub fn release_empty_hold(&mut self) {
        if std::mem::take(&mut self.empty_hold) {
            self.last_error = None;
            self.urgent = true;
        }
    }

    /// A path changed.
    pub fn record(&mut self, rel: &[u8], now: Instant) {
        self.first_change.get_or_insert(now);
        // Something appeared in (or left) the source: look at it again.
        self.empty_hold = false;
        if self.pending_full {
            return;
        }
        if !self.pending.contains(rel) {
            self.pending.insert(rel.to_vec());
        }
        if self.pending.len() > MAX_PENDING_PATHS {
            tracing::info!(
                "{}: more than {MAX_PENDING_PATHS} changed paths pending; collapsing them into one full sync",
                self.destination
            );
            self.record_full(now, false, FullReason::TooManyPaths);
        }
    }

    /// A directory may now be another tree than the one the target holds: it is
    /// listed, and compared as a whole tree (deletions included).
    pub fn record_tree(&mut self, rel: &[u8], now: Instant) {
        self.record(rel, now);
        if !self.pending_full {
            self.trees.insert(rel.to_vec());
        }
    }

    /// `from` was renamed to `to` in the source (`implied`: what lies below `to`).
    /// Pending paths below `from` move along; the move itself is renamed on the
    /// target before the next batch's transfer, or transferred when it cannot be.
    pub fn record_move(&mut self, from: &[u8], to: &[u8], implied: Vec<Vec<u8>>, now: Instant) {
        self.first_change.get_or_insert(now);
        self.leftovers.reroot(from, to);
        self.empty_hold = false;
        if self.pending_full {
            return;
        }
        let below =
            |p: &Vec<u8>| p.len() > from.len() && p.starts_with(from) && p[from.len()] == b'/';
        let moved = |p: &Vec<u8>| [to, &p[from.len()..]].concat();
        // What was pending below `from` is pending below `to` too. The old
        // paths stay: gone, they are only deletions (no-ops after the rename on
        // the target); and should the "move" be half of an exchange, or be moved
        // back, what now lies at `from` is covered as well.
        let pending_below: Vec<Vec<u8>> =
            self.pending.iter().filter(|p| below(p)).cloned().collect();
        for path in pending_below {
            self.pending.insert(moved(&path));
        }
        let trees_below: Vec<Vec<u8>> = self
            .trees
            .iter()
            .filter(|p| below(p) || p.as_slice() == from)
            .cloned()
            .collect();
        for tree in trees_below {
            let moved_tree = if tree.as_slice() == from {
                to.to_vec()
            } else {
                moved(&tree)
            };
            self.pending.insert(moved_tree.clone());
            self.trees.insert(moved_tree);
        }
        // Changed before it moved: what the rename brings is stale.
        if self.pending.contains(from) {
            self.pending.insert(to.to_vec());
        }
        self.held.reroot(from, to);
        let mut fallback = implied;
        fallback.push(to.to_vec());
        fallback.push(from.to_vec());
        // A batch in flight may or may not have brought paths below `from` to the
        // target before the rename there: send them again under their new name. A
        // full sync in flight leaves the target's state unknown: transfer.
        if let Some(running) = &self.running {
            if running.full {
                tracing::debug!(
                    "{}: {} moved during a full sync; transferred, not renamed",
                    self.destination,
                    String::from_utf8_lossy(to)
                );
                self.pending.extend(fallback);
                self.trees.insert(to.to_vec());
                return;
            }
            let moved_here = |p: &Vec<u8>| {
                if p.as_slice() == from {
                    to.to_vec()
                } else {
                    moved(p)
                }
            };
            let in_flight: Vec<Vec<u8>> = running
                .paths
                .iter()
                .filter(|p| below(p) || p.as_slice() == from)
                .map(moved_here)
                .collect();
            let trees_in_flight: Vec<Vec<u8>> = running
                .trees
                .iter()
                .filter(|p| below(p) || p.as_slice() == from)
                .map(moved_here)
                .collect();
            self.pending.extend(in_flight);
            self.pending.extend(trees_in_flight.iter().cloned());
            self.trees.extend(trees_in_flight);
        }
        self.moves.push(Move {
            from: from.to_vec(),
            to: to.to_vec(),
            fallback,
        });
        if self.moves.len() > MAX_PENDING_PATHS / 100 {
            self.record_full(now, false, FullReason::TooManyPaths);
        }
    }

    /// A directory renamed whose two places are trees to compare whole anyway
    /// (recorded on their own): renamed on the target first when it can be, so
    /// the comparison finds the files there. Nothing pending follows it (its
    /// paths may already be where everything is now).
    pub fn record_rename(&mut self, from: &[u8], to: &[u8], now: Instant) {
        if self.pending_full || self.running.as_ref().is_some_and(|b| b.full) {
            return;
        }
        self.first_change.get_or_insert(now);
        self.moves.push(Move {
            from: from.to_vec(),
            to: to.to_vec(),
            fallback: Vec::new(),
        });
        if self.moves.len() > MAX_PENDING_PATHS / 100 {
            self.record_full(now, false, FullReason::TooManyPaths);
        }
    }

    /// Anything may have changed: the next batch is a full sync (`reason`: the
    /// first one asked for, for the metrics).
    pub fn record_full(&mut self, now: Instant, urgent: bool, reason: FullReason) {
        if !self.pending_full {
            self.full_reason = reason;
        }
        self.first_change.get_or_insert(now);
        self.empty_hold = false;
        self.pending_full = true;
        self.pending.clear();
        self.trees.clear();
        self.moves.clear();
        self.urgent |= urgent;
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
        self.held.iter().for_each(|(p, _)| way.add_exact(p));
        if let Some(batch) = &self.running {
            for path in &batch.paths {
                if batch.held_failures.contains_key(path) {
                    way.add_exact(path);
                } else {
                    way.add(path);
                }
            }
            batch.trees.iter().for_each(|p| way.add(p));
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

    /// Pending paths, a pending full sync counting as one.
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

    pub fn pending_count(&self) -> u64 {
        if self.pending_full {
            1
        } else {
            (self.pending.len() + self.moves.len() + self.held.len()) as u64
        }
    }

    /// The paths the pending batch would list, and how many, when it is a batch
    /// of listed paths (no full sync, no tree compared whole): what the engine
    /// weighs to choose its lane (`lanes.rs`).
    pub fn listed_pending(&self) -> Option<(usize, impl Iterator<Item = &[u8]>)> {
        if self.pending_full || !self.trees.is_empty() {
            return None;
        }
        let pending = self.pending.iter().map(Vec::as_slice);
        let held = self.held.iter().map(|(path, _)| path.as_slice());
        Some((self.pending.len() + self.held.len(), pending.chain(held)))
    }

    /// When the pending batch may start: `delay` after its first change, not
    /// before a retry backoff ends, never while one runs.
    pub fn due_at(&self, delay: Duration) -> Option<Instant> {
        if self.running.is_some() || !self.has_pending() || self.empty_hold {
            return None;
        }
        let pending = self.first_change.map(|first| {
            let due = if self.urgent { first } else { first + delay };
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

    /// Makes the pending batch due now, skipping the delay (and any backoff).
    pub fn hurry(&mut self, now: Instant) {
        if self.has_pending() {
            self.first_change.get_or_insert(now);
            self.urgent = true;
            self.retry_at = None;
        }
    }

    /// Makes the pending batch due without its delay, but not before a retry
    /// backoff ends (a repair of drift: a failing target stays paced).
    pub fn expedite(&mut self, now: Instant) {
        if self.has_pending() {
            self.first_change.get_or_insert(now);
            self.urgent = true;
        }
    }

    /// Asks the running rsync to stop; its batch comes back as pending and due now.
    /// Returns whether one was running.
    pub fn interrupt(&mut self) -> bool {
        match self.stop.take() {
            Some(stop) => stop.send(()).is_ok(),
            None => false,
        }
    }

    /// Moves the pending changes into the running batch; `stop` ends it early.
    pub fn start(&mut self, stop: oneshot::Sender<()>, now: Instant) -> Batch {
        self.stop = Some(stop);
        let (held_failures, held_since) = if self.pending_full {
            self.held.take_all()
        } else {
            self.held.take_due(now)
        };
        let mut paths = std::mem::take(&mut self.pending);
        if !self.pending_full {
            paths.extend(held_failures.keys().cloned());
        }
        let moves = std::mem::take(&mut self.moves);
        let trees = std::mem::take(&mut self.trees);
        let batch = Batch {
            full: self.pending_full,
            paths: paths.into_iter().collect(),
            held_failures,
            moves: if self.pending_full { Vec::new() } else { moves },
            trees: if self.pending_full {
                Vec::new()
            } else {
                trees.into_iter().collect()
            },
            full_reason: self.full_reason,
            // A full sync removes every leftover itself.
            sweep: if self.pending_full {
                Vec::new()
            } else {
                self.leftovers.take()
            },
        };
        self.pending_full = false;
        // The batch's oldest change: its pending paths' or a retried held
        // path's, whichever happened first.
        self.running_first_change = match (self.first_change.take(), held_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b).or(Some(now)),
        };
        self.urgent = false;
        tracing::trace!(
            "{}: batch of {:?}, trees {:?}, moves {:?}",
            self.destination,
            batch
                .paths
                .iter()
                .map(|p| String::from_utf8_lossy(p))
                .collect::<Vec<_>>(),
            batch
                .trees
                .iter()
                .map(|p| String::from_utf8_lossy(p))
                .collect::<Vec<_>>(),
            batch.moves.len()
        );
        self.running = Some(batch.clone());
        batch
    }

    /// The running batch ended. On failure its changes go back into the pending
    /// set (merged with what arrived meanwhile) and a retry is scheduled; when it was
    /// interrupted they go back too, due at once, and nothing counts as failed.
    pub fn finish(&mut self, outcome: &Outcome, now: Instant) {
        self.stop = None;
        self.transfer = None;
        let Some(batch) = self.running.take() else {
            return;
        };
        self.leftovers.after_run(&batch, outcome);
        self.take_outcome(batch, outcome, now);
        if self.leftovers.too_many() {
            self.leftovers.clear();
            self.record_full(now, false, FullReason::TooManyPaths);
        }
    }

    fn take_outcome(&mut self, batch: Batch, outcome: &Outcome, now: Instant) {
        if outcome.result == RunResult::Interrupted {
            self.requeue(&batch, now);
            self.urgent = true;
            return;
        }
        // rsync's "--max-delete limit stopped deletions": the source root was empty
        // and the target had files. Keep the full sync, hold it, report it.
        if std::mem::take(&mut self.guarded) && outcome.result == RunResult::SourceEmpty {
            self.requeue(&batch, now);
            self.empty_hold = true;
            self.last_error = Some(
                "the source is empty while the target is not (an empty mount point?): \
                 the mirror is kept; `inosyncctl sync PATH --force` mirrors the empty source"
                    .into(),
            );
            return;
        }
        match &outcome.result {
            RunResult::Partial { held, cause } => self.split_out(&batch, outcome, held, cause, now),
            result => match result.failure() {
                None => {
                    self.synced(&batch);
                    // rsync saw these vanish: look again (their topmost missing
                    // ancestor gets listed), in case no event covers them.
                    for path in &outcome.vanished {
                        self.record(path, now);
                    }
                }
                Some((cause, first_retry)) => {
                    self.failures = self.failures.saturating_add(1);
                    let backoff = backoff(self.failures, first_retry);
                    self.retry_at = Some(now + backoff);
                    self.last_error = Some(cause.to_string());
                    self.requeue(&batch, now);
                }
            },
        }
    }

    fn synced(&mut self, batch: &Batch) {
        self.failures = 0;
        self.retry_at = None;
        self.last_error = None;
        self.last_sync = Some(SystemTime::now());
        if batch.full {
            self.empty_source_ok = false;
            self.compare_contents = false;
        }
    }

    /// "Some files were not transferred": the paths rsync's errors name (the
    /// classifier found them in the batch) are held and retried on their own;
    /// the rest of the batch arrived. When rsync skipped every deletion of the
    /// run for those errors, the run is done again at once with them excluded
    /// (see `held_paths`), unless they were held before (then it is their errors
    /// that persist).
    fn split_out(
        &mut self,
        batch: &Batch,
        outcome: &Outcome,
        held: &[Vec<u8>],
        cause: &str,
        now: Instant,
    ) {
        // A directory too deep to list is left out of later runs (nothing below
        // it can be sent, and with it rsync deletes nothing); any other held
        // path stays in them: leaving it out would hide changes below it.
        let too_deep = |p: &Vec<u8>| outcome.too_deep.contains(p);
        let new = held
            .iter()
            .any(|p| too_deep(p) && !batch.held_failures.contains_key(p));
        for path in held {
            let failures = batch.held_failures.get(path).copied().unwrap_or(0) + 1;
            tracing::warn!(
                "{}: {} held, retried on its own (failure {failures}): {cause}",
                self.destination,
                String::from_utf8_lossy(path)
            );
            let since = self.running_first_change.unwrap_or(now);
            self.held
                .hold(path.clone(), cause, failures, now, too_deep(path), since);
        }
        self.synced(batch);
        if outcome.deletions_skipped && new {
            tracing::info!(
                "{}: rsync skipped its deletions because of the paths now held; again without them",
                self.destination
            );
            if batch.full {
                self.record_full(now, true, batch.full_reason);
            } else {
                for tree in &batch.trees {
                    self.record_tree(tree, now);
                }
                self.urgent = true;
            }
        }
    }

    /// The held paths to leave out of this batch: those rsync can never send
    /// (too long, too deep to list), so that their errors no longer make rsync
    /// skip every deletion of the run.
    pub fn held_paths(&self) -> Vec<Vec<u8>> {
        self.held.excluded()
    }

    /// Puts a batch that did not complete back. Its moves may or may not have
    /// been renamed on the target: they come back as transfers, which are right
    /// either way.
    fn requeue(&mut self, batch: &Batch, now: Instant) {
        // Its changes are as old as they were: the lag (and the delay) count
        // from when they happened, not from this failure.
        if let Some(since) = self.running_first_change {
            self.first_change = Some(self.first_change.map_or(since, |f| f.min(since)));
        }
        if batch.full {
            self.record_full(now, false, batch.full_reason);
        } else {
            for path in batch
                .paths
                .iter()
                .chain(batch.moves.iter().flat_map(|m| &m.fallback))
            {
                self.record(path, now);
            }
            // A move not renamed: its new place is compared whole (whatever
            // the target holds there is another tree).
            for m in &batch.moves {
                self.record_tree(&m.to, now);
            }
            for tree in &batch.trees {
                self.record_tree(tree, now);
            }
        }
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

#[cfg(test)]
mod tests;
