//! Directories made since the last batch, sent as whole trees. Everything in
//! such a directory is new, so rsync's walk of it (`--recursive`, every file
//! sent, what the target has there and the source does not deleted) does what
//! the list of its paths would, faster: 16 rsyncs of a 2,000-file burst in 20
//! new directories take about 0.49 s walking them against 0.56 s reading the
//! list (README "Performance"). Files still being written in them are
//! excluded (`Job::unsettled`), as they are absent from a list.

use std::collections::HashMap;

use tokio::sync::{oneshot, watch};

use super::job::Job;
use super::outcome::{Outcome, Progress};

impl Job {
    /// Takes the made directories out of the job, with how many listed paths
    /// each one covers, and their listed paths out of the list. A made
    /// directory that is not one now (a symlink or a file took its name, or
    /// it is gone), or that the list no longer names itself (an ancestor was
    /// listed in its place, see `listed_paths`), is listed as before.
    pub fn take_made(&mut self) -> Vec<(Vec<u8>, usize)> {
        let made = std::mem::take(&mut self.made);
        let Some(paths) = self.paths.as_mut() else {
            return Vec::new();
        };
        if made.is_empty() {
            return Vec::new();
        }
        let listed: std::collections::HashSet<&[u8]> = paths.iter().map(Vec::as_slice).collect();
        let root = crate::listed_paths::open_dir(&self.source);
        let made: Vec<Vec<u8>> = made
            .into_iter()
            .filter(|d| listed.contains(d.as_slice()))
            .filter(|d| is_dir(root.as_ref(), d))
            .collect();
        let index: HashMap<Vec<u8>, usize> = made
            .iter()
            .enumerate()
            .map(|(i, d)| (d.clone(), i))
            .collect();
        let mut weights = vec![0usize; made.len()];
        paths.retain(|path| match covering(path, &index) {
            Some(i) => {
                weights[i] += 1;
                false
            }
            None => true,
        });
        made.into_iter().zip(weights).collect()
    }
}

/// Which made directory `path` is or lies below, if any.
fn covering(path: &[u8], made: &HashMap<Vec<u8>, usize>) -> Option<usize> {
    if let Some(i) = made.get(path) {
        return Some(*i);
    }
    path.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .find_map(|(end, _)| made.get(&path[..end]).copied())
}

/// Sends the made trees (`made`, each with the number of paths it covers) as
/// the batch's transfer: one rsync walking them all, or, when the batch may
/// use several processes (`Job::split`), groups of trees of about equal weight
/// side by side. The first process starts before this returns.
pub fn send(
    job: Job,
    made: Vec<(Vec<u8>, usize)>,
    label: String,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send + 'static>> {
    // The log line and metrics count the batch's paths, not the trees.
    let covered: usize = made.iter().map(|(_, weight)| (*weight).max(1)).sum();
    let counted = move |mut outcome: Outcome| {
        outcome.files = outcome.files.map(|_| covered);
        outcome
    };
    let mut parts = walks(&job, made, job.split);
    if parts.len() > 1 {
        tracing::debug!("{label}: new trees over {} rsync processes", parts.len());
        let running =
            super::split::run_parts(parts, stop, progress, move |part, stop, progress| {
                super::newline_names::start(part, label.clone(), stop, progress)
            });
        return Box::pin(async move { counted(running.await) });
    }
    match parts.pop() {
        Some(walk) => {
            // Started now, before this returns (see `run`).
            let running = super::newline_names::start(walk, label, stop, progress);
            Box::pin(async move { counted(running.await) })
        }
        None => Box::pin(std::future::ready(Outcome::nothing())),
    }
}

/// The transfer of a batch with listed paths (`job.paths`, those below the
/// made trees taken out) and made trees: side by side when the batch may use
/// several processes, the list first and then the walk when it may use one.
pub async fn transfer(
    mut job: Job,
    made: Vec<(Vec<u8>, usize)>,
    label: String,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
) -> Outcome {
    let listed = job.paths.as_ref().map_or(0, Vec::len);
    if listed == 0 {
        return send(job, made, label, stop, progress).await;
    }
    // A few listed files go with the walks, in the same processes: a listed
    // file is only itself with `--recursive` too, and `--delete` acts only in
    // the directories walked (not in a listed file's parents). A directory
    // among them would be walked whole: then they keep their own run.
    if listed <= FEW_LISTED && job.paths.as_ref().is_some_and(|p| no_directory(&job, p)) {
        let mut items = made;
        items.extend(
            job.paths
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p, 1)),
        );
        return send(job, items, label, stop, progress).await;
    }
    let total = listed + made.iter().map(|(_, w)| (*w).max(1)).sum::<usize>();
    let budget = job.split.max(1);
    let start = move |part, stop, progress| {
        super::newline_names::start(part, label.clone(), stop, progress)
    };
    if budget == 1 {
        // One process at a time: one stop reaches whichever runs, and the
        // progress is whichever runs.
        let (mut stops, mut progresses) = super::split::in_turn(stop, progress, 2);
        let (first, second) = (stops.remove(0), stops.remove(0));
        let (first_progress, second_progress) = (progresses.remove(0), progresses.remove(0));
        let walk = walks(&job, made, 1).pop();
        let mut outcome = start(job, first, first_progress).await;
        if let Some(walk) = walk
            && outcome.result.arrived()
        {
            outcome.absorb(start(walk, second, second_progress).await);
        }
        outcome.files = outcome.files.map(|_| total);
        return outcome;
    }
    // The processes shared by weight: paths listed against paths walked.
    let walked: usize = made.iter().map(|(_, w)| *w).sum();
    let for_walks = (budget * walked)
        .div_ceil(walked + listed)
        .clamp(1, budget - 1);
    let for_lists = budget - for_walks;
    let mut parts = walks(&job, made, for_walks);
    let paths = job.paths.clone().unwrap_or_default();
    let groups = if for_lists > 1 && paths.len() >= super::split::SPLIT_MIN_PATHS {
        super::split::by_directory(paths, for_lists)
    } else {
        vec![paths]
    };
    for group in groups {
        let mut part = job.clone();
        part.paths = Some(group);
        part.split = 1;
        parts.push(part);
    }
    let mut outcome = super::split::run_parts(parts, stop, progress, start).await;
    outcome.files = outcome.files.map(|_| total);
    outcome
}

/// At most this many listed paths join the walks of the made trees rather
/// than have a run of their own (each is looked at first).
const FEW_LISTED: usize = 256;

/// Whether none of `paths` is a directory in the source now (looked at
/// without following a symlink; one made a directory after this look is
/// walked: sent whole, which is right too).
fn no_directory(job: &Job, paths: &[Vec<u8>]) -> bool {
    let root = crate::listed_paths::open_dir(&job.source);
    paths
        .iter()
        .all(|p| !p.is_empty() && !is_dir(root.as_ref(), p))
}

/// Whether `rel` is a directory below the root (opened as `root`), looked at
/// without following a symlink: neither `rel` itself nor its parents, which
/// `listed_paths` checked just before (a parent swapped for a symlink since
/// is found here too).
fn is_dir(root: Option<&std::os::fd::OwnedFd>, rel: &[u8]) -> bool {
    let Some(root) = root else {
        return false;
    };
    let real_parents = rel
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .all(|(end, _)| {
            crate::listed_paths::lstat_mode(root, &rel[..end])
                .is_ok_and(|m| m & libc::S_IFMT == libc::S_IFDIR)
        });
    real_parents
        && crate::listed_paths::lstat_mode(root, rel)
            .is_ok_and(|m| m & libc::S_IFMT == libc::S_IFDIR)
}

/// The walks of the made trees in at most `parts` processes.
fn walks(job: &Job, made: Vec<(Vec<u8>, usize)>, parts: usize) -> Vec<Job> {
    let made = made.into_iter().map(|(tree, w)| (tree, w as u64)).collect();
    super::split::by_weight(made, parts)
        .into_iter()
        .map(|group| {
            let mut walk = job.clone();
            walk.recursive = true;
            walk.walk = true;
            walk.resend = true;
            walk.split = 1;
            walk.moves.clear();
            walk.trees.clear();
            walk.paths = Some(group);
            walk
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_in(root: &std::path::Path, paths: &[&str], made: &[&str]) -> Job {
        Job {
            source: root.to_path_buf(),
            paths: Some(paths.iter().map(|p| p.as_bytes().to_vec()).collect()),
            made: made.iter().map(|p| p.as_bytes().to_vec()).collect(),
            ..Job::default()
        }
    }

    #[test]
    fn the_paths_below_a_made_directory_leave_the_list() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("new/sub")).unwrap();
        std::fs::create_dir(dir.path().join("old")).unwrap();
        let mut job = job_in(
            dir.path(),
            &[
                "new",
                "new/a",
                "new/sub",
                "new/sub/b",
                "newer",
                "old",
                "old/c",
            ],
            &["new"],
        );
        let made = job.take_made();
        assert_eq!(made, vec![(b"new".to_vec(), 4)]);
        let left: Vec<&[u8]> = job
            .paths
            .as_ref()
            .unwrap()
            .iter()
            .map(Vec::as_slice)
            .collect();
        assert_eq!(left, vec![&b"newer"[..], b"old", b"old/c"]);
    }

    #[test]
    fn a_made_directory_that_is_no_longer_one_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("replaced")).unwrap();
        let mut job = job_in(
            dir.path(),
            &["link", "file", "gone", "gone/a", "replaced/a"],
            &["link", "file", "gone", "replaced"],
        );
        // `replaced` itself is not listed: an ancestor check put something
        // else in its place.
        assert!(job.take_made().is_empty());
        assert_eq!(job.paths.as_ref().unwrap().len(), 5);
    }
}
