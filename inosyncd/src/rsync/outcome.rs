//! How a run ended, as the engine branches on it: one type for every child the
//! daemon starts, filled in by one classifier (`classify/`), so no caller reads
//! an exit code again.

use std::time::Duration;

/// What a finished run means for its batch.
#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    /// The batch arrived (exit 0, or 24: files vanished mid-run, whose deletion
    /// events are queued for the next batch).
    Synced,
    /// The batch arrived except these paths, which rsync's errors name (exit
    /// 23): they are held and retried on their own.
    Partial {
        /// Listed paths (relative to the source root) to hold.
        held: Vec<Vec<u8>>,
        /// rsync's error lines.
        cause: String,
    },
    /// Not done, and it will not be until the configuration changes: the
    /// sandbox refused what the run is for (a write outside the mirror, a file
    /// ssh must read), or the destination now lies in a watched tree. Retried
    /// slowly, as a misconfiguration, so a fix is picked up.
    Refused {
        /// What was refused and why, naming the option or the path.
        cause: String,
    },
    /// It did not arrive, for a reason of this class.
    Failed {
        /// How soon a retry may help.
        class: FailureClass,
        /// rsync's exit status with its meaning and the stderr lines naming the
        /// cause.
        cause: String,
    },
    /// A full sync from an empty source stopped before deleting anything
    /// (`--max-delete=0`, exit 25): the target has files, and an empty mount
    /// point must not wipe the mirror.
    SourceEmpty,
    /// Stopped on request (e.g. to restart with a new `--bwlimit`): the batch
    /// did not complete, but nothing failed either.
    Interrupted,
}

/// Why a run failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Network and I/O trouble that usually passes (exit 10, 11, 12, 23, 30,
    /// 35, 255, a signal, a hang): retry after a second.
    Transient,
    /// The source changed shape under rsync's sender (exit 2, "invalid path
    /// from sender"): a race, retried as soon as a transient error.
    Race,
    /// Usage, protocol, permission and module errors (exit 1–6, 13, 25, 126,
    /// 127) need an administrator: retry slowly, but keep retrying.
    Misconfiguration,
}

impl FailureClass {
    /// The wait before the first retry after a failure of this class.
    pub fn first_retry(self) -> Duration {
        match self {
            FailureClass::Transient | FailureClass::Race => Duration::from_secs(1),
            FailureClass::Misconfiguration => Duration::from_secs(30),
        }
    }
}

impl RunResult {
    /// Whether the batch arrived, all of it or all but held paths (so the
    /// batch's later runs go on).
    pub fn arrived(&self) -> bool {
        matches!(self, RunResult::Synced | RunResult::Partial { .. })
    }

    /// Whether the run failed because the target's filesystem is full (or its
    /// quota spent): what earlier runs left there (partial and temp files) is
    /// then swept at once, not after a run that arrives, which might never
    /// come while they take the space. The local rsync runs in the C locale;
    /// a remote one may speak another language, so its errno counts too
    /// (ENOSPC 28, EDQUOT 122). A false match costs one sweep.
    pub fn target_full(&self) -> bool {
        let cause = match self {
            RunResult::Failed { cause, .. } | RunResult::Partial { cause, .. } => cause,
            _ => return false,
        };
        cause.contains("No space left on device")
            || cause.contains("Disk quota exceeded")
            || cause.contains(" (28)")
            || cause.contains(" (122)")
    }

    /// For a run whose batch must be retried whole: why, and the wait before
    /// the first retry.
    pub fn failure(&self) -> Option<(&str, Duration)> {
        match self {
            RunResult::Refused { cause } => {
                Some((cause, FailureClass::Misconfiguration.first_retry()))
            }
            RunResult::Failed { class, cause } => Some((cause, class.first_retry())),
            _ => None,
        }
    }

    /// The `result` label of `inosync_syncs_total`: a partial run synced what it
    /// could, a refused one failed.
    pub fn label(&self) -> &'static str {
        match self {
            RunResult::Synced | RunResult::Partial { .. } => "synced",
            RunResult::Interrupted => "interrupted",
            RunResult::Refused { .. } | RunResult::Failed { .. } | RunResult::SourceEmpty => {
                "failed"
            }
        }
    }
}

/// How one run ended, with what the log line of the sync reports.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What it means for the batch.
    pub result: RunResult,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Changed paths handed to rsync; `None` for a full sync.
    pub files: Option<usize>,
    /// Bytes rsync says it sent (`--info=stats1`), when it got that far.
    pub bytes_sent: Option<u64>,
    /// rsync's exit code, when it exited by itself: for the log line only.
    pub exit_code: Option<i32>,
    /// Paths (relative to the source root) rsync saw vanish mid-run.
    pub vanished: Vec<Vec<u8>>,
    /// Moves done as renames on the target before the transfer.
    pub renamed: usize,
    /// What the Landlock sandbox refused beside a transfer that was done (the
    /// removal of source files, a log file outside the mirror): reported, not
    /// retried.
    pub refused: Vec<String>,
    /// rsync skipped its deletions because of an I/O error (a full sync or a
    /// tree compared whole left extras on the target).
    pub deletions_skipped: bool,
    /// Directories rsync named as too deep to list: nothing below them can be
    /// sent, and while they are part of a run rsync deletes nothing.
    pub too_deep: Vec<Vec<u8>>,
    /// Directories the batch was to sweep of rsync's leftovers and did not
    /// (see `leftovers`): swept after the pair's next run.
    pub unswept: Vec<Vec<u8>>,
    /// A full sync that deletes arrived with its deletions done: it removed
    /// every leftover of rsync on the target itself (see `leftovers`). A full
    /// sync that deletes nothing (`delete = "running"`, the keep modes)
    /// removes none, and sweeps those it knows of as a run of paths does.
    pub swept_all: bool,
    /// Files whose received part rsync kept in its partial directory though
    /// the run went on (see `Stderr::partial_kept`): their directories are
    /// swept after the pair's next run.
    pub kept_partial: Vec<Vec<u8>>,
}

impl Outcome {
    /// An outcome with nothing to report but `result` (a run that never started,
    /// or the parts of a split batch to merge into).
    pub fn bare(result: RunResult, files: Option<usize>) -> Outcome {
        Outcome {
            result,
            elapsed: Duration::ZERO,
            files,
            bytes_sent: None,
            exit_code: None,
            vanished: Vec::new(),
            renamed: 0,
            refused: Vec::new(),
            deletions_skipped: false,
            too_deep: Vec::new(),
            unswept: Vec::new(),
            swept_all: false,
            kept_partial: Vec::new(),
        }
    }

    /// The outcome of a run that had nothing to do.
    pub fn nothing() -> Outcome {
        Outcome {
            bytes_sent: Some(0),
            exit_code: Some(0),
            ..Outcome::bare(RunResult::Synced, Some(0))
        }
    }

    /// Adds a later run of the same batch: the batch is synced only when every
    /// run was; paths held by any run stay held; the first run that failed (or
    /// was stopped) decides.
    pub fn absorb(&mut self, other: Outcome) {
        self.result = match (
            std::mem::replace(&mut self.result, RunResult::Synced),
            other.result,
        ) {
            (RunResult::Synced, later) => later,
            (
                RunResult::Partial { mut held, cause },
                RunResult::Partial {
                    held: more,
                    cause: later,
                },
            ) => {
                held.extend(more);
                held.sort();
                held.dedup();
                RunResult::Partial {
                    held,
                    cause: format!("{cause} | {later}"),
                }
            }
            (RunResult::Partial { .. }, later) if !later.arrived() => later,
            (first, _) => first,
        };
        if other.exit_code.is_some_and(|c| c != 0) {
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
        self.vanished.extend(other.vanished);
        self.refused.extend(other.refused);
        self.deletions_skipped |= other.deletions_skipped;
        self.too_deep.extend(other.too_deep);
        self.unswept.extend(other.unswept);
        self.kept_partial.extend(other.kept_partial);
    }
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
