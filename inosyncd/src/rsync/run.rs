//! Runs one batch in stages, each an rsync process (`supervise.rs`): renames on
//! the target, deletions, the transfer (in one process or, for a large batch,
//! several), the trees compared whole. One outcome for the whole batch.

use tokio::sync::{oneshot, watch};

use super::command::Job;
use super::outcome::{Outcome, Progress};
use super::supervise::start;

/// Runs the job. `label` names the watch and target in log lines. A message on
/// `stop` ends the run early: rsync gets SIGTERM, so that with `--partial` it keeps
/// what it has transferred. Progress lines are published on `progress`.
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
    // What is missing from the source now is deleted on the target by a run of
    // its own; the rest is transferred.
    let mut missing = job.take_missing();
    let splits = job.split > 1
        && job
            .paths
            .as_ref()
            .is_some_and(|p| p.len() >= super::split::SPLIT_MIN_PATHS);
    if job.moves.is_empty() && !splits && job.trees.is_empty() && missing.is_empty() {
        return Box::pin(start(job, label, stop, progress));
    }
    // Moves first (renames on the target), then deletions, then the transfer of
    // what is left, in one process or, for a large batch, several; then the trees
    // that must be equal as a whole are compared.
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
        // What the renames brought is compared afterwards, tree by tree: a rename
        // is only the fast way there, this is the proof (it sends file lists, and
        // whatever differs). The directories that may be other trees than the
        // target's (moved in, swapped, made again) are sent whole, every file.
        let renamed_trees: Vec<Vec<u8>> = job
            .moves
            .iter()
            .zip(&renamed)
            .filter(|(_, ok)| **ok)
            .map(|(m, _)| m.to.clone())
            .collect();
        let mut present = |trees: Vec<Vec<u8>>| {
            let listed =
                crate::listed_paths::topmost(crate::listed_paths::for_rsync(&job.source, trees));
            let (present, gone) = super::deletions::split_missing(&job.source, listed);
            missing.extend(gone);
            present
        };
        let new_trees = present(job.trees.clone());
        let renamed_trees: Vec<Vec<u8>> = present(renamed_trees)
            .into_iter()
            .filter(|t| !crate::listed_paths::covered_by(t, &new_trees))
            .collect();
        let stage = |paths: Vec<Vec<u8>>, recursive: bool, resend: bool, deleting: bool| {
            let mut stage = job.clone();
            stage.moves.clear();
            stage.trees.clear();
            stage.split = 1;
            stage.recursive = recursive;
            stage.resend = resend;
            stage.deleting = deleting;
            stage.paths = Some(paths);
            stage
        };
        let deletions = (!missing.is_empty())
            .then(|| stage(crate::listed_paths::topmost(missing), false, false, true));
        let checks: Vec<Job> = [(renamed_trees, false), (new_trees, true)]
            .into_iter()
            .filter(|(trees, _)| !trees.is_empty())
            .map(|(trees, resend)| stage(trees, true, resend, false))
            .collect();
        let mut outcome = match deletions {
            Some(deletions) => {
                let (_keep, stop) = oneshot::channel();
                let (progress, _) = watch::channel(None);
                start(deletions, label.clone(), stop, progress).await
            }
            None => Outcome::nothing(),
        };
        if !outcome.result.arrived() {
            return outcome;
        }
        let groups = match (&job.paths, job.split) {
            (Some(paths), parts) if parts > 1 && paths.len() >= super::split::SPLIT_MIN_PATHS => {
                super::split::by_directory(paths.clone(), parts)
            }
            _ => Vec::new(),
        };
        let transferred = if job.paths.as_ref().is_some_and(Vec::is_empty) {
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
        for check in checks {
            if !outcome.result.arrived() {
                break;
            }
            let (_keep, stop) = oneshot::channel();
            let (progress, _) = watch::channel(None);
            outcome.absorb(start(check, label.clone(), stop, progress).await);
        }
        outcome.renamed = done;
        outcome
    })
}
