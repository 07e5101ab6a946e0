//! Runs one rsync process: feeds it the path list, logs its stderr, and reports how
//! it ended.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{oneshot, watch};

use super::command::{Job, display_argv};
use super::exit_code::{first_retry, meaning};
use super::stderr::Stderr;

/// How one run ended, as the engine branches on it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    /// The batch arrived (exit 0, or 24: files vanished mid-run, whose deletion
    /// events are queued for the next batch).
    Synced,
    /// Stopped on request (e.g. to restart with a new `--bwlimit`): the batch did
    /// not complete, but nothing failed either.
    Interrupted,
    /// It did not arrive: why, and how long to wait before the first retry.
    Failed {
        /// rsync's exit status with its meaning and the stderr lines naming the cause.
        cause: String,
        /// After a failure of this kind: the wait before the first retry.
        first_retry: Duration,
    },
}

/// How one run ended, with what the log line of the sync reports.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Synced, interrupted, or failed with its cause.
    pub result: RunResult,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Changed paths handed to rsync; `None` for a full sync.
    pub files: Option<usize>,
    /// Bytes rsync says it sent (`--info=stats1`), when it got that far.
    pub bytes_sent: Option<u64>,
    /// rsync's exit code, when it exited by itself.
    pub exit_code: Option<i32>,
    /// Paths (relative to the source root) that rsync's error lines name.
    pub named: Vec<Vec<u8>>,
    /// Paths (relative to the source root) rsync saw vanish mid-run.
    pub vanished: Vec<Vec<u8>>,
    /// Moves done as renames on the target before the transfer.
    pub renamed: usize,
    /// What the Landlock sandbox refused (writes outside the mirror that an
    /// rsync option asked for): the transfer itself succeeded, and the refusal
    /// is reported, not retried.
    pub refused: Vec<String>,
    /// rsync skipped its deletions because of an I/O error (a full sync or a
    /// tree compared whole left extras on the target).
    pub deletions_skipped: bool,
}

/// How far a running transfer has got, as rsync reports it (`--info=progress2`).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Bytes transferred so far in this run.
    pub bytes_done: u64,
    /// Percent of this run's bytes done.
    pub percent: u8,
    /// Current rate, as rsync prints it.
    pub rate: String,
    /// Estimated time left, as rsync prints it.
    pub eta: String,
}

/// How often a running rsync is checked for an open blocked on a fifo.
const FIFO_CHECK: Duration = Duration::from_secs(1);

/// How long rsync gets to exit after SIGTERM (it keeps its partial file then)
/// before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What starting rsync gave.
enum Launch {
    Failed(String),
    Running(tokio::process::Child),
}

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
            None => Outcome::empty(),
        };
        if outcome.result != RunResult::Synced {
            return outcome;
        }
        let groups = match (&job.paths, job.split) {
            (Some(paths), parts) if parts > 1 && paths.len() >= super::split::SPLIT_MIN_PATHS => {
                super::split::by_directory(paths.clone(), parts)
            }
            _ => Vec::new(),
        };
        let transferred = if job.paths.as_ref().is_some_and(Vec::is_empty) {
            Outcome::empty()
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
            if outcome.result != RunResult::Synced {
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

impl Outcome {
    /// The outcome of a run that had nothing to do.
    fn empty() -> Outcome {
        Outcome {
            result: RunResult::Synced,
            elapsed: Duration::ZERO,
            files: Some(0),
            bytes_sent: Some(0),
            exit_code: Some(0),
            named: Vec::new(),
            vanished: Vec::new(),
            renamed: 0,
            refused: Vec::new(),
            deletions_skipped: false,
        }
    }

    /// Adds a later run of the same batch: the batch is synced only when every
    /// run was; the first one that was not decides its result.
    fn absorb(&mut self, other: Outcome) {
        if self.result == RunResult::Synced && other.result != RunResult::Synced {
            self.result = other.result;
            self.exit_code = other.exit_code;
        }
        self.elapsed += other.elapsed;
        self.files = match (self.files, other.files) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.bytes_sent = match (self.bytes_sent, other.bytes_sent) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.named.extend(other.named);
        self.vanished.extend(other.vanished);
        self.refused.extend(other.refused);
        self.deletions_skipped |= other.deletions_skipped;
    }
}

/// Starts rsync now and returns the future that supervises it.
fn start(
    job: Job,
    label: String,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
) -> impl Future<Output = Outcome> + Send + 'static {
    let started = Instant::now();
    let argv = job.argv();
    let list = job.stdin();
    let files = job
        .paths
        .as_ref()
        .map_or("whole tree".to_string(), |p| format!("{} paths", p.len()));
    tracing::debug!("{label}: running ({files}): {}", display_argv(&argv));
    let launch = match spawn(&argv, list.is_some(), &job) {
        Ok(child) => Launch::Running(child),
        Err(e) => Launch::Failed(format!("cannot start {}: {e}", job.rsync.display())),
    };
    let run = Supervised {
        list,
        source: job.source.clone(),
        destination: job.destination.clone(),
        io_timeout: job.io_timeout,
        label,
        started,
        files: job.paths.as_ref().map(Vec::len),
        progress,
        sandboxed: job.sandbox.is_some(),
    };
    supervise(launch, run, stop)
}

/// What the supervising task needs to know about its run.
struct Supervised {
    list: Option<Vec<u8>>,
    source: std::path::PathBuf,
    destination: String,
    io_timeout: Duration,
    label: String,
    started: Instant,
    files: Option<usize>,
    progress: watch::Sender<Option<Progress>>,
    sandboxed: bool,
}

fn spawn(
    argv: &[std::ffi::OsString],
    with_list: bool,
    job: &Job,
) -> std::io::Result<tokio::process::Child> {
    let mut command = Command::new(&argv[0]);
    // The only hook between fork and exec is the sandbox's (a hook forces fork()
    // instead of posix_spawn()). An rsync orphaned by a crashed daemon finishes
    // on its own; the restart's full sync makes the target right whatever it did.
    match &job.sandbox {
        Some(domain) => domain.confine(&mut command),
        None if job.sandbox_required => {
            return Err(std::io::Error::other(
                "sandbox = \"required\" and no Landlock domain could be built for this run",
            ));
        }
        None => {}
    }
    command
        // Its own process group, so a stop reaches every process of the run.
        .process_group(0)
        .args(&argv[1..])
        // What rsync prints is parsed (byte counts, progress, causes, names): in
        // the C locale, whatever the daemon's own.
        .env("LC_ALL", "C")
        .stdin(if with_list {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
}

async fn supervise(launch: Launch, run: Supervised, mut stop: oneshot::Receiver<()>) -> Outcome {
    let Supervised {
        list,
        source,
        destination,
        io_timeout,
        label,
        started,
        files,
        progress,
        sandboxed,
    } = run;
    let mut child = match launch {
        Launch::Failed(cause) => {
            return Outcome {
                result: RunResult::Failed {
                    cause,
                    first_retry: first_retry(Some(127)),
                },
                elapsed: started.elapsed(),
                files,
                bytes_sent: None,
                exit_code: None,
                named: Vec::new(),
                vanished: Vec::new(),
                renamed: 0,
                refused: Vec::new(),
                deletions_skipped: false,
            };
        }
        Launch::Running(child) => child,
    };
    let writer = match (child.stdin.take(), list) {
        (Some(mut stdin), Some(list)) => Some(tokio::spawn(async move {
            // rsync may exit early (bad destination); a broken pipe here is then
            // expected and its exit code tells the real story.
            let _ = stdin.write_all(&list).await;
            let _ = stdin.shutdown().await;
        })),
        _ => None,
    };
    // stdout carries rsync's closing statistics; any -v output the user asked for
    // is read too (and dropped), so rsync never blocks on a full pipe.
    let stdout_stats = child.stdout.take().map(|mut stdout| {
        tokio::spawn(async move {
            // Progress lines end in '\r', the statistics in '\n'.
            let mut sent = None;
            let mut pending = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&chunk[..n]);
                while let Some(end) = pending.iter().position(|b| *b == b'\r' || *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line);
                    if let Some(bytes) = parse_sent(&line) {
                        sent = Some(bytes);
                    } else if let Some(now) = parse_progress(&line) {
                        progress.send_replace(Some(now));
                    }
                }
                // A line without an end this long is not rsync's: drop it.
                if pending.len() > 64 * 1024 {
                    pending.clear();
                }
            }
            sent
        })
    });
    let stderr_lines = child.stderr.take().map(|stderr| {
        let label = label.clone();
        tokio::spawn(async move {
            let mut kept = Stderr::default();
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                // How rsync's processes report a signal: ours when we stop it (a
                // speed change, a missing source, shutdown), said at INFO when the
                // run ends; anyone else's shows as a failure with these lines kept.
                if line.contains("received SIGUSR1") || line.contains("received SIGINT, SIGTERM") {
                    tracing::debug!("{label}: rsync: {line}");
                } else {
                    tracing::warn!("{label}: rsync: {line}");
                }
                kept.push(line);
            }
            kept
        })
    });
    let mut interrupted = false;
    let mut hung = false;
    let mut on_fifo = false;
    let mut fifo_seen = 0u32;
    let mut watchdog = Watchdog::new(child.id(), io_timeout);
    let mut next_watch = tokio::time::Instant::now() + watchdog.period;
    let mut next_fifo_check = tokio::time::Instant::now() + FIFO_CHECK;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            Ok(()) = &mut stop => {
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
                        "{label}: rsync is stuck opening a fifo that took a file's place; \
                         stopping it, the next run lists it as the special file it is"
                    );
                    on_fifo = true;
                    break stop_child(&mut child).await;
                }
            }
            () = tokio::time::sleep_until(next_watch) => {
                next_watch += watchdog.period;
                if watchdog.stalled() {
                    tracing::error!(
                        "{label}: rsync moved no data for {:?}; stopping it (watchdog)",
                        watchdog.limit
                    );
                    hung = true;
                    break stop_child(&mut child).await;
                }
            }
        }
    };
    let bytes_sent = output_of(stdout_stats, None).await;
    let stderr = output_of(stderr_lines, Stderr::default()).await;
    output_of(writer, ()).await;
    let elapsed = started.elapsed();
    let code = status.as_ref().ok().and_then(|s| s.code());
    let error = match status {
        _ if interrupted => None,
        _ if hung => Some(format!(
            "rsync hung: no data moved for {:?}; stopped by the watchdog",
            watchdog.limit
        )),
        _ if on_fifo => {
            Some("rsync was stuck opening a fifo that took a file's place mid-run; stopped".into())
        }
        Ok(status) if status.success() => None,
        // Files that vanished mid-run have their own deletion events queued: the
        // next batch deals with them, so this run did its job.
        Ok(status) if status.code() == Some(24) => None,
        Ok(status) => Some(match status.code() {
            Some(code) => {
                let cause = stderr.cause();
                let detail = if cause.is_empty() {
                    String::new()
                } else {
                    format!(": {cause}")
                };
                format!("rsync exited with {code} ({}){detail}", meaning(code))
            }
            None => format!("rsync was killed by a signal ({status})"),
        }),
        Err(e) => Some(format!("cannot wait for rsync: {e}")),
    };
    // Sandboxed, and every error is the sandbox refusing a write outside the
    // mirror: the run did what it may do; retrying would be refused again. A
    // run that succeeded despite a refusal (rsync goes on without its log file)
    // reports it all the same.
    let refused = match (&error, sandboxed) {
        (Some(_), true) if code == Some(23) => stderr.sandbox_refusals(&destination),
        (None, true) => Some(stderr.refusal_lines(&destination)).filter(|l| !l.is_empty()),
        _ => None,
    };
    let refused_any = refused.is_some();
    let error = if refused_any { None } else { error };
    // Some of it refused, and the run failed for that: say so, and retry as for a
    // misconfiguration (the same option is refused again until it is changed).
    let sandbox_failure = error.is_some() && sandboxed && stderr.any_sandbox_refusal(&destination);
    let error = error.map(|cause| {
        if sandbox_failure {
            format!(
                "refused by the sandbox (rsync may write only below its target; an rsync_args \
                 option reaches outside the mirror): {cause}"
            )
        } else {
            cause
        }
    });
    // A sender that aborted because the tree changed under it raced the source:
    // retry soon, as for any transient error, not after the 30 s of a misconfig.
    let retry_class = if code == Some(2) && stderr.sender_raced() {
        Some(23)
    } else if sandbox_failure {
        Some(1)
    } else {
        code
    };
    let result = match error {
        _ if interrupted => RunResult::Interrupted,
        None => RunResult::Synced,
        Some(cause) => RunResult::Failed {
            cause,
            first_retry: first_retry(retry_class),
        },
    };
    Outcome {
        result,
        elapsed,
        files,
        bytes_sent,
        exit_code: code,
        named: if refused_any {
            Vec::new()
        } else {
            stderr.named_paths(&source, &destination)
        },
        vanished: stderr.vanished(&source),
        renamed: 0,
        refused: refused.unwrap_or_default(),
        deletions_skipped: stderr.deletions_skipped(),
    }
}

/// One `--info=progress2` line: `  1,234,567  45%   12.34MB/s    0:00:05 (xfr#1, to-chk=0/1)`.
fn parse_progress(line: &str) -> Option<Progress> {
    let mut words = line.split_whitespace();
    let bytes = words.next()?;
    let percent = words.next()?.strip_suffix('%')?.parse::<u8>().ok()?;
    let rate = words.next()?;
    let eta = words.next()?;
    if !rate.ends_with("/s") || !eta.contains(':') {
        return None;
    }
    let digits: String = bytes.chars().filter(char::is_ascii_digit).collect();
    Some(Progress {
        bytes_done: digits.parse().ok()?,
        percent: percent.min(100),
        rate: rate.to_string(),
        eta: eta.to_string(),
    })
}

/// The byte count of rsync's `sent 1,234 bytes  received 35 bytes ...` line.
fn parse_sent(line: &str) -> Option<u64> {
    let rest = line.trim_start().strip_prefix("sent ")?;
    let number = rest.split_whitespace().next()?;
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if number.contains('.') || digits.is_empty() || !rest.contains(" bytes") {
        return None;
    }
    digits.parse().ok()
}

/// SIGTERM first (with `--partial`, rsync keeps what it wrote), SIGKILL if it does
/// not go.
/// The signal goes to the run's whole process group (rsync leads its own, see
/// `spawn`): rsync's own children, or a wrapper's, must not live on holding its
/// pipes (or stuck where rsync was).
async fn stop_child(
    child: &mut tokio::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    let group = child.id();
    if let Some(pid) = group {
        // SAFETY: kill(2) on the process group our own child leads; it has not
        // been reaped yet, so the group id is still ours.
        unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGTERM) };
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if let Some(pid) = group {
                // SAFETY: as above (the leader still runs: not reaped).
                unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
            }
            let _ = child.kill().await;
            child.wait().await
        }
    }
}

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

/// Stops an rsync that hangs where `--timeout` cannot see it (a remote shell that
/// never connects, a process stuck on a dead mount): if the bytes it has read and
/// written (`/proc/PID/io`) do not change for twice the I/O timeout, it is stopped.
struct Watchdog {
    pid: Option<u32>,
    limit: Duration,
    period: Duration,
    last_io: Option<u64>,
    quiet_since: Instant,
}

impl Watchdog {
    fn new(pid: Option<u32>, io_timeout: Duration) -> Watchdog {
        let limit = if io_timeout.is_zero() {
            Duration::MAX
        } else {
            io_timeout.saturating_mul(2)
        };
        Watchdog {
            pid,
            limit,
            period: (limit / 10).clamp(Duration::from_millis(200), Duration::from_secs(30)),
            last_io: None,
            quiet_since: Instant::now(),
        }
    }

    fn stalled(&mut self) -> bool {
        if self.limit == Duration::MAX {
            return false;
        }
        let io = self.pid.and_then(process_io);
        if io != self.last_io {
            self.last_io = io;
            self.quiet_since = Instant::now();
            return false;
        }
        self.quiet_since.elapsed() >= self.limit
    }
}

/// Bytes read plus written by a process, from `/proc/PID/io`.
fn process_io(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(field("rchar:")? + field("wchar:")?)
}

#[cfg(test)]
mod tests {
    use super::{parse_progress, parse_sent};

    #[test]
    fn progress_lines_are_read() {
        let p = parse_progress("     52,428,800  45%    1.00MB/s    0:00:27 (xfr#0, to-chk=1/2)")
            .unwrap();
        assert_eq!((p.bytes_done, p.percent), (52_428_800, 45));
        assert_eq!((p.rate.as_str(), p.eta.as_str()), ("1.00MB/s", "0:00:27"));
        assert!(parse_progress("sent 1 bytes").is_none());
        assert!(parse_progress("file.txt").is_none());
    }

    #[test]
    fn sent_bytes_are_read_from_rsync_stats() {
        assert_eq!(
            parse_sent("sent 1,234 bytes  received 35 bytes  2,538.00 bytes/sec"),
            Some(1234)
        );
        assert_eq!(parse_sent("sent 99 bytes  received 12 bytes"), Some(99));
        assert_eq!(parse_sent("sent.txt"), None);
        assert_eq!(parse_sent("total size is 5  speedup is 0.05"), None);
    }
}
