//! Starting and finishing batches through the [`Runner`](super::runner::Runner)
//! seam: the job handed to the runner, the outcome it reports, the log line of each
//! sync, and stopping what still runs at exit.

use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::Engine;
use super::lanes::{Lane, Weight};
use super::pair::Run;
use super::source;
use crate::rsync::{self, Job, Outcome, RunResult};

/// A run that ended, sent back to the engine by the task that awaited it.
pub(super) struct Done {
    pub(super) watch: u32,
    pub(super) pair: u64,
    pub(super) outcome: Outcome,
    /// rsync processes it used (a large batch may be split).
    pub(super) processes: usize,
    /// The lane they counted against.
    pub(super) lane: Lane,
}

impl Engine {
    /// Starts the pending batch of pair `i` of watch `id`: the job goes to the
    /// runner now, and a task sends back its outcome as [`Done`]. A batch of
    /// many paths is split over at most `share` processes (`split_share`).
    pub(super) fn start(&mut self, id: u32, i: usize, weight: Weight, share: usize) {
        // Never rsync from a root that is not the tree we watch.
        if !self.check_source(id) {
            return;
        }
        let Some(mut job) = self.full_job(id, i) else {
            return;
        };
        let speed = job.speed;
        // Read before the watch is borrowed: what a full sync into an empty
        // target may be cut into.
        let full_share = self.full_sync_share(share);
        let (stop_tx, stop_rx) = oneshot::channel();
        let Some(watch) = self.watches.get_mut(&id) else {
            return;
        };
        let pair = &mut watch.pairs[i];
        let (progress, progress_rx) = watch::channel(None);
        let run = Run {
            stop: stop_tx,
            speed,
            progress: progress_rx,
        };
        let root = &watch.spec.path;
        let batch = pair.start(run, || source::is_empty_dir(root), Instant::now());
        // Its own source check (above) may have made it a full sync (a replaced
        // root): large, whatever lane it was due in.
        let lane = if batch.full || !batch.trees.is_empty() {
            Lane::Large
        } else {
            weight.lane
        };
        // A few small files, neither moved nor brought from outside (whose
        // trees' bytes are not known): see `lanes::is_brief`.
        job.brief = lane == Lane::Small
            && batch.moves.is_empty()
            && rsync::may_go_without_partial_dir(&job.extra)
            && weight
                .small_bytes
                .is_some_and(|bytes| super::lanes::is_brief(bytes, speed));
        if batch.full {
            self.metrics.record_full_sync(batch.full_reason);
        }
        job.delete_nothing = pair.is_guarded();
        // `delete` decides, per kind of run, whether what the source lacks
        // goes from the target (read now: a reload applies to the next run).
        let delete = watch.spec.effective_delete(&self.config);
        job.full_syncs_delete = delete.full_sync_deletes(false);
        job.keep_deleted = if batch.full {
            !delete.full_sync_deletes(batch.full_reason == super::batch::FullReason::Initial)
        } else {
            !delete.changes_delete()
        };
        // A full sync into an empty (or missing) local target has nothing to
        // delete: without --delete rsync does not read every directory there
        // (about 5% of a first sync of 50,000 directories).
        if batch.full && source::local_target_is_empty(&job.destination) {
            job.keep_deleted = true;
            job.into_empty = true;
        }
        job.compare_contents = batch.full && pair.compares_contents();
        job.paths =
            (!batch.full).then(|| crate::listed_paths::for_rsync(&watch.spec.path, batch.paths));
        // What the watch's excludes match now is never sent nor deleted,
        // also when it was pending before a reload excluded it, or taken up
        // from the journal: a listed path passes rsync's directory rule (its
        // directories are sent as implied ones; found by a black-box attack).
        if let Some(paths) = &mut job.paths {
            paths.retain(|path| !excluded_now(&watch.excludes, path));
        }
        // What lies below a source directory named like rsync's partial
        // directory is never mirrored (README "A mirror never shows a
        // truncated file"), listed or not.
        if let Some(paths) = &mut job.paths
            && let Some(name) = rsync::partial_dir_name(&job.extra)
        {
            paths.retain(|path| !rsync::below_partial_dir(path, &name));
        }
        // A path rsync cannot transfer is held and shown, never handed to it (a
        // listed path it cannot even stat fails the whole run).
        if let Some(paths) = &mut job.paths {
            let now = Instant::now();
            paths.retain(|path| {
                if path.len() <= crate::listed_paths::MAX_RSYNC_PATH {
                    return true;
                }
                let failures = batch.held_failures.get(path).copied().unwrap_or(0) + 1;
                let reason = crate::listed_paths::too_long(path);
                if failures == 1 {
                    tracing::warn!(
                        "{} -> {}: {}...: {reason}; held",
                        watch.spec.path.display(),
                        pair.destination(),
                        String::from_utf8_lossy(&path[..path.len().min(120)])
                    );
                }
                pair.hold_unlisted(path.clone(), &reason, failures, now);
                false
            });
        }
        job.held = pair.held_paths();
        job.moves = batch.moves;
        job.trees = batch.trees;
        // A held directory is retried as a whole tree: what rsync could not do
        // there (read it, make it on the target) concerns what lies below it,
        // which a listed directory's own entry never sends (found by a
        // black-box attack: an unreadable directory's retry succeeded without
        // reading it, and the hold was let go).
        if !batch.full {
            let root = &watch.spec.path;
            job.trees.extend(
                batch
                    .held_failures
                    .keys()
                    .filter(|rel| !rel.is_empty() && is_source_dir(root, rel))
                    .cloned(),
            );
        }
        job.sweep = batch.sweep;
        // Trees are listed as paths are: neither an excluded one nor one below
        // a directory named like the partial directory (an entry moved into
        // one was mirrored; a black-box attack).
        let partial = rsync::partial_dir_name(&job.extra);
        let listable = |tree: &Vec<u8>| {
            tree.len() <= crate::listed_paths::MAX_RSYNC_PATH
                && !excluded_now(&watch.excludes, tree)
                && !partial
                    .as_deref()
                    .is_some_and(|name| rsync::below_partial_dir(tree, name))
        };
        job.trees.retain(listable);
        job.made = batch.made;
        job.made.retain(listable);
        if !job.made.is_empty() {
            job.unsettled = self
                .settling
                .paths(id)
                .filter(|p| crate::listed_paths::covered_by(p, &job.made))
                .map(<[u8]>::to_vec)
                .collect();
        }
        // A batch of many paths may use its share of the free slots: several
        // rsync processes.
        let processes = match &job.paths {
            Some(paths) if paths.len() >= rsync::SPLIT_MIN_PATHS => {
                let wanted = share.clamp(1, paths.len().div_ceil(1000));
                // As many as there are groups of whole directories: each
                // made directory is one (walked whole), the rest grouped.
                let rest: Vec<Vec<u8>> = if job.made.is_empty() {
                    paths.clone()
                } else {
                    paths
                        .iter()
                        .filter(|p| !crate::listed_paths::covered_by(p, &job.made))
                        .cloned()
                        .collect()
                };
                let groups = job.made.len()
                    + match rest.len() {
                        0 => 0,
                        n if n < rsync::SPLIT_MIN_PATHS => 1,
                        _ => rsync::split_by_directory(rest, wanted).len(),
                    };
                groups.clamp(1, wanted)
            }
            // A full sync into an empty target may use its share too (see
            // `rsync/into_empty.rs`): a first sync of a big tree with CPUs
            // free.
            None if job.into_empty && rsync::may_cut_full_sync(&job) => {
                let dirs = rsync::top_level_count(&job.source).unwrap_or(u64::MAX);
                full_share
                    .min(usize::try_from(dirs).unwrap_or(usize::MAX))
                    .max(1)
            }
            _ => 1,
        };
        job.split = processes;
        let label = format!("{} -> {}", watch.spec.path.display(), pair.destination());
        let pair_id = pair.id();
        self.running += processes;
        if lane == Lane::Large {
            self.running_large += processes;
            self.large_runs
                .started(id, pair_id, processes, Instant::now());
        }
        let done = self.done_tx.clone();
        // The runner starts rsync now (on a thread of its own); the task only
        // awaits it.
        let running = self.runner.run(job, label, stop_rx, progress);
        tokio::spawn(async move {
            let outcome = running.await;
            let _ = done.send(Done {
                watch: id,
                pair: pair_id,
                outcome,
                processes,
                lane,
            });
        });
    }

    /// The job of a full sync of pair `i` of watch `id`, with the settings in
    /// force (a batch narrows it to its paths; `verify` dry-runs it). Its
    /// children start through the one spawn point (`rsync::Launcher`), which
    /// checks the layout and builds their sandbox just before each.
    pub(super) fn full_job(&self, id: u32, i: usize) -> Option<Job> {
        let watch = self.watches.get(&id)?;
        let pair = watch.pairs.get(i)?;
        Some(Job {
            rsync: self.config.rsync.clone(),
            source: watch.spec.path.clone(),
            destination: pair.destination().to_string(),
            speed: self.watch_speed(watch).0,
            excludes: watch.excludes.patterns().to_vec(),
            held: Vec::new(),
            extra: [&self.config.rsync_args[..], &watch.spec.rsync_args[..]].concat(),
            rsh: self.reuse_rsh(pair.target(), &watch.spec.rsync_args),
            io_timeout: Duration::from_secs_f64(self.config.io_timeout),
            delete_nothing: false,
            // As a full sync other than the initial one (`verify` dry-runs
            // this: a file kept on purpose is not drift).
            keep_deleted: !watch
                .spec
                .effective_delete(&self.config)
                .full_sync_deletes(false),
            compare_contents: false,
            paths: None,
            moves: Vec::new(),
            trees: Vec::new(),
            made: Vec::new(),
            unsettled: Vec::new(),
            split: 1,
            into_empty: false,
            part: rsync::FullPart::Whole,
            recursive: false,
            walk: false,
            resend: false,
            deleting: false,
            sweep: Vec::new(),
            sweeping: false,
            exact: false,
            full_syncs_delete: false,
            brief: false,
            launch: rsync::Launcher::new(self.policy.clone(), self.roots()),
        })
    }

    /// The `--rsh` that shares one ssh connection per host, for `host:` targets
    /// (unless `ssh_reuse = false` or the remote shell is not ssh).
    pub(super) fn reuse_rsh(&self, target: &str, watch_args: &[String]) -> Option<String> {
        if !self.config.ssh_reuse || !rsync::uses_remote_shell(target) {
            return None;
        }
        let args = [&self.config.rsync_args[..], watch_args].concat();
        rsync::rsh_with_reuse(&args, self.ssh_dir.as_deref()?)
    }

    /// A run ended: log it in one line and let its pair take the outcome.
    pub(super) fn finish(&mut self, done: Done) {
        self.running = self.running.saturating_sub(done.processes);
        if done.lane == Lane::Large && self.large_runs.ended(done.pair) {
            self.running_large = self.running_large.saturating_sub(done.processes);
        }
        let Some(watch) = self.watches.get_mut(&done.watch) else {
            return;
        };
        let Some(pair) = watch.pairs.iter_mut().find(|p| p.id() == done.pair) else {
            return;
        };
        let label = format!("{} -> {}", watch.spec.path.display(), pair.destination());
        let outcome = &done.outcome;
        let what = outcome
            .files
            .map_or("the whole tree".to_string(), |n| format!("{n} path(s)"));
        let sent = outcome
            .bytes_sent
            .map_or("? bytes".to_string(), |b| format!("{b} bytes"));
        let exit = outcome
            .exit_code
            .map_or("none".to_string(), |c| c.to_string());
        match &outcome.result {
            RunResult::SourceEmpty => tracing::error!(
                "{label}: source missing: {} is empty while the target is not; the mirror is \
                 kept (an empty mount point?). `inosyncctl sync {} --force` mirrors the empty source",
                watch.spec.path.display(),
                watch.spec.path.display()
            ),
            RunResult::Interrupted => tracing::info!(
                "{label}: rsync stopped after {:.3?} ({what}); restarting",
                outcome.elapsed
            ),
            RunResult::Synced => tracing::info!(
                "{label}: synced in {:.3?}: {what}, {sent} sent, exit {exit}",
                outcome.elapsed
            ),
            RunResult::Partial { held, .. } => tracing::info!(
                "{label}: synced in {:.3?}: {what} but {} held, {sent} sent, exit {exit}",
                outcome.elapsed,
                held.len()
            ),
            RunResult::Refused { cause } => tracing::error!(
                "{label}: not synced ({what}): {cause}; changes kept, retry #{} scheduled",
                pair.failures() + 1
            ),
            RunResult::Failed { cause, .. } => tracing::error!(
                "{label}: sync failed after {:.3?} ({what}, exit {exit}): {cause}; changes kept, retry #{} scheduled",
                outcome.elapsed,
                pair.failures() + 1
            ),
        }
        self.metrics.record_run(
            &watch.spec.path.display().to_string(),
            pair.destination(),
            outcome,
        );
        pair.finish(&done.outcome, Instant::now());
        // Held for an empty source that is not empty any more: files arrived
        // while the guarded full sync ran, and their events came before the hold.
        if pair.is_held_empty() && !source::is_empty_dir(&watch.spec.path) {
            tracing::info!("{label}: the source is not empty any more; full sync again",);
            pair.release_empty_hold();
        }
        if !outcome.refused.is_empty() {
            let message = format!(
                "refused by the sandbox: rsync may write only below its target, and an \
                 rsync_args option (--remove-source-files, --log-file, --backup-dir, ...) \
                 reaches outside the mirror; the transfer itself was done, the refused \
                 part is not retried: {}",
                outcome.refused.join(" | ")
            );
            tracing::error!("{label}: {message}");
            pair.refused_in_part(message);
        }
    }

    /// On the way out: stop rsyncs still running (SIGTERM: their partial
    /// directories keep their work) and wait for them, but not forever.
    pub(super) async fn stop_running(&mut self, grace: Duration) {
        if self.running == 0 {
            return;
        }
        tracing::warn!(
            "{} rsync process(es) still running at exit; stopping them",
            self.running
        );
        for watch in self.watches.values_mut() {
            for pair in &mut watch.pairs {
                pair.interrupt();
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.running > 0 {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some(done)) => self.finish(done),
                _ => break,
            }
        }
    }
}

/// Whether `rel` of the tree at `root` is excluded by `excludes` now through
/// an excluded directory above it, or by a pattern for any kind of entry. A
/// name that a directory-only pattern matches stays listed: rsync's own rule
/// keeps such a directory from being sent, and deletes a file the target
/// holds under that name (`excludes::a_file_replaced_by_an_excluded_directory_leaves_the_mirror`);
/// what a listed path's directories hold is what its rule does not stop.
fn excluded_now(excludes: &crate::exclude::ExcludeSet, rel: &[u8]) -> bool {
    excludes.is_excluded(rel, false)
}

/// Whether `rel` is a directory in the tree at `root` now (not following a
/// symlink).
fn is_source_dir(root: &std::path::Path, rel: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    std::fs::symlink_metadata(root.join(std::ffi::OsStr::from_bytes(rel)))
        .is_ok_and(|meta| meta.is_dir())
}
