//! The batch state of one (watch, target) pair: what is pending, what is running,
//! and how the last run went. At most one batch runs and one waits per pair; a
//! change that arrives while a batch runs goes into the next one.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::batch::{Batch, FullReason};
use super::held::HeldPaths;
use super::leftovers::Leftovers;
use crate::rsync::{Move, Progress};

/// Past this many pending paths a pair gives up listing them and does one full
/// sync instead: memory stays bounded however long a target is down.
const MAX_PENDING_PATHS: usize = 200_000;
/// How long changes must pause for a burst's next batch to go (see
/// `Pair::burst_due`): writes in a burst come microseconds apart.
pub const BURST_QUIET: Duration = Duration::from_millis(20);
/// The longest a burst's next batch waits for its changes to pause.
pub const BURST_MAX_WAIT: Duration = Duration::from_secs(1);
/// The longest a batch with a directory just made waits for the writes into
/// it to pause (see `Pair::burst_due`).
pub const MADE_MAX_WAIT: Duration = Duration::from_millis(100);

/// Whether other runs keep every CPU busy when a batch may start: a burst's
/// next batch chases the writes only while they do not (see
/// `Pair::burst_due`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpus {
    /// Fewer rsync processes run than there are CPUs.
    Free,
    /// As many rsync processes run as there are CPUs, or more.
    Busy,
}

/// One destination of one watch. Its state changes only through its methods
/// (recording changes, starting and finishing a batch, a verify's result);
/// `status.rs`, metrics, dispatch and verify read it through getters (README
/// "How a sync works", step 7), so no field is written from outside.
#[derive(Debug)]
pub struct Pair {
    /// Unique for the daemon's lifetime, so a finished rsync finds its pair even
    /// after a reload changed the list of targets.
    id: u64,
    /// The target as configured.
    target: String,
    /// `target + remote_path`.
    destination: String,
    pending: BTreeSet<Vec<u8>>,
    /// Pending directories whose whole tree is compared (each also in `pending`).
    trees: BTreeSet<Vec<u8>>,
    /// Pending directories made since the last batch started (each also in
    /// `pending`): everything below them is new, so a batch may send them as
    /// whole trees (see `Change::Made`).
    made: BTreeSet<Vec<u8>>,
    /// Moves seen since the last batch, in order (renamed on the target first).
    moves: Vec<Move>,
    pending_full: bool,
    /// The paths pending with the full sync went first, listed: the full
    /// sync itself is next (see [`Pair::start`]).
    listed_before_full: bool,
    full_reason: FullReason,
    /// The first change of the running batch (for the replication lag).
    running_first_change: Option<Instant>,
    /// When the oldest pending change arrived: the delay counts from here.
    first_change: Option<Instant>,
    /// When the newest change arrived (see `burst_due`).
    last_change: Option<Instant>,
    /// When the last run ended and how long it took (see `burst_due`).
    last_run: Option<(Instant, Duration)>,
    /// Skip the delay (initial sync, explicit requests).
    urgent: bool,
    running: Option<Batch>,
    /// Stops the running rsync early (to restart it with a new speed).
    stop: Option<oneshot::Sender<()>>,
    /// The `--bwlimit` the running rsync was started with.
    speed_in_use: u32,
    /// When the running rsync started, and what it last reported of its progress.
    transfer: Option<(Instant, watch::Receiver<Option<Progress>>)>,
    retry_at: Option<Instant>,
    /// Consecutive failures.
    failures: u32,
    /// Last successful sync.
    last_sync: Option<SystemTime>,
    /// Why the last run failed, until one succeeds.
    last_error: Option<String>,
    /// The running full sync may delete nothing (`--max-delete=0`): the source
    /// root was empty when it started.
    guarded: bool,
    /// A guarded full sync found the target not empty: the empty source is not
    /// mirrored (that would wipe the target) until a change arrives in it or
    /// `sync --force` allows it.
    empty_hold: bool,
    /// `sync --force` was given: the next full sync may mirror an empty source.
    empty_source_ok: bool,
    /// Paths rsync could not sync, retried on their own.
    held: HeldPaths,
    /// Where runs that did not finish may have left rsync's files.
    leftovers: Leftovers,
    /// The last comparison with the source (`verify`).
    last_verify: Option<super::verify::LastVerify>,
    /// The next full sync compares contents (`--checksum`): the source root was
    /// replaced by another tree, whose files may have the sizes and mtimes of the
    /// old ones (a reproducible build sets every mtime alike).
    compare_contents: bool,
    /// How many times the source root was replaced, now and when the
    /// running batch started: a full sync that started before the last
    /// replacement does not settle its comparison by content.
    replacements: (u64, u64),
}

impl Pair {
    /// A pair with nothing pending.
    pub fn new(id: u64, target: String, destination: String) -> Pair {
        Pair {
            id,
            target,
            destination,
            pending: BTreeSet::new(),
            trees: BTreeSet::new(),
            made: BTreeSet::new(),
            moves: Vec::new(),
            pending_full: false,
            listed_before_full: false,
            full_reason: FullReason::Initial,
            running_first_change: None,
            first_change: None,
            last_change: None,
            last_run: None,
            urgent: false,
            running: None,
            stop: None,
            speed_in_use: 0,
            transfer: None,
            retry_at: None,
            failures: 0,
            last_sync: None,
            last_error: None,
            guarded: false,
            empty_hold: false,
            empty_source_ok: false,
            held: HeldPaths::default(),
            leftovers: Leftovers::default(),
            last_verify: None,
            compare_contents: false,
            replacements: (0, 0),
        }
    }
}

impl Pair {
    /// The config names this pair's directory otherwise (a reload): it keeps
    /// its changes and state, and goes by the new names. A running rsync
    /// finishes with the old ones, which name the same directory.
    pub fn respell(&mut self, target: String, destination: String) {
        if self.target != target || self.destination != destination {
            tracing::info!(
                "{}: now spelled {destination}; the same directory, its pending changes kept",
                self.destination
            );
            self.target = target;
            self.destination = destination;
        }
    }
}

mod queries;
mod record;
mod run;

pub use run::Run;
#[cfg(test)]
mod tests;
