//! The seam between the engine and the processes it starts: "run this job, report
//! its progress and how it ended, stop it when asked". The daemon runs the real
//! rsync ([`RsyncRunner`]) or only logs what it would run ([`PretendRunner`], for
//! `--pretend`); the engine's tests use a scripted fake, so every scheduling rule
//! can be proved in milliseconds of virtual time without a process.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::rsync::{self, Job, Outcome, Progress, RunResult, display_argv};

/// A run in progress: resolves to its outcome.
pub type Running = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Runs the jobs the engine dispatches.
pub trait Runner: Send {
    /// Starts `job` now (before returning: a change must not wait for a task to be
    /// scheduled). `label` names the watch and target in log lines; a message on
    /// `stop` ends the run early (reported as [`RunResult::Interrupted`]); progress
    /// goes to `progress`.
    fn run(
        &mut self,
        job: Job,
        label: String,
        stop: oneshot::Receiver<()>,
        progress: watch::Sender<Option<Progress>>,
    ) -> Running;

    /// Whether the jobs need the rsync binary to exist (a reload checks it then).
    fn needs_rsync(&self) -> bool {
        true
    }
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

/// `--pretend`: logs each command line (and its path list) and reports success.
pub struct PretendRunner;

impl Runner for PretendRunner {
    fn run(
        &mut self,
        job: Job,
        label: String,
        _stop: oneshot::Receiver<()>,
        _progress: watch::Sender<Option<Progress>>,
    ) -> Running {
        let files = job.paths.as_ref().map(Vec::len);
        tracing::info!(
            "{label}: would run ({}): {}",
            files.map_or("whole tree".to_string(), |n| format!("{n} paths")),
            display_argv(&job.argv())
        );
        for m in &job.moves {
            tracing::info!(
                "{label}:   would rename {} -> {} on the target",
                String::from_utf8_lossy(&m.from),
                String::from_utf8_lossy(&m.to)
            );
        }
        let mut job = job;
        job.add_failed_moves(&vec![false; job.moves.len()]);
        for path in job.paths.iter().flatten() {
            tracing::info!("{label}:   {}", String::from_utf8_lossy(path));
        }
        Box::pin(std::future::ready(Outcome {
            result: RunResult::Synced,
            elapsed: Duration::ZERO,
            files,
            bytes_sent: None,
            exit_code: Some(0),
            named: Vec::new(),
            vanished: Vec::new(),
            renamed: 0,
            refused: Vec::new(),
            deletions_skipped: false,
        }))
    }

    fn needs_rsync(&self) -> bool {
        false
    }
}
