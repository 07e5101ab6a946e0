//! A pair's batch from start to outcome: the pending changes handed out as the
//! running batch, and what its outcome does to the pair (synced, paths held,
//! retried after a backoff, put back when interrupted, held for an empty
//! source: README "How a sync works", "Failures").

use std::time::SystemTime;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::Pair;
use crate::engine::backoff::backoff;
use crate::engine::batch::{Batch, FullReason};
use crate::rsync::{Outcome, Progress, RunResult};

/// How a batch is run, handed to [`Pair::start`] by the dispatch as one value,
/// so that starting a transfer records its stop, speed and progress in one call.
pub struct Run {
    /// Stops the rsync early (to restart it with a new speed).
    pub stop: oneshot::Sender<()>,
    /// The `--bwlimit` it starts with.
    pub speed: u32,
    /// What the runner reports of its progress, for status.
    pub progress: watch::Receiver<Option<Progress>>,
}

impl Pair {
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

    /// Moves the pending changes into the running batch and records how it
    /// runs (`run`: its stop, speed and progress). A full sync from an empty
    /// root (`source_is_empty`, asked only then) is guarded: it deletes nothing,
    /// and if the target has files rsync stops with exit 25 and the pair holds
    /// (an empty mount point must not wipe the mirror).
    pub fn start(
        &mut self,
        run: Run,
        source_is_empty: impl FnOnce() -> bool,
        now: Instant,
    ) -> Batch {
        self.stop = Some(run.stop);
        self.speed_in_use = run.speed;
        self.replacements.1 = self.replacements.0;
        self.transfer = Some((now, run.progress));
        // A full sync compares sizes and mtimes, a listed path is compared
        // whatever they are: the paths pending with a full sync go first,
        // listed (the full sync then finds them equal and sends nothing of
        // them again), and those recorded after that stay pending through the
        // full sync, to go listed after it (found by a black-box attack: a
        // same-size rewrite with its mtime kept, pending when `inosyncctl
        // sync` or a lost event made a full sync, never arrived).
        let listed_first = self.lists_before_full();
        let full = self.pending_full && !listed_first;
        // A full sync takes no held path: it compares sizes and mtimes, and
        // may delete nothing (`delete = "running"`), so what a held path
        // carries (a same-size rewrite with its mtime kept, a deletion) is
        // still owed after it; each goes listed when its retry is due (found
        // by a black-box attack: the full sync took the held path and let it
        // go, and the target kept the old bytes while `wait` said equal).
        let (held_failures, held_since) = if full {
            Default::default()
        } else {
            self.held.take_due(now)
        };
        let mut paths = if full {
            std::collections::BTreeSet::new()
        } else {
            std::mem::take(&mut self.pending)
        };
        if !full {
            paths.extend(held_failures.keys().cloned());
        }
        let moves = std::mem::take(&mut self.moves);
        // A full sync leaves the trees recorded beside it pending, to go
        // after it, as its paths (see `record_tree`).
        let trees = if full {
            Default::default()
        } else {
            std::mem::take(&mut self.trees)
        };
        let made = std::mem::take(&mut self.made);
        let batch = Batch {
            full,
            paths: paths.into_iter().collect(),
            held_failures,
            moves: if full { Vec::new() } else { moves },
            trees: if full {
                Vec::new()
            } else {
                trees.into_iter().collect()
            },
            // Walked only once the writes paused: a tree still being filled
            // (a copy longer than `MADE_MAX_WAIT`) would be walked with its
            // files half written and its later ones sent twice; it is listed.
            made: if full || !self.quiet(now) {
                Vec::new()
            } else {
                crate::listed_paths::topmost(made.into_iter().collect())
            },
            full_reason: self.full_reason,
            // A full sync that deletes and arrives removes every leftover
            // itself; one that deletes nothing sweeps them after it arrives,
            // as a run of paths does (`rsync::run`).
            sweep: self.leftovers.take(),
        };
        if listed_first {
            self.listed_before_full = true;
        } else if full {
            self.pending_full = false;
            self.listed_before_full = false;
        }
        // The batch's oldest change: its pending paths' or a retried held
        // path's, whichever happened first. What stays pending (the full sync
        // after its listed paths, the paths after it) is as old as it was.
        let first_change = if self.pending_full || !self.pending.is_empty() {
            self.first_change
        } else {
            self.first_change.take()
        };
        self.running_first_change = match (first_change, held_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b).or(Some(now)),
        };
        // A full sync asked for at once (`inosyncctl sync`) stays so after
        // its listed paths.
        self.urgent &= self.pending_full;
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
        self.guarded = batch.full && !self.empty_source_ok && source_is_empty();
        self.running = Some(batch.clone());
        batch
    }

    /// Whether the running full sync may delete nothing (see [`Pair::start`]).
    pub fn is_guarded(&self) -> bool {
        self.guarded
    }

    /// Whether the next full sync compares contents (see
    /// [`Pair::source_replaced`]).
    pub fn compares_contents(&self) -> bool {
        self.compare_contents
    }

    /// The `--bwlimit` the running rsync was started with: a change of speed
    /// restarts it (`commands.rs`).
    pub fn speed_in_use(&self) -> u32 {
        self.speed_in_use
    }

    /// A path rsync could never be handed (longer than it can stat) is held
    /// and shown, never listed: a listed path it cannot even stat fails the
    /// whole run. `failures` counts this one.
    pub fn hold_unlisted(&mut self, path: Vec<u8>, reason: &str, failures: u32, now: Instant) {
        let since = self.running_since().unwrap_or(now);
        self.held.hold(path, reason, failures, now, true, since);
    }

    /// Part of the finished run was refused by the sandbox (`message` says
    /// which): shown as the pair's error; the transfer itself was done and the
    /// refused part is not retried.
    pub fn refused_in_part(&mut self, message: String) {
        self.last_error = Some(message);
    }

    /// A `verify` of this pair ended: kept for status.
    pub fn verified(&mut self, result: crate::engine::verify::LastVerify) {
        self.last_verify = Some(result);
    }

    /// The running batch ended. On failure its changes go back into the pending
    /// set (merged with what arrived meanwhile) and a retry is scheduled; when it was
    /// interrupted they go back too, due at once, and nothing counts as failed.
    pub fn finish(&mut self, outcome: &Outcome, now: Instant) {
        self.stop = None;
        if let Some((started, _)) = self.transfer.take() {
            self.last_run = Some((now, now.saturating_duration_since(started)));
        }
        let Some(batch) = self.running.take() else {
            self.held.run_ended();
            return;
        };
        self.leftovers.after_run(&batch, outcome);
        self.take_outcome(batch, outcome, now);
        self.held.run_ended();
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
                    self.held.postpone(now + backoff);
                    self.last_error = Some(cause.to_string());
                    self.requeue(&batch, now);
                }
            },
        }
    }

    fn synced(&mut self, batch: &Batch) {
        if !batch.full && self.pending_full && self.failures > 0 {
            // The paths that go before a full sync that failed arrived; the
            // full sync is still owed, and keeps its backoff (found by a
            // review: each listed run reset it, and a full sync that kept
            // failing was retried at the first step for good).
            self.last_sync = Some(SystemTime::now());
            return;
        }
        self.failures = 0;
        self.retry_at = None;
        self.last_error = None;
        self.last_sync = Some(SystemTime::now());
        if batch.full {
            self.empty_source_ok = false;
            // The root replaced again while it ran (a second deploy): the
            // full sync that follows still compares contents (a black-box
            // attack: it ran without `--checksum`, and the mirror kept the
            // first tree's bytes).
            let (now, at_start) = self.replacements;
            if now == at_start {
                self.compare_contents = false;
            }
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
            // A path held already that a full sync failed on again keeps
            // counting (a full sync does not take it: see `start`).
            let failures = batch
                .held_failures
                .get(path)
                .copied()
                .or_else(|| self.held.failures(path))
                .unwrap_or(0)
                + 1;
            tracing::warn!(
                "{}: {} held, retried on its own (failure {failures}): {cause}",
                self.destination,
                String::from_utf8_lossy(path)
            );
            let since = self.running_first_change.unwrap_or(now);
            self.held
                .hold(path.clone(), cause, failures, now, too_deep(path), since);
        }
        // A directory held (rsync could not make it) was named alone, and in
        // a walk (see `rsync/made.rs`) so were the paths below it: what the
        // batch had below a held path, not held itself, goes again, listed,
        // so each arrives or is held on its own; a tree the walk covered whose
        // files were never listed (moved in from outside) is compared again.
        let under =
            |p: &[u8], h: &[u8]| p.len() > h.len() && p.starts_with(h) && p[h.len()] == b'/';
        let again: Vec<Vec<u8>> = batch
            .paths
            .iter()
            .filter(|p| held.iter().any(|h| under(p, h)) && !held.contains(p))
            .cloned()
            .collect();
        for path in again {
            self.record(&path, now);
        }
        let trees_again: Vec<Vec<u8>> = batch
            .trees
            .iter()
            .filter(|t| crate::listed_paths::covered_by(t, &batch.made))
            .filter(|t| held.iter().any(|h| h == *t || under(h, t) || under(t, h)))
            .cloned()
            .collect();
        for tree in trees_again {
            self.record_tree(&tree, now);
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
                for tree in batch.trees.iter().chain(&batch.made) {
                    self.record_tree(tree, now);
                }
                self.urgent = true;
            }
        }
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
        // The held paths it retried stay held, shown with their reasons, due
        // with the pair's retry (at once when it was stopped).
        self.held.run_failed(self.retry_at.unwrap_or(now));
        if batch.full {
            self.record_full(now, false, batch.full_reason);
        } else {
            let not_held = |p: &&Vec<u8>| !batch.held_failures.contains_key(*p);
            for path in batch
                .paths
                .iter()
                .filter(not_held)
                .chain(batch.moves.iter().flat_map(|m| &m.fallback))
            {
                self.record(path, now);
            }
            // A move not renamed: its new place is compared whole (whatever
            // the target holds there is another tree), and so is its old one,
            // which may be made again (`mv g g_mv; mkdir g`): listed, or
            // walked as a made directory, the target's old files below it
            // stayed (found by a black-box attack; gone, it is deleted
            // either way).
            for m in &batch.moves {
                self.record_tree(&m.to, now);
                self.record_tree(&m.from, now);
            }
            for tree in &batch.trees {
                self.record_tree(tree, now);
            }
        }
    }
}
