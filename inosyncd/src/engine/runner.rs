//! The seam between the engine and the processes it starts: "run this job, report
//! its progress and how it ended, stop it when asked". The daemon runs the real
//! rsync ([`RsyncRunner`], whose one spawn point also applies `--pretend`, the
//! layout check and the sandbox); the engine's tests use a scripted fake, so
//! every scheduling rule can be proved in milliseconds of virtual time without a
//! process.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{oneshot, watch};

use crate::rsync::{self, Job, Outcome, Progress};

/// A run in progress: resolves to its outcome.
pub type Running = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Runs the jobs the engine dispatches.
pub trait Runner: Send {
    /// Starts `job` now (before returning: a change must not wait for a task to be
    /// scheduled). `label` names the watch and target in log lines; a message on
    /// `stop` ends the run early (reported as [`rsync::RunResult::Interrupted`]); progress
    /// goes to `progress`.
    fn run(
        &mut self,
        job: Job,
        label: String,
        stop: oneshot::Receiver<()>,
        progress: watch::Sender<Option<Progress>>,
    ) -> Running;
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
}
