//! The control protocol between `inosyncd` and `inosyncctl`.
//!
//! This crate holds only the tarpc service trait and the serde types that cross the
//! control socket, so that both binaries agree on them by construction and a change
//! to the protocol is a change to one file.
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

/// Bumped whenever a request or response changes shape, so that a client talking to a
/// daemon of another release can warn instead of failing with an opaque decode error.
pub const PROTOCOL_VERSION: u32 = 10;

/// The largest frame either side accepts: a bogus length prefix must not make the
/// daemon allocate more than this.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The most seconds a delay may be (about 31 years), in the config and over
/// the socket alike: `inosyncctl` refuses more itself, as a usage error, with
/// the daemon's own bound.
pub const MAX_SECONDS: f64 = 1e9;

/// Where the daemon listens and the client looks when no `--socket` is given:
/// `/run/inosync/inosyncd.sock` for root, `$XDG_RUNTIME_DIR/inosync/inosyncd.sock`
/// otherwise (`/tmp/inosync-UID/` when that is unset). Both sides must agree, so
/// it is defined once, here, beside the protocol it leads to.
pub fn default_socket() -> std::path::PathBuf {
    use std::path::PathBuf;
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    if uid == 0 {
        return PathBuf::from("/run/inosync/inosyncd.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("inosync/inosyncd.sock"),
        _ => PathBuf::from(format!("/tmp/inosync-{uid}/inosyncd.sock")),
    }
}

/// What the daemon says about itself, so the client can check it speaks the same
/// protocol before relying on any other answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The daemon's [`PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// The daemon's release, for the warning shown on a mismatch.
    pub daemon_version: String,
}

/// The state of one (watch, target) pair, as administrators ask for it: "is my mirror
/// behind, and why?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// Nothing pending, nothing running.
    Idle,
    /// Changes are pending and wait for their delay or for a free rsync slot.
    Waiting,
    /// An rsync process runs for this pair now.
    Syncing,
    /// The last rsync failed; the batch is kept and retried after a backoff.
    Retrying,
    /// Syncs are held by `pause`; changes are still recorded.
    Paused,
    /// The watch root is gone, replaced by another filesystem, or empty while the
    /// target is not: nothing is synced (so nothing is deleted on the target) until
    /// it is back, or until `inosyncctl sync PATH --force`.
    #[serde(rename = "source missing")]
    SourceMissing,
}

impl std::fmt::Display for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TargetState::Idle => "idle",
            TargetState::Waiting => "waiting",
            TargetState::Syncing => "syncing",
            TargetState::Retrying => "retrying",
            TargetState::Paused => "paused",
            TargetState::SourceMissing => "source missing",
        })
    }
}

/// How far a running transfer has got, as rsync reports it (`--info=progress2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Bytes transferred so far in this run.
    pub bytes_done: u64,
    /// Percent of this run's bytes done.
    pub percent: u8,
    /// Current rate, as rsync prints it (e.g. `12.34MB/s`).
    pub rate: String,
    /// Estimated time left, as rsync prints it (e.g. `0:00:05`).
    pub eta: String,
}

/// A path rsync could not sync, retried on its own so that it holds back nothing
/// else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldPath {
    /// Relative to the watch root (bytes that are not UTF-8 shown as U+FFFD).
    pub path: String,
    /// What rsync said about it.
    pub reason: String,
    /// Consecutive failures on it.
    pub failures: u32,
    /// Seconds until it is tried again; 0 while its retry runs (it stays
    /// listed until a retry succeeds).
    pub retry_in: f64,
}

/// The last comparison of a target with its source (`verify`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastVerify {
    /// RFC 3339 time it finished.
    pub at: String,
    /// Paths that differed (0: the target equalled the source).
    pub drift: u64,
    /// Why it could not compare, if it could not.
    pub error: Option<String>,
}

/// One destination of one watch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetStatus {
    /// The target as configured (`host:`, `rsync://…`, a directory).
    pub target: String,
    /// The full rsync destination: target plus the watch's remote path.
    pub destination: String,
    /// Where this pair stands now.
    pub state: TargetState,
    /// Changed paths waiting for this target (a pending full sync counts as one).
    pub pending: u64,
    /// RFC 3339 time of the last successful sync, if any.
    pub last_sync: Option<String>,
    /// The last rsync failure, with the meaning of its exit code.
    pub last_error: Option<String>,
    /// Consecutive failures; 0 after a success.
    pub failures: u32,
    /// Seconds until the next retry, while retrying.
    pub next_retry_in: Option<f64>,
    /// Progress of the running transfer, once it has run for a second.
    pub progress: Option<Progress>,
    /// Paths rsync could not sync, each retried on its own.
    pub held: Vec<HeldPath>,
    /// The last `verify` of this target, if any.
    pub last_verify: Option<LastVerify>,
}

/// Where a setting's value comes from, so `status` can tell an administrator
/// whether `inosyncctl` changed it (and a config edit will not take effect) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Built-in default.
    Default,
    /// The config file.
    Config,
    /// Set at runtime with `inosyncctl`, kept in the state file.
    Runtime,
    /// Inherited from the global setting.
    Global,
    /// The daemon's command line (`--delay`).
    #[serde(rename = "command_line")]
    CommandLine,
}

/// One watched tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchStatus {
    /// The watched directory (absolute, symlinks resolved).
    pub path: String,
    /// Appended to each target to form the destination.
    pub remote_path: String,
    /// Whether syncs are held.
    pub paused: bool,
    /// Changed paths not yet synced to every target (the largest count of any target).
    pub pending: u64,
    /// Directories under an inotify watch in this tree (0 under fanotify, which
    /// needs none).
    pub watched_dirs: u64,
    /// What reports this tree's changes: "fanotify" or "inotify".
    pub backend: String,
    /// Why inotify was chosen under `backend = "auto"`, if it was.
    pub backend_reason: Option<String>,
    /// Exclude patterns in force for this tree (global ones first).
    pub excludes: Vec<String>,
    /// Event delay in seconds in force for this tree.
    pub delay: f64,
    /// Bandwidth limit in KB/s in force for this tree (0 = unlimited).
    pub speed: u32,
    /// Where `delay` comes from.
    pub delay_source: Source,
    /// Where `speed` comes from.
    pub speed_source: Source,
    /// Where the watch itself comes from (`config` or `runtime`).
    pub origin: Source,
    /// Being removed: pending changes are synced first, then the watch goes.
    pub removing: bool,
    /// Why some directories have no inotify watch (the watch limit), if so: their
    /// changes are caught by periodic full syncs until it is fixed.
    pub degraded: Option<String>,
    /// Why the watch root cannot be synced from (gone, renamed away, another
    /// filesystem mounted), if so; the watch re-attaches when it is back.
    pub source_missing: Option<String>,
    /// One entry per destination.
    pub targets: Vec<TargetStatus>,
}

/// The whole daemon, as `inosyncctl status` shows it; field names are stable for
/// scripts reading `--json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// The daemon's release.
    pub version: String,
    /// The daemon's process id.
    pub pid: u32,
    /// Global bandwidth limit in KB/s (0 = unlimited).
    pub speed: u32,
    /// Global event delay in seconds.
    pub delay: f64,
    /// Where `speed` comes from.
    pub speed_source: Source,
    /// Where `delay` comes from.
    pub delay_source: Source,
    /// Cap on concurrent rsync processes.
    pub max_parallel: u32,
    /// The config file in use, if any.
    pub config_file: Option<String>,
    /// rsync processes running now.
    pub running: u32,
    /// The Landlock ABI every rsync is confined with, or `None` when rsync runs
    /// unconfined (`sandbox = "off"`, or a kernel without Landlock under `auto`).
    pub sandbox_abi: Option<u32>,
    /// Why the state file could not be written at the last runtime change, if
    /// it could not: the changes are in force but would be lost by a restart,
    /// and the administrator must hear it where they made the change, not only
    /// in the log. Also, until they can be written, the running mark
    /// (`<state>.running`, by which a start knows the last daemon was killed)
    /// and the journal of changes not yet synced (`<state>.pending`).
    pub state_file_error: Option<String>,
    /// Every watched tree.
    pub watches: Vec<WatchStatus>,
}

/// Why the daemon refused a request; the message names the path and the problem so
/// that the client can print it as is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum ControlError {
    /// The daemon is stopping and takes no more requests.
    ShuttingDown,
    /// Anything else the daemon refused, with its explanation.
    Refused(String),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::ShuttingDown => f.write_str("inosyncd is shutting down"),
            ControlError::Refused(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ControlError {}

/// A new watch, as `inosyncctl add` sends it. Paths are absolute (the client
/// resolves relative ones against its own working directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddWatch {
    /// The directory to watch.
    pub path: String,
    /// Appended to each target. `None`: nothing when `targets` are given (each
    /// is the destination itself, as in the quick start; protocol 9), the
    /// watch path when the config's default targets are used.
    pub remote_path: Option<String>,
    /// Targets; empty = the config's default targets.
    pub targets: Vec<String>,
    /// Exclude patterns added to the global ones.
    pub excludes: Vec<String>,
    /// Event delay override in seconds.
    pub delay: Option<f64>,
    /// Bandwidth limit override in KB/s.
    pub speed: Option<u32>,
}

/// How one (watch, target) pair compared in a `verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairDrift {
    /// The watched directory.
    pub watch: String,
    /// The rsync destination.
    pub destination: String,
    /// How many paths differ (changes on their way are not counted).
    pub count: u64,
    /// Differing paths that are changes on their way (queued, held or
    /// running, or below one): not drift. (New in protocol 8; the wire format
    /// is bincode, so `default` serves JSON readers only.)
    #[serde(default)]
    pub on_the_way: u64,
    /// The first differing paths, each with rsync's itemized change
    /// (`>f.st......`, `*deleting`, …) and the name escaped as `ls -b` prints
    /// it, so that any name stays on one line and can be read back exactly.
    pub paths: Vec<String>,
    /// Why the comparison could not be made, if it could not.
    pub error: Option<String>,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    /// One entry per (watch, target) pair compared.
    pub pairs: Vec<PairDrift>,
    /// Whether the differing paths were queued for a sync (`--repair`).
    pub repaired: bool,
}

/// A setting's value after a `speed` or `delay` call, and where it comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setting {
    /// The watch the value applies to, or `None` for the global value.
    pub watch: Option<String>,
    /// The value in force (KB/s for speed, seconds for delay).
    pub value: f64,
    /// Where it comes from.
    pub source: Source,
}

/// The control service served by `inosyncd` on its Unix socket.
#[tarpc::service]
pub trait Control {
    /// Protocol handshake: the client compares the version and warns on a mismatch.
    async fn hello() -> ServerInfo;
    /// The current state of every watch and target.
    async fn status() -> Result<Status, ControlError>;
    /// The Prometheus text exposition (format 0.0.4): what `metrics_listen`
    /// serves and `metrics_file` holds.
    async fn metrics() -> Result<String, ControlError>;
    /// Returns `true` once nothing is pending or running (in the watch of `path`, or
    /// anywhere), `false` if `timeout_secs` passed first. Changes already made when
    /// the call arrives count as pending.
    async fn wait(path: Option<String>, timeout_secs: f64) -> Result<bool, ControlError>;
    /// Starts watching a tree; it gets a full sync first.
    async fn add(watch: AddWatch) -> Result<WatchStatus, ControlError>;
    /// Stops watching a tree. Unless `discard`, its pending changes are synced first;
    /// returns `false` if that did not finish within `timeout_secs` (the watch is
    /// then removed as soon as it does).
    async fn remove(path: String, discard: bool, timeout_secs: f64) -> Result<bool, ControlError>;
    /// Shows (`kbps` = `None`) or sets the bandwidth limit, globally or for one
    /// watch; `reset` drops the runtime value so the config's applies again. A
    /// running transfer is restarted with the new limit.
    async fn speed(
        kbps: Option<u32>,
        reset: bool,
        path: Option<String>,
    ) -> Result<Setting, ControlError>;
    /// Shows, sets or (`reset`) drops the runtime event delay, globally or for one
    /// watch; pending batches are re-timed.
    async fn delay(
        seconds: Option<f64>,
        reset: bool,
        path: Option<String>,
    ) -> Result<Setting, ControlError>;
    /// Schedules a full sync now, of one watch or all. `force` (one watch only)
    /// accepts the source as it is now: an emptied source or a new filesystem is
    /// mirrored, deletions included.
    async fn sync(path: Option<String>, force: bool) -> Result<(), ControlError>;
    /// Holds syncs (of one watch or all); changes are still recorded.
    async fn pause(path: Option<String>) -> Result<(), ControlError>;
    /// Lets held syncs go.
    async fn resume(path: Option<String>) -> Result<(), ControlError>;
    /// Re-reads the config file, keeping pending changes and runtime settings.
    async fn reload() -> Result<String, ControlError>;
    /// Compares each target of one watch (or of all) with its source by a dry run;
    /// `repair` queues the differing paths for a sync, `checksum` compares
    /// contents rather than size and mtime.
    async fn verify(
        path: Option<String>,
        repair: bool,
        checksum: bool,
    ) -> Result<VerifyReport, ControlError>;
}
