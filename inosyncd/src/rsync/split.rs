//! A large batch over several rsync processes: a burst of thousands of paths is
//! rsync's per-file work in one process; with free slots it is cut into groups by
//! directory (every path of a directory in the same group, so no two processes
//! write into the same directory's entries) and the groups run side by side. The
//! engine still sees one batch: one outcome, one progress.

use std::collections::BTreeMap;

use futures::future::join_all;
use tokio::sync::{oneshot, watch};

use super::job::Job;
use super::outcome::{FailureClass, Outcome, Progress, RunResult};

/// Below this many paths one process does the batch.
pub const SPLIT_MIN_PATHS: usize = 2000;

/// Cuts `paths` into at most `parts` groups of whole directories, of about equal
/// size (largest directories first, each to the smallest group so far).
pub fn by_directory(paths: Vec<Vec<u8>>, parts: usize) -> Vec<Vec<Vec<u8>>> {
    let mut dirs: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for path in paths {
        let dir = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => path[..i].to_vec(),
            None => Vec::new(),
        };
        dirs.entry(dir).or_default().push(path);
    }
    let mut dirs: Vec<Vec<Vec<u8>>> = dirs.into_values().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
    let mut groups: Vec<Vec<Vec<u8>>> = vec![Vec::new(); parts.max(1)];
    for dir in dirs {
        let smallest = groups
            .iter_mut()
            .min_by_key(|g| g.len())
            .expect("at least one group");
        smallest.extend(dir);
    }
    groups.retain(|g| !g.is_empty());
    for group in &mut groups {
        group.sort();
    }
    groups
}

/// For `n` processes of one batch that run one after another: `n` stops
/// that one `stop` reaches all of, and `n` progress senders whose updates
/// reach `progress` in turn (the first's until it is dropped, then the
/// next's).
pub fn in_turn(
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
    n: usize,
) -> (
    Vec<oneshot::Receiver<()>>,
    Vec<watch::Sender<Option<Progress>>>,
) {
    let (stop_txs, stop_rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| oneshot::channel()).unzip();
    tokio::spawn(async move {
        if stop.await.is_ok() {
            for stop in stop_txs {
                let _ = stop.send(());
            }
        }
    });
    let (progress_txs, mut seen): (Vec<_>, Vec<_>) = (0..n).map(|_| watch::channel(None)).unzip();
    tokio::spawn(async move {
        for seen in &mut seen {
            while seen.changed().await.is_ok() {
                progress.send_replace(seen.borrow().clone());
            }
        }
    });
    (stop_rxs, progress_txs)
}

/// Cuts weighted trees (made directories, a root's top-level directories)
/// into at most `parts` groups of about equal weight (heaviest first, ties
/// by name, each to the lightest group so far), each sorted.
pub fn by_weight(mut dirs: Vec<(Vec<u8>, u64)>, parts: usize) -> Vec<Vec<Vec<u8>>> {
    dirs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut groups: Vec<(u64, Vec<Vec<u8>>)> = vec![(0, Vec::new()); parts.max(1)];
    for (dir, weight) in dirs {
        if let Some(lightest) = groups.iter_mut().min_by_key(|(w, _)| *w) {
            lightest.0 += weight.max(1);
            lightest.1.push(dir);
        }
    }
    groups
        .into_iter()
        .map(|(_, mut group)| {
            group.sort();
            group
        })
        .filter(|group| !group.is_empty())
        .collect()
}

/// Runs `job`'s paths as `groups` in parallel through `start`, with one stop
/// for all and their progress summed into `progress`.
pub async fn run_groups<F, Fut>(
    job: Job,
    groups: Vec<Vec<Vec<u8>>>,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
    start: F,
) -> Outcome
where
    F: Fn(Job, oneshot::Receiver<()>, watch::Sender<Option<Progress>>) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let parts = groups
        .into_iter()
        .map(|group| {
            let mut part = job.clone();
            part.paths = Some(group);
            part
        })
        .collect();
    run_parts(parts, stop, progress, start).await
}

/// Runs `parts` (jobs of one batch, each with its own paths) in parallel
/// through `start`, with one stop for all and their progress summed into
/// `progress`: one outcome, as for one process.
pub async fn run_parts<F, Fut>(
    parts: Vec<Job>,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
    start: F,
) -> Outcome
where
    F: Fn(Job, oneshot::Receiver<()>, watch::Sender<Option<Progress>>) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let mut stops = Vec::new();
    let mut progresses = Vec::new();
    let mut runs = Vec::new();
    for part in parts {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (progress_tx, progress_rx) = watch::channel(None);
        stops.push(stop_tx);
        progresses.push(progress_rx);
        runs.push(start(part, stop_rx, progress_tx));
    }
    // One stop ends every part.
    tokio::spawn(async move {
        if stop.await.is_ok() {
            for stop in stops {
                let _ = stop.send(());
            }
        }
    });
    tokio::spawn(sum_progress(progresses, progress));
    merge(join_all(runs).await)
}

/// The parts' progress as one: bytes added up, the least advanced percent.
async fn sum_progress(
    mut parts: Vec<watch::Receiver<Option<Progress>>>,
    total: watch::Sender<Option<Progress>>,
) {
    loop {
        let changes = parts.iter_mut().map(|p| Box::pin(p.changed()));
        let (changed, _, _) = futures::future::select_all(changes).await;
        if changed.is_err() {
            return;
        }
        let seen: Vec<Progress> = parts.iter().filter_map(|p| p.borrow().clone()).collect();
        if let Some(first) = seen.first() {
            total.send_replace(Some(Progress {
                bytes_done: seen.iter().map(|p| p.bytes_done).sum(),
                percent: seen.iter().map(|p| p.percent).min().unwrap_or(0),
                rate: first.rate.clone(),
                eta: seen.iter().map(|p| p.eta.clone()).max().unwrap_or_default(),
            }));
        }
    }
}

/// One outcome for the batch: interrupted if any part was, refused or failed
/// if any part was (the causes of all; retried as slowly as the slowest class),
/// partial if any part held paths (all of them), synced otherwise.
fn merge(parts: Vec<Outcome>) -> Outcome {
    let mut merged = Outcome::bare(RunResult::Synced, Some(0));
    merged.bytes_sent = Some(0);
    merged.exit_code = Some(0);
    let mut results = Vec::new();
    for part in parts {
        merged.deletions_skipped |= part.deletions_skipped;
        merged.elapsed = merged.elapsed.max(part.elapsed);
        merged.files = Some(merged.files.unwrap_or(0) + part.files.unwrap_or(0));
        merged.bytes_sent = match (merged.bytes_sent, part.bytes_sent) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        // The first code that says more than "fine" (24 says less than a failure).
        merged.exit_code = match (merged.exit_code, part.exit_code) {
            (Some(a), Some(b)) => Some(if a == 0 || (a == 24 && b != 0) { b } else { a }),
            _ => None,
        };
        merged.vanished.extend(part.vanished);
        merged.refused.extend(part.refused);
        merged.kept_partial.extend(part.kept_partial);
        merged.too_deep.extend(part.too_deep);
        merged.unswept.extend(part.unswept);
        results.push(part.result);
    }
    merged.result = merge_results(results);
    merged
}

fn merge_results(results: Vec<RunResult>) -> RunResult {
    if results.contains(&RunResult::Interrupted) {
        return RunResult::Interrupted;
    }
    let mut causes = Vec::new();
    let mut refused = false;
    let mut slowest = None;
    let mut held = Vec::new();
    let mut held_causes = Vec::new();
    for result in results {
        match result {
            RunResult::Refused { cause } => {
                refused = true;
                causes.push(cause);
            }
            RunResult::Failed { class, cause } => {
                slowest = Some(match (slowest, class) {
                    (Some(FailureClass::Misconfiguration), _)
                    | (_, FailureClass::Misconfiguration) => FailureClass::Misconfiguration,
                    _ => FailureClass::Transient,
                });
                causes.push(cause);
            }
            RunResult::Partial { held: part, cause } => {
                held.extend(part);
                held_causes.push(cause);
            }
            RunResult::SourceEmpty => return RunResult::SourceEmpty,
            RunResult::Synced | RunResult::Interrupted => {}
        }
    }
    match (refused, slowest) {
        (true, _) => RunResult::Refused {
            cause: causes.join(" | "),
        },
        (false, Some(class)) => RunResult::Failed {
            class,
            cause: causes.join(" | "),
        },
        (false, None) if !held.is_empty() => RunResult::Partial {
            held,
            cause: held_causes.join(" | "),
        },
        _ => RunResult::Synced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_are_grouped_by_weight() {
        let trees = vec![
            (b"a".to_vec(), 900),
            (b"b".to_vec(), 500),
            (b"c".to_vec(), 400),
            (b"d".to_vec(), 0),
        ];
        assert_eq!(
            by_weight(trees.clone(), 2),
            vec![
                vec![b"a".to_vec(), b"d".to_vec()],
                vec![b"b".to_vec(), b"c".to_vec()]
            ]
        );
        assert_eq!(by_weight(trees.clone(), 1).len(), 1);
        assert_eq!(by_weight(trees, 8).len(), 4);
        assert!(by_weight(Vec::new(), 3).is_empty());
    }

    #[test]
    fn groups_keep_directories_whole_and_balance_sizes() {
        let mut paths = Vec::new();
        for d in 0..10 {
            for f in 0..(d + 1) * 10 {
                paths.push(format!("d{d}/f{f}").into_bytes());
            }
        }
        paths.push(b"top".to_vec());
        let groups = by_directory(paths, 4);
        assert_eq!(groups.len(), 4);
        let total: usize = groups.iter().map(Vec::len).sum();
        assert_eq!(total, 551);
        for d in 0..10 {
            let prefix = format!("d{d}/");
            let holding = groups
                .iter()
                .filter(|g| g.iter().any(|p| p.starts_with(prefix.as_bytes())))
                .count();
            assert_eq!(holding, 1, "d{d} is split");
        }
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 100,
            "{sizes:?}"
        );
    }
}
