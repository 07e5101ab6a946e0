//! A list too long for arguments goes on rsync's stdin, one path a line
//! (`listing`). A path with a newline or a CR cannot be said on a line, and
//! `--from0` (NUL-separated) would make rsync read the user's rule files
//! (`--exclude-from`, `--include-from`, merge files) NUL-separated too, as one
//! pattern that matches nothing: what they exclude was sent, and what they
//! protect deleted. Such paths are taken out of the list and go as arguments
//! in runs of their own, after it. The rules of a deletion or a sweep with
//! such a path always go as arguments (`Job::argv`): when there are more than
//! arguments hold, they are cut over several runs the same way.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{oneshot, watch};

use super::job::Job;
use super::outcome::{Outcome, Progress};

/// Starts `job` (as `supervise::start` does), in several runs one after the
/// other when its list holds paths that cannot be said on a line.
pub(super) fn start(
    job: Job,
    label: String,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'static>> {
    let Some(parts) = apart(&job) else {
        return Box::pin(super::supervise::start(job, label, stop, progress));
    };
    tracing::debug!(
        "{label}: {} path(s) with a newline or CR go as arguments, in {} run(s) after the list",
        parts
            .iter()
            .skip(1)
            .map(|p| p.paths.as_ref().map_or(0, Vec::len))
            .sum::<usize>(),
        parts.len() - 1
    );
    let (stops, progresses) = super::split::in_turn(stop, progress, parts.len());
    let mut runs = parts.into_iter().zip(stops).zip(progresses);
    let Some(((first, first_stop), first_progress)) = runs.next() else {
        return Box::pin(async { Outcome::nothing() });
    };
    // The first started now, as every run is (see `run::run`).
    let running = super::supervise::start(first, label.clone(), first_stop, first_progress);
    Box::pin(async move {
        let mut outcome = running.await;
        for ((part, stop), progress) in runs {
            if !outcome.result.arrived() {
                break;
            }
            outcome.absorb(super::supervise::start(part, label.clone(), stop, progress).await);
        }
        outcome
    })
}

/// The list without its paths that cannot be said on a line, then those in
/// groups that each go as arguments; `None` when the job is one run as it
/// is: its paths go as arguments, or none needs `--from0`, or one of those
/// cannot go as an argument either (it stays NUL-separated).
fn apart(job: &Job) -> Option<Vec<Job>> {
    let paths = job.paths.as_ref()?;
    let rules = job.deleting || job.sweeping;
    if !rules && (job.lists_as_args() || !job.needs_nul()) {
        return None;
    }
    let (odd, plain): (Vec<Vec<u8>>, Vec<Vec<u8>>) = paths
        .iter()
        .cloned()
        .partition(|path| path.iter().any(|b| *b == b'\n' || *b == b'\r'));
    let groups = if rules {
        // The rules of a deletion or a sweep with such a path go as
        // arguments (see `Job::argv`): cut only when they would not fit.
        rule_groups(&odd, super::listing::arg_max() / 4)?
    } else {
        super::listing::argument_groups(&job.source, &odd)?
    };
    let with = |paths: Vec<Vec<u8>>| Job {
        paths: Some(paths),
        ..job.clone()
    };
    let mut parts = Vec::with_capacity(groups.len() + 1);
    if !plain.is_empty() {
        parts.push(with(plain));
    }
    parts.extend(groups.into_iter().map(with));
    Some(parts)
}

/// The paths of a deletion or a sweep that hold a newline or a CR, cut into
/// groups whose rules fit in `budget` bytes of arguments; `None` when all fit
/// in one run. A path costs at most three rules of its length (its ancestors
/// with such a byte are counted in it), each with `--filter=+ `, a suffix, a
/// NUL and a pointer.
fn rule_groups(odd: &[Vec<u8>], budget: usize) -> Option<Vec<Vec<Vec<u8>>>> {
    let cost = |path: &Vec<u8>| 3 * (path.len() + 64);
    if odd.iter().map(cost).sum::<usize>() <= budget {
        return None;
    }
    let mut groups: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut total = 0;
    for path in odd {
        match groups.last_mut() {
            Some(group) if total + cost(path) <= budget => {
                total += cost(path);
                group.push(path.clone());
            }
            _ => {
                total = cost(path);
                groups.push(vec![path.clone()]);
            }
        }
    }
    Some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn listed(paths: Vec<Vec<u8>>) -> Job {
        Job {
            rsync: "/usr/bin/rsync".into(),
            source: "/srv/blog".into(),
            destination: "/mirror/blog".into(),
            paths: Some(paths),
            ..Job::default()
        }
    }

    fn long_list() -> Vec<Vec<u8>> {
        (0..4000)
            .map(|i| format!("{i:0400}").into_bytes())
            .collect()
    }

    #[test]
    fn newline_names_of_a_list_on_stdin_go_as_arguments_after_it() {
        let mut paths = long_list();
        paths.push(b"d/new\nline".to_vec());
        paths.push(b"cr\r".to_vec());
        let parts = apart(&listed(paths)).expect("cut");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].paths.as_ref().map(Vec::len), Some(4000));
        assert!(!parts[0].argv().contains(&OsString::from("--from0")));
        assert!(!parts[0].stdin().expect("a list").contains(&0));
        assert!(parts[1].lists_as_args());
        assert_eq!(
            parts[1].paths,
            Some(vec![b"d/new\nline".to_vec(), b"cr\r".to_vec()])
        );
    }

    #[test]
    fn deletions_with_more_newline_names_than_arguments_hold_are_cut() {
        let odd: Vec<Vec<u8>> = (0..10)
            .map(|i| format!("n\n{i:030}").into_bytes())
            .collect();
        let cost = 3 * (odd[0].len() + 64);
        assert_eq!(rule_groups(&odd, 10 * cost), None);
        let groups = rule_groups(&odd, 4 * cost).expect("cut");
        assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        let mut deletion = listed(odd);
        deletion.deleting = true;
        // A few go in one run, their rules as arguments.
        assert!(apart(&deletion).is_none());
    }

    #[test]
    fn a_list_that_goes_as_arguments_or_needs_no_nul_is_one_run() {
        assert!(apart(&listed(vec![b"new\nline".to_vec()])).is_none());
        assert!(apart(&listed(long_list())).is_none());
        assert!(apart(&Job::default()).is_none());
    }
}
