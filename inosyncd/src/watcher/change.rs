//! What the engine must sync, whichever backend saw it.

/// What the engine must sync because of what the watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This path (relative to the watch root) changed, or appeared, or went away.
    Path { watch: u32, rel: Vec<u8> },
    /// This directory was made in the tree (`mkdir`): a changed path, and
    /// everything in it is new since. While nothing else from before is in
    /// it, the next batch may send it as one tree rather than list its paths
    /// (rsync walks a new directory faster than it reads a list of its files).
    Made { watch: u32, rel: Vec<u8> },
    /// This file was written and not (yet) closed (`IN_MODIFY` alone: `truncate(2)`
    /// by path, a log or database a program keeps open). It goes out once it is
    /// closed or has been quiet for a moment, not on every write. `linked`: the
    /// file had other names when the write was read, which changed too;
    /// whatever becomes of this name before it is quiet (a descriptor kept
    /// open writes on after its name went), the watch is then compared whole.
    Written {
        watch: u32,
        rel: Vec<u8>,
        linked: bool,
    },
    /// This directory may now be another tree than the one the targets hold (it
    /// arrived from outside, was swapped, deleted and made again, or a filesystem
    /// was mounted on it or unmounted from it): it is made equal as a whole tree,
    /// deletions included. Also reported as a changed path.
    Tree { watch: u32, rel: Vec<u8> },
    /// A filesystem was unmounted from this directory: compared whole, as a
    /// [`Change::Tree`], and the watch's running transfers are stopped and
    /// started again, so that none holds the unmounted filesystem busy (each
    /// rsync sees the source in a mount namespace of its own, where the
    /// unmount reaches only once nothing there is open: README "The sandbox").
    Unmounted { watch: u32, rel: Vec<u8> },
    /// Events of this watch may have been lost (queue overflow, watch limit): only
    /// a full sync makes the targets right again.
    Everything { watch: u32 },
    /// A file of this watch with other names (hard links) changed: they changed
    /// too, and the kernel names only the one written through. Where they are
    /// is not known: this watch, and every other watch whose root is on the
    /// same filesystem, is compared whole. `rel`: the name written through,
    /// when it is still that file; its other names are then looked for too
    /// (a whole compare sees no same-size rewrite with its mtime set back).
    Linked { watch: u32, rel: Option<Vec<u8>> },
    /// A file known by its inode (filesystem, inode) alone was written, and
    /// its names in the trees are not all known: fanotify read the write by
    /// a name gone when looked up whose names could not all be followed (a
    /// `RENAME_EXCHANGE` of a directory above it, a name outside the trees),
    /// or through a name outside the trees that the file lost since, its
    /// one name left not in the link index. The trees on its filesystem are
    /// searched for its names, which are listed (a whole compare, which the
    /// watcher asks for apart where it is needed, sees no same-size rewrite
    /// with its mtime set back).
    LinkedInode { watch: u32, inode: (u64, u64) },
    /// A file (filesystem, inode) with a name left, written by a name gone
    /// when the write was read: fanotify keeps it a moment before placing
    /// it (see `fanotify/gone_names.rs`). Nothing to sync yet; it is noted
    /// in the journal as a search for its names, so that a daemon killed
    /// before it is placed looks for them at the next start (a black-box
    /// attack: its other name kept a same-size rewrite's old bytes).
    Kept { watch: u32, inode: (u64, u64) },
    /// A file of this watch was written and cannot be followed to its
    /// other names (inotify: its name was removed, or taken by another
    /// file, before the write was read). A write sets the change time under
    /// every name: the trees on the filesystem of the watch's root are
    /// searched for regular files changed (`st_ctime`) at or after `since`
    /// (nanoseconds since the epoch), which are listed. `dev`: the
    /// filesystem of the name's directory, if it could be looked at (every
    /// tree is searched when it is not, or is not the root's: a mount
    /// inside the tree).
    ChangedSince {
        watch: u32,
        since: i128,
        dev: Option<u64>,
    },
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
    /// A directory renamed from `from` to `to` whose two places are also
    /// reported as trees to compare whole (its paths could not be placed in
    /// time: fanotify read it after looking up directories it may have moved).
    /// Nothing pending follows it; the target may rename it first, so that the
    /// comparison finds the files already there.
    Renamed {
        watch: u32,
        from: Vec<u8>,
        to: Vec<u8>,
    },
}

impl std::fmt::Display for Change {
    /// Paths as text, for the trace log of what the engine records.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        match self {
            Change::Path { watch, rel } => write!(f, "path {watch}:{:?}", text(rel)),
            Change::Made { watch, rel } => write!(f, "made {watch}:{:?}", text(rel)),
            Change::Written { watch, rel, linked } => {
                let linked = if *linked { " (linked)" } else { "" };
                write!(f, "written {watch}:{:?}{linked}", text(rel))
            }
            Change::Tree { watch, rel } => write!(f, "tree {watch}:{:?}", text(rel)),
            Change::Unmounted { watch, rel } => write!(f, "unmounted {watch}:{:?}", text(rel)),
            Change::Everything { watch } => write!(f, "everything {watch}"),
            Change::Linked { watch, .. } => write!(f, "linked {watch}"),
            Change::LinkedInode { watch, inode } => {
                write!(f, "linked {watch}: inode {}:{}", inode.0, inode.1)
            }
            Change::Kept { watch, inode } => {
                write!(f, "kept {watch}: inode {}:{}", inode.0, inode.1)
            }
            Change::ChangedSince { watch, since, .. } => {
                write!(f, "changed {watch}: since {since} ns")
            }
            Change::RootGone { watch } => write!(f, "root gone {watch}"),
            Change::Move {
                watch, from, to, ..
            } => {
                write!(f, "move {watch}:{:?} -> {:?}", text(from), text(to))
            }
            Change::Renamed { watch, from, to } => {
                write!(f, "renamed {watch}:{:?} -> {:?}", text(from), text(to))
            }
        }
    }
}
