//! The seam between the engine and the processes it starts: "run this job, report
//! its progress and how it ended, stop it when asked". The daemon runs the real
//! rsync ([`RsyncRunner`], whose one spawn point also applies `--pretend`, the
//! layout check and the sandbox); the engine's tests use a scripted fake, so
//! every scheduling rule can be proved in milliseconds of virtual time without a
//! process.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{oneshot, watch};

use crate::rsync::{self, CompareError, Difference, Job, Outcome, Progress};

/// A run in progress: resolves to its outcome.
pub type Running = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A comparison (`verify`) not started yet: starts when first polled, and
/// resolves to what differs, or why it could not compare. Dropping it stops it.
pub type Comparing = Pin<Box<dyn Future<Output = Result<Vec<Difference>, CompareError>> + Send>>;

/// Runs the jobs the engine dispatches.
pub trait Runner: Send {
    /// Starts `job` now (on a thread of its own, not when a task is first
    /// polled: a change must not wait for a task to be scheduled, nor the
    /// engine for a child's exec). `label` names the watch and target in log lines; a message on
    /// `stop` ends the run early (reported as [`rsync::RunResult::Interrupted`]); progress
    /// goes to `progress`.
    fn run(
        &mut self,
        job: Job,
        label: String,
        stop: oneshot::Receiver<()>,
        progress: watch::Sender<Option<Progress>>,
    ) -> Running;

    /// The dry run of `job` (a full sync) that `verify` compares with
    /// (`checksum`: by content). Lazy: the comparisons of one verify run one
    /// after the other.
    fn compare(&self, job: Job, checksum: bool) -> Comparing;
}

/// The real thing: one rsync process per job.
pub struct RsyncRunner;

impl Runner for RsyncRunner {
    fn run(
        &mut self,
        job: Job,
        label: String,
        stop: oneshot::Receiver<()>,
        progress: watch::Sender<Option<Progress>>,
    ) -> Running {
        Box::pin(rsync::run(job, label, stop, progress))
    }

    fn compare(&self, job: Job, checksum: bool) -> Comparing {
        Box::pin(async move { rsync::compare(&job, checksum).await })
    }
}
