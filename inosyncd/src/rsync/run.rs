//! Runs one batch in stages, each an rsync process (`supervise.rs`): renames on
//! the target, deletions, the transfer (in one process or, for a large batch,
//! several), the trees compared whole, and the sweep of what earlier runs that
//! did not finish left behind. One outcome for the whole batch.

use tokio::sync::{oneshot, watch};

use super::job::Job;
use super::newline_names::start;
use super::outcome::{Outcome, Progress};

/// Runs the job. `label` names the watch and target in log lines. A message on
/// `stop` ends the run early: rsync gets SIGTERM, and keeps what it has
/// transferred in its partial directory (see `leftovers`), never in the file's
/// place. Progress lines are published on `progress`.
///
/// The process is started before this returns, on the caller's thread: a change
/// must not wait for the runtime to get round to a new task before rsync exists.
pub fn run(
    job: Job,
    label: String,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send + 'static>> {
    let mut job = job;
    if !job.take_root() {
        return run_batch(job, label, stop, progress);
    }
    // The root's own attributes changed: they go by a run of their own
    // (`root_attributes`), after the rest, which may change the root's mtime.
    let root = job.root_attributes();
    let alone = |mut outcome: Outcome| {
        // One path, not the whole tree a job with no list would say.
        outcome.files = Some(1);
        outcome
    };
    if job.has_nothing_listed() {
        let run = start(root, label, stop, progress);
        return Box::pin(async move { alone(run.await) });
    }
    // One stop reaches whichever runs (a speed change, a shutdown).
    let (mut stops, mut progresses) = super::split::in_turn(stop, progress, 2);
    let (root_stop, root_progress) = (stops.remove(1), progresses.remove(1));
    let rest = run_batch(job, label.clone(), stops.remove(0), progresses.remove(0));
    Box::pin(async move {
        let mut outcome = rest.await;
        if outcome.result.arrived() {
            outcome.absorb(alone(start(root, label, root_stop, root_progress).await));
        }
        outcome
    })
}

/// Runs a batch whose root is not listed (see [`run`]).
fn run_batch(
    job: Job,
    label: String,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send + 'static>> {
    if job.split > 1 && super::into_empty::may_cut(&job) {
        // A first sync of a tree into an empty target, over free CPUs.
        return super::into_empty::send(job, label, stop, progress);
    }
    let mut job = job;
    // Directories made since the last batch go as whole trees, what is listed
    // below them left to rsync's walk (see `made`); taken first, so what went
    // from them is not looked up one path at a time.
    let mut made = job.take_made();
    // A walk and a tree compared whole do the same (`--recursive`, every file,
    // `--delete` inside): a tree is not compared again inside a walked one (a
    // tree moved into a new directory), nor walked inside one compared (a
    // directory deleted and made again).
    made.retain(|(tree, _)| !crate::listed_paths::covered_by(tree, &job.trees));
    let walked: Vec<Vec<u8>> = made.iter().map(|(tree, _)| tree.clone()).collect();
    job.trees
        .retain(|tree| !crate::listed_paths::covered_by(tree, &walked));
    // What is missing from the source now is deleted on the target by a run of
    // its own; the rest is transferred.
    let mut missing = job.take_missing();
    if job.keep_deleted {
        // Nothing is deleted: a move is a copy to its new name (as lsyncd's
        // rsync layers do it with `delete = false`), the old name stays.
        let moved: Vec<Vec<u8>> = job.moves.drain(..).map(|m| m.to).collect();
        job.trees.extend(moved);
        if !missing.is_empty() {
            tracing::debug!(
                "{label}: {} path(s) missing from the source kept on the target (delete mode)",
                missing.len()
            );
        }
        missing.clear();
    }
    if !made.is_empty()
        && job.paths.as_ref().is_some_and(Vec::is_empty)
        && job.moves.is_empty()
        && job.trees.is_empty()
        && missing.is_empty()
        && job.sweep.is_empty()
    {
        // Only new trees (a burst into new directories): one walk of them,
        // or, for a large batch, several side by side.
        return Box::pin(super::made::send(job, made, label, stop, progress));
    }
    let splits = job.split > 1
        && job
            .paths
            .as_ref()
            .is_some_and(|p| p.len() >= super::split::SPLIT_MIN_PATHS);
    if job.moves.is_empty()
        && made.is_empty()
        && !splits
        && job.trees.is_empty()
        && missing.is_empty()
        && job.sweep.is_empty()
    {
        return Box::pin(start(job, label, stop, progress));
    }
    // Moves first (renames on the target), then deletions, then the transfer of
    // what is left, in one process or, for a large batch, several; then the trees
    // that must be equal as a whole are compared; then the sweep.
    Box::pin(async move {
        let renamed = super::renames::apply(&job).await;
        let done = renamed.iter().filter(|ok| **ok).count();
        if !job.moves.is_empty() {
            tracing::debug!(
                "{label}: {done} of {} move(s) renamed on the target",
                job.moves.len()
            );
        }
        job.add_failed_moves(&renamed);
        missing.extend(job.take_missing());
        if job.keep_deleted {
            missing.clear();
        }
        // What the renames brought is compared afterwards, tree by tree: a rename
        // is only the fast way there, this is the proof (it sends file lists, and
        // whatever differs). The directories that may be other trees than the
        // target's (moved in, swapped, made again) are sent whole, every file.
        // A move renamed before one recorded earlier (see `renames::order`),
        // after one it depends on that was refused, or out of a tree compared
        // whole, may have taken what another path held (`renames::unsure`):
        // its tree is compared by content, as is a tree to compare whole that
        // a rename brought.
        let out_of_order = super::renames::unsure(&job.moves, &renamed, &job.trees);
        let renamed_to: Vec<Vec<u8>> = job
            .moves
            .iter()
            .zip(&renamed)
            .filter(|(_, ok)| **ok)
            .map(|(m, _)| m.to.clone())
            .collect();
        let mut renamed_trees = Vec::new();
        let mut late_trees = Vec::new();
        for ((m, ok), late) in job.moves.iter().zip(&renamed).zip(&out_of_order) {
            if *ok {
                if *late {
                    &mut late_trees
                } else {
                    &mut renamed_trees
                }
                .push(m.to.clone());
            }
        }
        let mut present = |trees: Vec<Vec<u8>>| {
            let listed =
                crate::listed_paths::topmost(crate::listed_paths::for_rsync(&job.source, trees));
            let (present, gone) = super::deletions::split_missing(&job.source, listed);
            if !job.keep_deleted {
                missing.extend(gone);
            }
            present
        };
        let whole = present(job.trees.clone());
        let (by_content, new_trees): (Vec<Vec<u8>>, Vec<Vec<u8>>) = whole
            .iter()
            .cloned()
            .partition(|t| crate::listed_paths::covered_by(t, &renamed_to));
        let by_content: Vec<Vec<u8>> = by_content
            .into_iter()
            .chain(
                present(late_trees)
                    .into_iter()
                    .filter(|t| !crate::listed_paths::covered_by(t, &whole)),
            )
            .collect();
        let renamed_trees: Vec<Vec<u8>> = present(renamed_trees)
            .into_iter()
            .filter(|t| {
                !crate::listed_paths::covered_by(t, &whole)
                    && !crate::listed_paths::covered_by(t, &by_content)
            })
            .collect();
        // Directories gone from the source have their own deletion, which takes
        // whatever was left in them.
        let (root, below): (Vec<Vec<u8>>, Vec<Vec<u8>>) = std::mem::take(&mut job.sweep)
            .into_iter()
            .partition(Vec::is_empty);
        let (mut sweep, _gone) = super::deletions::split_missing(&job.source, below);
        sweep.extend(root);
        let stage = |paths: Vec<Vec<u8>>, mode: Stage| {
            let mut stage = job.clone();
            stage.moves.clear();
            stage.trees.clear();
            stage.split = 1;
            stage.recursive = matches!(mode, Stage::Trees(_));
            stage.resend = mode == Stage::Trees(Compare::Resend);
            stage.compare_contents = mode == Stage::Trees(Compare::Contents);
            stage.deleting = mode == Stage::Deletions;
            stage.sweeping = mode == Stage::Sweep;
            stage.paths = Some(paths);
            stage
        };
        let missing = crate::listed_paths::topmost(missing);
        for (what, trees) in [
            ("renamed", &renamed_trees),
            ("by content", &by_content),
            ("whole", &new_trees),
        ] {
            if !trees.is_empty() {
                let shown: Vec<String> = trees
                    .iter()
                    .take(10)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                tracing::debug!(
                    "{label}: {} tree(s) to compare ({what}): {shown:?}",
                    trees.len()
                );
            }
        }
        if !missing.is_empty() {
            let shown: Vec<String> = missing
                .iter()
                .take(10)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            tracing::debug!(
                "{label}: {} path(s) missing from the source, deleted on the target: {shown:?}",
                missing.len()
            );
        }
        let deletions = (!missing.is_empty()).then(|| stage(missing, Stage::Deletions));
        let checks: Vec<Job> = [
            (renamed_trees, Compare::Quick),
            (by_content, Compare::Contents),
            (new_trees, Compare::Resend),
        ]
        .into_iter()
        .filter(|(trees, _)| !trees.is_empty())
        .map(|(trees, how)| stage(trees, Stage::Trees(how)))
        .collect();
        // A partial directory of the user's own is theirs: the sweep's rules
        // name ours, and a source directory of our name is then mirrored
        // (a sweep would delete what the target alone holds in it).
        let ours = super::leftovers::partial_dir_name(&job.extra).as_deref()
            == Some(super::leftovers::PARTIAL_DIR);
        let sweeping = (ours && !sweep.is_empty()).then(|| stage(sweep.clone(), Stage::Sweep));
        let full = job.paths.is_none();
        let job_deletes_nothing = job.keep_deleted || job.delete_nothing;
        let mut outcome = match deletions {
            Some(deletions) => super::guarded::run(deletions, &label).await,
            None => Outcome::nothing(),
        };
        if !outcome.result.arrived() {
            outcome.unswept = sweep;
            return outcome;
        }
        let groups = match (&job.paths, job.split) {
            (Some(paths), parts) if parts > 1 && paths.len() >= super::split::SPLIT_MIN_PATHS => {
                super::split::by_directory(paths.clone(), parts)
            }
            _ => Vec::new(),
        };
        let transferred = if !made.is_empty() {
            super::made::transfer(job, made, label.clone(), stop, progress).await
        } else if job.paths.as_ref().is_some_and(Vec::is_empty) {
            Outcome::nothing()
        } else if groups.len() > 1 {
            tracing::debug!(
                "{label}: {} paths over {} rsync processes",
                job.paths.as_ref().map_or(0, Vec::len),
                groups.len()
            );
            super::split::run_groups(job, groups, stop, progress, |part, stop, progress| {
                start(part, label.clone(), stop, progress)
            })
            .await
        } else {
            start(job, label.clone(), stop, progress).await
        };
        outcome.absorb(transferred);
        if full {
            // The whole tree, as the log and metrics say of a full sync (the
            // staged path starts from "nothing", which counts paths).
            outcome.files = None;
        }
        for check in checks {
            if !outcome.result.arrived() {
                break;
            }
            outcome.absorb(quietly(check, &label).await);
        }
        outcome.renamed = done;
        // The sweep does not decide the batch: what it did not remove is
        // swept again after the next run. It follows a run that arrived (whose
        // transfer used the partial files first), or one that found the target
        // full, where the leftovers may be what takes the space; a full sync
        // that deleted and arrived removed them itself.
        outcome.swept_all =
            full && !job_deletes_nothing && outcome.result.arrived() && !outcome.deletions_skipped;
        let sweep_now =
            !outcome.swept_all && (outcome.result.arrived() || outcome.result.target_full());
        outcome.unswept = match sweeping {
            Some(sweeping) if sweep_now => {
                let swept = super::guarded::run(sweeping, &label).await;
                if swept.result.arrived() {
                    tracing::debug!(
                        "{label}: swept {} director(y/ies) of rsync's leftovers",
                        sweep.len()
                    );
                    Vec::new()
                } else {
                    tracing::warn!(
                        "{label}: could not sweep rsync's leftovers ({:?}); tried again after \
                         the next run",
                        swept.result
                    );
                    sweep
                }
            }
            // Removed by the full sync's deletions, or never ours to sweep.
            _ if outcome.swept_all || !ours => Vec::new(),
            _ => sweep,
        };
        outcome
    })
}

/// What a stage of a batch does besides (or instead of) the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Deletes the listed paths missing from the source (see `deletions`).
    Deletions,
    /// Compares the listed trees whole.
    Trees(Compare),
    /// Removes rsync's leftovers in the listed directories (see `leftovers`).
    Sweep,
}

/// How a tree is compared whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Size and exact mtime: what a rename in order brought.
    Quick,
    /// By content (`--checksum`): what a rename brought that may not be what
    /// the source holds there (renamed out of order, or into a tree that may
    /// be another), with the files that are equal kept.
    Contents,
    /// Every file sent again: a tree that may be another than the target's.
    Resend,
}

/// A stage that is not stopped early and reports no progress.
pub(super) async fn quietly(job: Job, label: &str) -> Outcome {
    let (_keep, stop) = oneshot::channel();
    let (progress, _) = watch::channel(None);
    start(job, label.to_string(), stop, progress).await
}
