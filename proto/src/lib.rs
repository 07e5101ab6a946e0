//! The control protocol between `inosyncd` and `inosyncctl`.
//!
//! This crate holds only the tarpc service trait and the serde types that cross the
//! control socket, so that both binaries agree on them by construction and a change
//! to the protocol is a change to one file.
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

/// Bumped whenever a request or response changes shape, so that a client talking to a
/// daemon of another release can warn instead of failing with an opaque decode error.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side accepts: a bogus length prefix must not make the
/// daemon allocate more than this.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

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
    /// Directories under an inotify watch in this tree.
    pub watched_dirs: u64,
    /// Exclude patterns in force for this tree (global ones first).
    pub excludes: Vec<String>,
    /// Event delay in seconds in force for this tree.
    pub delay: f64,
    /// Bandwidth limit in KB/s in force for this tree (0 = unlimited).
    pub speed: u32,
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
    /// Cap on concurrent rsync processes.
    pub max_parallel: u32,
    /// rsync processes running now.
    pub running: u32,
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

/// The control service served by `inosyncd` on its Unix socket.
#[tarpc::service]
pub trait Control {
    /// Protocol handshake: the client compares the version and warns on a mismatch.
    async fn hello() -> ServerInfo;
    /// The current state of every watch and target.
    async fn status() -> Result<Status, ControlError>;
    /// Returns `true` once nothing is pending or running, `false` if `timeout_secs`
    /// passed first. Changes already made when the call arrives are counted as pending.
    async fn wait(timeout_secs: f64) -> Result<bool, ControlError>;
}
