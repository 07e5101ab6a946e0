//! What the control socket (and the signals) ask the engine, each request with
//! the channel its answer goes back on (README "Operating at runtime").

use inosync_proto::{AddWatch, Setting, Status, WatchStatus};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Refusal;
#[cfg(test)]
use crate::watcher::Change;

/// A reply channel; a refusal becomes words only at the socket (`control.rs`).
pub type Reply<T> = oneshot::Sender<Result<T, Refusal>>;

/// Requests from the control socket (and signals), each with its answer channel.
pub enum Command {
    /// Report the state of everything.
    Status(oneshot::Sender<Status>),
    /// The Prometheus text exposition.
    Metrics(oneshot::Sender<String>),
    /// Answer `true` when nothing is pending or running (in one watch, or anywhere),
    /// `false` at the deadline.
    Wait {
        path: Option<String>,
        deadline: Instant,
        reply: Reply<bool>,
    },
    /// Start watching a tree.
    Add {
        watch: AddWatch,
        reply: Reply<WatchStatus>,
    },
    /// Stop watching a tree, after syncing its pending changes unless `discard`.
    Remove {
        path: String,
        discard: bool,
        deadline: Instant,
        reply: Reply<bool>,
    },
    /// Show or set the bandwidth limit.
    Speed {
        kbps: Option<u32>,
        reset: bool,
        path: Option<String>,
        reply: Reply<Setting>,
    },
    /// Show or set the event delay.
    Delay {
        seconds: Option<f64>,
        reset: bool,
        path: Option<String>,
        reply: Reply<Setting>,
    },
    /// Full sync now; `force` accepts the source as it is (empty, another
    /// filesystem).
    Sync {
        path: Option<String>,
        force: bool,
        reply: Reply<()>,
    },
    /// Hold (`paused`) or release syncs.
    Pause {
        path: Option<String>,
        paused: bool,
        reply: Reply<()>,
    },
    /// Re-read the config file (`None`: from SIGHUP, nobody to answer).
    Reload { reply: Option<Reply<String>> },
    /// Compare targets with their source (dry run); `repair` queues what differs.
    Verify {
        path: Option<String>,
        repair: bool,
        checksum: bool,
        /// When the answer is due: the comparisons share the time until then.
        deadline: Instant,
        reply: Reply<inosync_proto::VerifyReport>,
    },
    /// Tests only: changes as if the watcher had seen them.
    #[cfg(test)]
    Inject(Vec<Change>),
}
