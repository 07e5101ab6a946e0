//! What the engine must sync, whichever backend saw it.

/// What the engine must sync because of what the watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This path (relative to the watch root) changed, or appeared, or went away.
    Path { watch: u32, rel: Vec<u8> },
    /// Events of this watch may have been lost (queue overflow, watch limit): only
    /// a full sync makes the targets right again.
    Everything { watch: u32 },
    /// The watch root itself was deleted, renamed away or unmounted: the tree the
    /// watches follow is no longer the one at the watch's path.
    RootGone { watch: u32 },
    /// `from` was renamed to `to` within the tree (`implied`: what lies below
    /// `to`, which a transfer would have to send when the rename cannot be done on
    /// the target). `from` is also reported as a changed path.
    Move {
        watch: u32,
        from: Vec<u8>,
        to: Vec<u8>,
        implied: Vec<Vec<u8>>,
    },
}
