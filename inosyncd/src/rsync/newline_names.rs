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

use super::command::has_line_end;
use super::job::Job;
use super::outcome::{Outcome, Progress, RunResult};

/// Starts `job` (as `supervise::start` does), in several runs one after the
/// other when its list holds paths that cannot be said on a line.
pub(super) fn start(
    job: Job,
    label: String,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'static>> {
    let Some(Cut { parts, unplaceable }) = apart(&job) else {
        return Box::pin(super::supervise::start(job, label, stop, progress));
    };
    let odd: usize = parts
        .iter()
        .filter_map(|p| p.paths.as_ref())
        .flatten()
        .filter(|p| has_line_end(p))
        .count();
    tracing::debug!(
        "{label}: {odd} path(s) with a newline or CR go as arguments, {} held (too long \
         for one), in {} run(s)",
        unplaceable.len(),
        parts.len()
    );
    // Held: said neither on a line nor as an argument (`--from0` would make
    // rsync read the user's rule files NUL-separated).
    let held = (!unplaceable.is_empty()).then(|| {
        Outcome::bare(
            RunResult::Partial {
                cause: format!(
                    "{} path(s) with a newline or CR too long to go to rsync as an \
                     argument: held (rename them)",
                    unplaceable.len()
                ),
                held: unplaceable,
            },
            Some(0),
        )
    });
    let (stops, progresses) = super::split::in_turn(stop, progress, parts.len());
    let mut runs = parts.into_iter().zip(stops).zip(progresses);
    let Some(((first, first_stop), first_progress)) = runs.next() else {
        return Box::pin(async move { held.unwrap_or_else(Outcome::nothing) });
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
        if let Some(held) = held
            && outcome.result.arrived()
        {
            outcome.absorb(held);
        }
        outcome
    })
}

/// A job cut for paths a line cannot say.
struct Cut {
    /// The runs, one after the other.
    parts: Vec<Job>,
    /// Paths that go neither way: held.
    unplaceable: Vec<Vec<u8>>,
}

/// The list without its paths that cannot be said on a line, then those in
/// groups that each go as arguments (a deletion's or a sweep's: their rules);
/// `None` when the job is one run as it is: its paths go as arguments, or
/// none needs `--from0`, or a deletion's or sweep's rules all fit.
fn apart(job: &Job) -> Option<Cut> {
    let paths = job.paths.as_ref()?;
    let rules = job.deleting || job.sweeping;
    if !rules && (job.lists_as_args() || !job.needs_nul()) {
        return None;
    }
    // Most deletions and sweeps have no such path: nothing to cut or copy.
    if rules && !paths.iter().any(|path| has_line_end(path)) {
        return None;
    }
    let (odd, plain): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
        paths.iter().cloned().partition(|path| has_line_end(path));
    let budget = super::listing::arg_max() / 4;
    let (groups, unplaceable) = if rules {
        // The rules of a deletion or a sweep with such a path go as
        // arguments (see `Job::argv`): cut only when they would not fit.
        let cost = |path: &Vec<u8>| rule_cost(job, path);
        if odd.iter().map(cost).sum::<usize>() <= budget {
            return None;
        }
        let (fit, unplaceable): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            odd.into_iter().partition(|p| cost(p) <= budget);
        (greedy(fit, cost, budget), unplaceable)
    } else {
        let (fit, unplaceable): (Vec<Vec<u8>>, Vec<Vec<u8>>) = odd.into_iter().partition(|p| {
            super::listing::argument_groups(&job.source, std::slice::from_ref(p)).is_some()
        });
        let groups = super::listing::argument_groups(&job.source, &fit).unwrap_or_default();
        (groups, unplaceable)
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
    Some(Cut { parts, unplaceable })
}

/// What `path`'s rules that go as arguments cost of the kernel's limit in
/// a run of `job` (a deletion or a sweep): each rule with a newline or CR
/// (its ancestors' too, counted for each path: never less than the truth),
/// `--filter=+ `, its NUL and its pointer.
fn rule_cost(job: &Job, path: &[u8]) -> usize {
    job.rules_for(&[path.to_vec()])
        .unwrap_or_default()
        .iter()
        .filter(|rule| has_line_end(rule))
        .map(|rule| rule.len() + "--filter=+ ".len() + 1 + std::mem::size_of::<usize>())
        .sum()
}

/// `paths` in order, in groups of at most `budget` by `cost`.
fn greedy(
    paths: Vec<Vec<u8>>,
    cost: impl Fn(&Vec<u8>) -> usize,
    budget: usize,
) -> Vec<Vec<Vec<u8>>> {
    let mut groups: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut total = 0;
    for path in paths {
        let c = cost(&path);
        match groups.last_mut() {
            Some(group) if total + c <= budget => {
                total += c;
                group.push(path);
            }
            _ => {
                total = c;
                groups.push(vec![path]);
            }
        }
    }
    groups
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
        // Too long for an argument (PATH_MAX): held.
        let too_long = [b"x\n".as_slice(), &[b'y'; 4090]].concat();
        paths.push(too_long.clone());
        let cut = apart(&listed(paths)).expect("cut");
        assert_eq!(cut.parts.len(), 2);
        assert_eq!(cut.unplaceable, vec![too_long]);
        assert_eq!(cut.parts[0].paths.as_ref().map(Vec::len), Some(4000));
        assert!(!cut.parts[0].argv().contains(&OsString::from("--from0")));
        assert!(!cut.parts[0].stdin().expect("a list").contains(&0));
        assert!(cut.parts[1].lists_as_args());
        assert_eq!(
            cut.parts[1].paths,
            Some(vec![b"d/new\nline".to_vec(), b"cr\r".to_vec()])
        );
    }

    #[test]
    fn deletions_with_more_newline_rules_than_arguments_hold_are_cut() {
        let mut deletion = listed(Vec::new());
        deletion.deleting = true;
        // Deep below a directory whose name holds a newline: every ancestor
        // below it is a rule of its own (found by a review: the estimate of
        // three rules a path let such a run fail to start, E2BIG).
        let deep: Vec<u8> = [b"x\ny".as_slice()]
            .into_iter()
            .chain(std::iter::repeat_n(b"/dd".as_slice(), 1300))
            .collect::<Vec<_>>()
            .concat();
        let cost = rule_cost(&deletion, &deep);
        assert!(cost > 1300 * deep.len() / 2, "{cost}");
        let shallow: Vec<Vec<u8>> = (0..10)
            .map(|i| format!("n\n{i:030}").into_bytes())
            .collect();
        let one = rule_cost(&deletion, &shallow[0]);
        assert_eq!(
            greedy(shallow.clone(), |p| rule_cost(&deletion, p), 4 * one)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [4, 4, 2]
        );
        // A few go in one run, their rules as arguments.
        deletion.paths = Some(shallow);
        assert!(apart(&deletion).is_none());
        // One whose rules alone pass the limit is held.
        deletion.paths = Some(vec![deep.clone(), b"plain".to_vec()]);
        let cut = apart(&deletion).expect("cut");
        assert_eq!(cut.unplaceable, vec![deep]);
        assert_eq!(cut.parts.len(), 1);
        assert_eq!(cut.parts[0].paths, Some(vec![b"plain".to_vec()]));
    }

    #[test]
    fn a_list_that_goes_as_arguments_or_needs_no_nul_is_one_run() {
        assert!(apart(&listed(vec![b"new\nline".to_vec()])).is_none());
        assert!(apart(&listed(long_list())).is_none());
        assert!(apart(&Job::default()).is_none());
    }
}
