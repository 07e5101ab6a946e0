//! One rsync process from start to end: started through the one spawn point
//! (`launch.rs`), fed its path list, its stderr logged, watched (a stop asked
//! for, a fifo it is stuck opening, no data moving), and its ending read by the
//! classifier (`classify/`) into the outcome.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, watch};

use super::classify::{Confinement, Context, Ending, Listed, classify};
use super::command::display_argv;
use super::job::Job;
use super::launch::{Kind, Launched};
use super::outcome::{Outcome, Progress};
use super::stderr::Stderr;
use super::stdout_file::OutputFile;
use super::watchdog::{Watchdog, stop_child};
use crate::config::checks::is_local_target;

/// Starts rsync now (through the one spawn point, `launch.rs`) and returns the
/// future that supervises it.
pub(super) fn start(
    job: Job,
    label: String,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
) -> impl Future<Output = Outcome> + Send + 'static {
    let started = Instant::now();
    let argv = job.argv();
    let list = job.stdin();
    let files = match (&job.paths, job.part) {
        (Some(paths), _) => format!("{} paths", paths.len()),
        (None, super::job::FullPart::RootAttributes) => "the root's attributes".to_string(),
        (None, _) => "whole tree".to_string(),
    };
    tracing::debug!("{label}: running ({files}): {}", display_argv(&argv));
    // Started now, on a thread of its own: a fork waits for its child's exec,
    // and sixteen targets' rsyncs started one after the other on the
    // engine's thread waited in turn (about 3 ms each on 2 busy cores).
    let spawning = {
        let (job, list, label) = (job.clone(), list.clone(), label.clone());
        tokio::task::spawn_blocking(move || {
            job.launch
                .spawn(Kind::Transfer, &job, &argv, list.as_deref(), &label)
        })
    };
    let run = Supervised {
        list,
        job,
        label,
        started,
        progress,
    };
    async move {
        let launched = spawning.await.unwrap_or_else(|e| {
            Launched::NotStarted(format!("the thread starting rsync failed: {e}"))
        });
        supervise(launched, run, stop).await
    }
}

/// What the supervising task needs to know about its run.
struct Supervised {
    list: Option<Vec<u8>>,
    job: Job,
    label: String,
    started: Instant,
    progress: watch::Sender<Option<Progress>>,
}

/// How the process ended, with what it printed.
struct Ended {
    ending: Ending,
    stderr: Stderr,
    confinement: Confinement,
    bytes_sent: Option<u64>,
}

async fn supervise(launched: Launched, run: Supervised, stop: oneshot::Receiver<()>) -> Outcome {
    let not_run = |ending| Ended {
        ending,
        stderr: Stderr::default(),
        confinement: Confinement::None,
        bytes_sent: None,
    };
    let ended = match launched {
        Launched::Running {
            child,
            confinement,
            output,
        } => watch_child(child, confinement, output, &run, stop).await,
        Launched::Pretended => not_run(Ending::Pretended),
        Launched::Refused(why) => not_run(Ending::Refused(why)),
        Launched::NotStarted(why) => not_run(Ending::NotStarted(why)),
        Launched::SourceChanged(why) => not_run(Ending::SourceChanged(why)),
    };
    outcome(&run, ended)
}

/// Logs and keeps what rsync says on stderr. How rsync's processes report a
/// signal: ours when we stop it (a speed change, a missing source, shutdown),
/// said at INFO when the run ends; anyone else's shows as a failure with these
/// lines kept. rsync names itself on most of its lines (`rsync: [Receiver]
/// mkdir ...`, `rsync error: ...`): said once, not twice.
async fn keep_stderr(stderr: tokio::process::ChildStderr, label: String) -> Stderr {
    let mut kept = Stderr::default();
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let shown = if line.starts_with("rsync") {
            line.clone()
        } else {
            format!("rsync: {line}")
        };
        if line.contains("received SIGUSR1") || line.contains("received SIGINT, SIGTERM") {
            tracing::debug!("{label}: {shown}");
        } else {
            tracing::warn!("{label}: {shown}");
        }
        kept.push(line);
    }
    kept
}

/// Stops what is left of the run's process group. After a stop the rest is on
/// its way out already (it got SIGTERM too); after an exit of its own,
/// nothing should be left.
async fn end_what_is_left(
    group: u32,
    status: Option<&std::process::ExitStatus>,
    stopped: bool,
    label: &str,
) {
    if !super::process_group::end_group(group).await || stopped {
        return;
    }
    // Killed by a signal: a wrapper or a sender that died, leaving the rest.
    // An exit of its own on an error may not wait for its helpers (rsync
    // exits on a fatal error without reaping them): nothing unusual.
    let killed = status.is_some_and(|s| std::os::unix::process::ExitStatusExt::signal(s).is_some());
    if killed {
        tracing::warn!(
            "{label}: rsync's first process was killed while processes of its run still \
             ran (a wrapper that died, a receiver left by a killed sender); stopping them"
        );
    } else {
        tracing::debug!(
            "{label}: processes of the run were left after rsync exited; stopping them"
        );
    }
}

/// Feeds the child its list, reads its output, and waits for it to end, to be
/// stopped (`stop`) or to hang (the watchdog).
async fn watch_child(
    mut child: tokio::process::Child,
    confinement: Confinement,
    output: Option<OutputFile>,
    run: &Supervised,
    mut stop: oneshot::Receiver<()>,
) -> Ended {
    let writer = match (child.stdin.take(), run.list.clone()) {
        (Some(mut stdin), Some(list)) => Some(tokio::spawn(async move {
            // rsync may exit early (bad destination); a broken pipe here is then
            // expected and its exit code tells the real story.
            let _ = stdin.write_all(&list).await;
            let _ = stdin.shutdown().await;
        })),
        _ => None,
    };
    // A memory file is read once more when rsync has exited (`exited`); a
    // pipe to its end.
    let (exited, on_exit) = oneshot::channel();
    let stdout_stats = match output {
        Some(file) => Some(file.read(run.progress.clone(), on_exit)),
        None => child
            .stdout
            .take()
            .map(|stdout| super::stdout::read(stdout, run.progress.clone())),
    };
    let stderr_lines = child
        .stderr
        .take()
        .map(|stderr| tokio::spawn(keep_stderr(stderr, run.label.clone())));
    let mut interrupted = false;
    let mut hung = None;
    let mut on_fifo = false;
    let mut fifo_seen = 0u32;
    let group = child.id();
    let mut watchdog = Watchdog::new(group, run.job.io_timeout);
    let mut next_watch = tokio::time::Instant::now() + watchdog.period;
    let mut next_fifo_check = tokio::time::Instant::now() + FIFO_CHECK;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            // A stop asked for, or its sender dropped unsent: the run's pair
            // is gone (its watch removed with `--discard`), and nobody takes
            // what it would send. Either way the receiver has completed and is
            // never polled again.
            _ = &mut stop => {
                interrupted = true;
                break stop_child(&mut child).await;
            }
            // Twice in a row, a second apart: an open that blocks for good.
            () = tokio::time::sleep_until(next_fifo_check) => {
                next_fifo_check += FIFO_CHECK;
                let waiting = child.id().is_some_and(super::stuck::waiting_on_a_fifo);
                fifo_seen = if waiting { fifo_seen + 1 } else { 0 };
                if fifo_seen >= 2 {
                    tracing::warn!(
                        "{}: rsync is stuck opening a fifo that took a file's place; stopping \
                         it, the next run lists it as the special file it is",
                        run.label
                    );
                    on_fifo = true;
                    break stop_child(&mut child).await;
                }
            }
            () = tokio::time::sleep_until(next_watch) => {
                next_watch += watchdog.period;
                if watchdog.stalled() {
                    tracing::error!(
                        "{}: rsync moved no data for {:?}; stopping it (watchdog)",
                        run.label,
                        watchdog.limit
                    );
                    hung = Some(watchdog.limit);
                    break stop_child(&mut child).await;
                }
            }
        }
    };
    // After a stop the rest of the group is on its way out already (it got
    // SIGTERM too); after an exit of its own, nothing should be left.
    let stopped = interrupted || on_fifo || hung.is_some();
    if let Some(group) = group {
        end_what_is_left(group, status.as_ref().ok(), stopped, &run.label).await;
    }
    let _ = exited.send(());
    let bytes_sent = output_of(stdout_stats, None).await;
    let stderr = output_of(stderr_lines, Stderr::default()).await;
    output_of(writer, ()).await;
    let ending = match (status, hung) {
        _ if interrupted => Ending::Stopped,
        _ if on_fifo => Ending::StuckOnFifo,
        (_, Some(limit)) => Ending::Hung(limit),
        (Ok(status), None) => match status.code() {
            Some(code) => Ending::Exited(code),
            None => Ending::Signalled(status.to_string()),
        },
        (Err(e), None) => Ending::Lost(e.to_string()),
    };
    Ended {
        ending,
        stderr,
        confinement,
        bytes_sent,
    }
}

/// How often a running rsync is checked for an open blocked on a fifo (see
/// `stuck`).
const FIFO_CHECK: Duration = Duration::from_secs(1);

/// How long rsync's output is read after it exited: a process it left behind
/// (a remote shell's helper, a wrapper's child) may hold its pipes open.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// What a task reading rsync's output got, or `fallback` when it did not end
/// within [`OUTPUT_GRACE`] of the exit.
async fn output_of<T: Send + 'static>(task: Option<tokio::task::JoinHandle<T>>, fallback: T) -> T {
    let Some(task) = task else {
        return fallback;
    };
    let abort = task.abort_handle();
    match tokio::time::timeout(OUTPUT_GRACE, task).await {
        Ok(Ok(value)) => value,
        Ok(Err(_)) => fallback,
        Err(_) => {
            abort.abort();
            fallback
        }
    }
}

/// The run's outcome: what the classifier makes of its ending, with what the
/// log line reports.
fn outcome(run: &Supervised, ended: Ended) -> Outcome {
    let job = &run.job;
    let context = Context {
        source: &job.source,
        destination: &job.destination,
        local: is_local_target(&job.destination),
        remote_shell: super::ssh_reuse::uses_remote_shell(&job.destination),
        listed: match &job.paths {
            None => Listed::Whole,
            // A part of a full sync (`into_empty`) is read as the full sync.
            Some(_) if job.part == super::job::FullPart::Trees => Listed::Whole,
            Some(paths) if job.walk => Listed::Walked(paths),
            Some(_) if job.recursive && job.keep_deleted => Listed::KeptTrees,
            Some(_) if job.recursive => Listed::Trees,
            Some(paths) => Listed::Paths(paths),
        },
        guarded: job.delete_nothing,
        confinement: ended.confinement,
        target_read_only: super::classify::read_only(&job.destination),
    };
    let classified = classify(&ended.ending, &ended.stderr, &context);
    Outcome {
        result: classified.result,
        elapsed: run.started.elapsed(),
        files: job.paths.as_ref().map(Vec::len),
        bytes_sent: ended.bytes_sent,
        exit_code: match ended.ending {
            Ending::Exited(code) => Some(code),
            Ending::Pretended => Some(0),
            _ => None,
        },
        vanished: classified.vanished,
        renamed: 0,
        refused: classified.refused_beside,
        deletions_skipped: ended.stderr.deletions_skipped(),
        too_deep: ended.stderr.too_deep(&job.source),
        unswept: Vec::new(),
        swept_all: false,
        kept_partial: ended.stderr.partial_kept(&job.source, &job.destination),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsync::RunResult;

    /// A child that cannot be started is a failed run whose cause names the
    /// binary; one the layout check refused never ran at all.
    #[tokio::test]
    async fn runs_that_never_started_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().canonicalize().unwrap();
        let mut job = Job {
            rsync: source.join("no-such-rsync"),
            source: source.clone(),
            destination: format!("{}/mirror/", source.display()),
            speed: 0,
            excludes: Vec::new(),
            extra: Vec::new(),
            rsh: None,
            io_timeout: Duration::ZERO,
            delete_nothing: false,
            keep_deleted: false,
            compare_contents: false,
            paths: None,
            moves: Vec::new(),
            trees: Vec::new(),
            split: 1,
            ..Job::default()
        };
        let (_stop, stopped) = oneshot::channel();
        let (progress, _) = watch::channel(None);
        let refused = start(job.clone(), "t".into(), stopped, progress).await;
        assert!(
            matches!(&refused.result, RunResult::Refused { cause } if cause.contains("is inside")),
            "{refused:?}"
        );
        job.destination = "/nonexistent-inosync-mirror/".into();
        let (_stop, stopped) = oneshot::channel();
        let (progress, _) = watch::channel(None);
        let missing = start(job, "t".into(), stopped, progress).await;
        assert!(
            matches!(&missing.result, RunResult::Failed { cause, .. } if cause.contains("no-such-rsync")),
            "{missing:?}"
        );
    }

    /// A run whose owner is gone (its watch removed with `--discard` while it
    /// ran: the stop's sender dropped unsent) is stopped, and its outcome
    /// comes back. The stop was polled again after it had completed, a
    /// second later, which panicked the run's task: its slot was never given
    /// back (found by a black-box attack).
    #[tokio::test]
    async fn a_run_whose_owner_is_gone_is_stopped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().canonicalize().unwrap().join("src");
        std::fs::create_dir(&source).unwrap();
        let mirror = tempfile::tempdir().unwrap();
        let slow = dir.path().canonicalize().unwrap().join("slow-rsync");
        std::fs::write(&slow, "#!/bin/sh\nsleep 30\n").unwrap();
        std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
        let job = Job {
            rsync: slow,
            source,
            destination: format!("{}/", mirror.path().display()),
            ..Job::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (progress, _) = watch::channel(None);
        let run = tokio::spawn(start(job, "t".into(), stopped, progress));
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(stop);
        let outcome = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the run ended")
            .expect("the run's task did not panic");
        assert_eq!(outcome.result, RunResult::Interrupted, "{outcome:?}");
    }
}
