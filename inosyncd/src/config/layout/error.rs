//! What a refused layout says: both places, how they lie, and what rsync
//! --delete would do there.

use std::fmt;
use std::path::PathBuf;

use crate::config::places::Relation;

/// A layout that would destroy data, naming both places.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A watch on `/`.
    #[error(
        "a watch on {} would mirror the whole system (and every target inside it); \
         watch the directories you mean",
        .0.display()
    )]
    WholeSystem(PathBuf),
    /// A watch of a kernel filesystem (`/proc`, `/sys`), with why.
    #[error("{0}; it cannot be mirrored, so it is not watched")]
    KernelTree(String),
    /// Two watched trees overlap.
    #[error("watch {} {} watch {}", .path.display(), watches(*.relation), .other.display())]
    Watches {
        /// The watch being checked.
        path: PathBuf,
        /// How it lies relative to `other`.
        relation: Relation,
        /// The watch it overlaps.
        other: PathBuf,
        /// The caller's number of `other` (a config names its line).
        other_index: usize,
    },
    /// A destination overlaps a watched tree.
    #[error(
        "the destination {destination} (of the watch {}) {} the watched directory {}: \
         rsync --delete would {}; choose a destination outside every watched tree",
        .watch.display(),
        places(*.relation),
        .watched.display(),
        damage(*.relation)
    )]
    DestinationAndSource {
        /// The destination as configured.
        destination: String,
        /// The watch it belongs to.
        watch: PathBuf,
        /// How the destination lies relative to `watched`.
        relation: Relation,
        /// The watched tree it overlaps.
        watched: PathBuf,
    },
    /// Two destinations overlap.
    #[error(
        "the destination {destination} (of the watch {}) {} the destination {other} \
         (of the watch {}): each sync would delete the other's files; give every watch \
         and target its own destination",
        .watch.display(),
        places(*.relation),
        .other_watch.display()
    )]
    Destinations {
        /// The destination as configured.
        destination: String,
        /// The watch it belongs to.
        watch: PathBuf,
        /// How it lies relative to `other`.
        relation: Relation,
        /// The other destination as configured.
        other: String,
        /// The watch that one belongs to.
        other_watch: PathBuf,
    },
    /// A local destination rsync can never create (below a regular file, on
    /// /proc or /sys): refused rather than retried forever.
    #[error(
        "the destination {destination} (of the watch {}) can never be made: {reason}; \
         choose a directory that exists or can be created",
        .watch.display()
    )]
    Unmakeable {
        /// The destination as configured.
        destination: String,
        /// The watch it belongs to.
        watch: PathBuf,
        /// Which component is in the way, and why.
        reason: String,
    },
    /// Before a run: a local destination now resolves to a place that overlaps a
    /// watched tree (a symlink in it was re-pointed since it was checked).
    #[error(
        "the destination {destination} now resolves to {}, which {} the watched directory \
         {} (a symlink in it was re-pointed?): rsync --delete would {}; nothing is run \
         there until the destination is outside every watched tree",
        .resolved.display(),
        places(*.relation),
        .watched.display(),
        damage(*.relation)
    )]
    Moved {
        /// The destination as configured.
        destination: String,
        /// Where it leads now.
        resolved: PathBuf,
        /// How that lies relative to `watched`.
        relation: Relation,
        /// The watched tree it overlaps.
        watched: PathBuf,
    },
}

fn watches(relation: Relation) -> &'static str {
    match relation {
        Relation::Same => "is the same directory as",
        Relation::Inside => "is nested inside",
        Relation::Contains => "contains",
    }
}

fn places(relation: Relation) -> &'static str {
    match relation {
        Relation::Same => "is the same directory as",
        Relation::Inside => "is inside",
        Relation::Contains => "contains",
    }
}

fn damage(relation: Relation) -> &'static str {
    match relation {
        Relation::Inside => "nest the mirror inside itself, level after level",
        _ => "delete or overwrite",
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(places(*self))
    }
}
