//! The work handed to one rsync run, and why a full sync was asked for: what a
//! pair (`pair.rs`) hands out when a batch starts and what the sweep of
//! leftovers (`leftovers.rs`), the dispatch and the metrics read back.

use std::collections::BTreeMap;

use crate::rsync::Move;

/// The work handed to one rsync run.
#[derive(Debug, Clone)]
pub struct Batch {
    /// A full sync of the tree rather than a list of paths.
    pub full: bool,
    /// The changed paths (empty for a full sync).
    pub paths: Vec<Vec<u8>>,
    /// Held paths tried again in this batch, with their failures so far.
    pub held_failures: BTreeMap<Vec<u8>, u32>,
    /// Moves to rename on the target first, in order.
    pub moves: Vec<Move>,
    /// Directories to make equal as whole trees, deletions included (also in
    /// `paths`).
    pub trees: Vec<Vec<u8>>,
    /// Directories made since the last batch (also in `paths`, with what is
    /// below them): they may go as whole trees (see `Change::Made`).
    pub made: Vec<Vec<u8>>,
    /// Why, when it is a full sync.
    pub full_reason: FullReason,
    /// Directories to sweep of what earlier runs left (see `leftovers`).
    pub sweep: Vec<Vec<u8>>,
}

/// Why a full sync was scheduled (`inosync_full_syncs_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullReason {
    /// The watch started (or was added).
    #[default]
    Initial,
    /// `inosyncctl sync`.
    Requested,
    /// Events may have been lost (queue overflow, an unplaceable directory).
    LostEvents,
    /// `full_sync_interval`.
    Interval,
    /// Some directories have no inotify watch (the watch limit).
    Degraded,
    /// The watch root came back or was replaced.
    SourceReplaced,
    /// A reload added a target or changed excludes.
    Reload,
    /// Too many pending paths to list.
    TooManyPaths,
}

impl FullReason {
    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            FullReason::Initial => "initial",
            FullReason::Requested => "requested",
            FullReason::LostEvents => "lost_events",
            FullReason::Interval => "interval",
            FullReason::Degraded => "degraded",
            FullReason::SourceReplaced => "source_replaced",
            FullReason::Reload => "reload",
            FullReason::TooManyPaths => "too_many_paths",
        }
    }
}
