//! A scripted runner: records each job and ends it when the test says so (or
//! when the engine stops it), so a test decides every outcome and its timing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::engine::runner::{Comparing, Runner, Running};
use crate::rsync::{CompareError, Difference, Job, Outcome, Progress, RunResult, class_of};

/// One job the engine started.
struct Run {
    job: Job,
    finish: Option<oneshot::Sender<Outcome>>,
}

/// The runs started so far, shared between the runner and the test.
#[derive(Clone, Default)]
pub struct Runs(Arc<Mutex<Vec<Run>>>);

impl Runs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Run>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    pub fn job(&self, i: usize) -> Job {
        self.lock()[i].job.clone()
    }

    /// Ends run `i`; a run already ended (or stopped) is left alone.
    pub fn finish(&self, i: usize, outcome: Outcome) {
        if let Some(finish) = self.lock()[i].finish.take() {
            let _ = finish.send(outcome);
        }
    }

    /// Runs not ended yet (by the test or by a stop).
    pub fn open(&self) -> usize {
        self.lock()
            .iter()
            .filter(|r| r.finish.as_ref().is_some_and(|f| !f.is_closed()))
            .count()
    }
}

/// What `verify`'s dry runs find, per destination (nothing by default), and
/// how many were started.
#[derive(Clone, Default)]
pub struct Comparisons(Arc<Mutex<Answers>>);

/// Dry runs started, and the answers per destination (the last one counts).
type Answers = (usize, Vec<(String, Result<Vec<Difference>, String>)>);

impl Comparisons {
    fn lock(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The dry runs to `destination` find `result` from now on.
    pub fn answer(&self, destination: &str, result: Result<Vec<Difference>, String>) {
        self.lock().1.push((destination.to_string(), result));
    }

    /// Dry runs started so far.
    pub fn count(&self) -> usize {
        self.lock().0
    }
}

/// The runner the engine gets in tests.
#[derive(Default)]
pub struct FakeRunner {
    pub runs: Runs,
    pub comparisons: Comparisons,
}

impl Runner for FakeRunner {
    fn run(
        &mut self,
        job: Job,
        _label: String,
        stop: oneshot::Receiver<()>,
        _progress: watch::Sender<Option<Progress>>,
    ) -> Running {
        let files = job.paths.as_ref().map(Vec::len);
        let (finish, finished) = oneshot::channel();
        self.runs.lock().push(Run {
            job,
            finish: Some(finish),
        });
        Box::pin(async move {
            tokio::select! {
                outcome = finished => outcome.unwrap_or_else(|_| interrupted(files)),
                Ok(()) = stop => interrupted(files),
            }
        })
    }

    fn compare(&self, job: Job, _checksum: bool) -> Comparing {
        let comparisons = self.comparisons.clone();
        Box::pin(async move {
            let mut state = comparisons.lock();
            state.0 += 1;
            state
                .1
                .iter()
                .rev()
                .find(|(destination, _)| *destination == job.destination)
                .map_or(Ok(Vec::new()), |(_, result)| {
                    result.clone().map_err(CompareError::Failed)
                })
        })
    }
}

fn interrupted(files: Option<usize>) -> Outcome {
    Outcome {
        result: RunResult::Interrupted,
        files,
        ..synced()
    }
}

/// A run that arrived.
pub fn synced() -> Outcome {
    Outcome {
        elapsed: Duration::from_millis(5),
        bytes_sent: Some(100),
        exit_code: Some(0),
        ..Outcome::bare(RunResult::Synced, None)
    }
}

/// A run rsync ended with `code`, classified as the real runner does when its
/// errors name nothing of the batch.
pub fn failed(code: i32) -> Outcome {
    Outcome {
        result: RunResult::Failed {
            class: class_of(code),
            cause: format!("rsync exited with {code}"),
        },
        exit_code: Some(code),
        ..synced()
    }
}

/// A run that synced all but `held` (exit 23 naming them).
pub fn partial(held: &[&str]) -> Outcome {
    Outcome {
        result: RunResult::Partial {
            held: held.iter().map(|p| p.as_bytes().to_vec()).collect(),
            cause: "rsync exited with 23 (partial transfer due to error)".into(),
        },
        exit_code: Some(23),
        ..synced()
    }
}
