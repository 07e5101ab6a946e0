//! What one rsync run is asked to do, as data: the pair's batch turned into a
//! job by the engine (`engine/dispatch.rs`), read by the stages that run it.
//! Apart from how it is run (`command.rs` builds the argv, `launch.rs` starts
//! the child, `renames/` applies its moves), so each of those can use it
//! without using each other.

use std::path::PathBuf;

use super::policy::Launcher;

/// One rsync run for one (watch, target) pair.
#[derive(Debug, Clone, Default)]
pub struct Job {
    /// The rsync binary.
    pub rsync: PathBuf,
    /// The watch root; its contents are synced (`root/`).
    pub source: PathBuf,
    /// `target + remote_path`.
    pub destination: String,
    /// KB/s, 0 = unlimited.
    pub speed: u32,
    /// Exclude patterns, passed on so rsync never transfers or deletes them.
    pub excludes: Vec<String>,
    /// Paths held apart (retried on their own), excluded from this run.
    pub held: Vec<Vec<u8>>,
    /// Raw user arguments, appended last so they can override ours.
    pub extra: Vec<String>,
    /// A `--rsh=` argument that overrides the user's (to add ssh connection reuse).
    pub rsh: Option<String>,
    /// rsync's `--timeout`: give up when no data moves for this long (0 = never).
    pub io_timeout: std::time::Duration,
    /// A full sync that must delete nothing (`--max-delete=0`: rsync exits 25 when
    /// the target has files the source lacks), used when the source root is empty.
    pub delete_nothing: bool,
    /// What is gone from the source stays on the target (`delete = false`, or
    /// a mode that does not delete in this kind of run): no `--delete`, no
    /// deletion stage, and moves are copied to their new name rather than
    /// renamed on the target (a rename would remove the old name).
    pub keep_deleted: bool,
    /// Compare file contents rather than size and mtime (`--checksum`): after the
    /// source root was replaced by another tree.
    pub compare_contents: bool,
    /// Changed paths relative to the root, or `None` for a full sync of the tree.
    pub paths: Option<Vec<Vec<u8>>>,
    /// Moves to do as renames on the target before the transfer (path batches).
    pub moves: Vec<Move>,
    /// Directories to compare as whole trees after the transfer (`--recursive
    /// --delete`): they may be other trees than the ones the target holds.
    pub trees: Vec<Vec<u8>>,
    /// Directories made since the last batch (topmost; also in `paths`, with
    /// what is below them): sent as whole trees (`--recursive`, every file)
    /// instead of their listed paths, which rsync reads slower than it walks a
    /// directory. Files still being written in them are in `unsettled`.
    pub made: Vec<Vec<u8>>,
    /// Files still being written (see `engine/settle.rs`) below `made`:
    /// excluded from the walk of those trees, as they are from a list; each
    /// goes once it is closed or quiet.
    pub unsettled: Vec<Vec<u8>>,
    /// How many rsync processes a large path batch, or a full sync into an
    /// empty target (`into_empty`), may be cut into (1: one).
    pub split: usize,
    /// A full sync whose local target was found empty (or missing): nothing
    /// to delete there, so the tree may be cut over several processes (see
    /// `into_empty.rs`).
    pub into_empty: bool,
    /// Which part of a full sync cut over several processes this job is.
    pub part: FullPart,
    /// The listed paths are trees to compare whole (`--recursive --delete`).
    pub recursive: bool,
    /// With `recursive`: the listed paths are made directories walked (see
    /// `made.rs`) and files beside them, not trees compared whole: a path
    /// rsync's errors name below them is held, as in a list, rather than the
    /// whole batch failing.
    pub walk: bool,
    /// With `recursive`: every file of the trees is sent again, whatever its
    /// size and mtime (`--ignore-times`): the trees are other trees than the
    /// target's, whose files may have the old ones' sizes and mtimes.
    pub resend: bool,
    /// The listed paths are missing from the source: delete them on the target
    /// (see `deletions`), transfer nothing else.
    pub deleting: bool,
    /// Directories where an earlier run that did not finish may have left
    /// rsync's partial or temp files: swept after this run (see `leftovers`).
    pub sweep: Vec<Vec<u8>>,
    /// The listed paths are directories to sweep (see `leftovers`): delete the
    /// partial directory and rsync's temp files in each, transfer nothing.
    pub sweeping: bool,
    /// Whether a full sync other than the first deletes what the source
    /// lacks (`delete = true`): only then may a sweep delete names shaped
    /// like rsync's temp files, which such a full sync would delete anyway
    /// (see `guarded.rs`); otherwise a target-only `.htaccess.backup` stays.
    pub full_syncs_delete: bool,
    /// With `deleting`: the listed paths are exactly the names to delete (a
    /// guarded run's dry run found them, see `guarded.rs`), and the daemon's
    /// rules come before the user's, which are never reached.
    pub exact: bool,
    /// Over within about a second (a few small files, see
    /// `engine/lanes.rs`): rsync is asked for neither progress nor a partial
    /// directory, whose cost per file is a tenth of such a run.
    pub brief: bool,
    /// How its children are started: `--pretend`, the layout check before each,
    /// the sandbox.
    pub launch: Launcher,
}

/// What a job with no list sends: the whole tree, or a part of a full sync
/// cut over several processes (`into_empty.rs`), or the root's attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FullPart {
    /// Not a part: the job is whole.
    #[default]
    Whole,
    /// The root's own entries (`--dirs`, not `--recursive`): the root's
    /// attributes, its files and links, its directories made empty.
    TopLevel,
    /// The listed top-level directories walked: what rsync's errors name is
    /// the full sync's, as in one process (never held alone).
    Trees,
    /// Not a part of a full sync but a run of its own: the root's own mode,
    /// owner and times (a chmod, chown or touch of the root), nothing below
    /// it sent or deleted. Listed with the other paths, the root would be
    /// `.`, and rsync sends every entry of a `.` it lists (see `run.rs`).
    RootAttributes,
}

/// One move of a batch, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// Old path, relative to the watch root.
    pub from: Vec<u8>,
    /// New path, relative to the watch root.
    pub to: Vec<u8>,
    /// What the batch transfers instead when the rename cannot be done: the new
    /// path and everything below it, and the old path (deleted on the target).
    pub fallback: Vec<Vec<u8>>,
}
