//! The inotify backend: one watch per directory. Turns inotify events into changed paths per watch, keeping the watch table right
//! as directories appear, move and disappear.
//!
//! A new directory is watched first and scanned second, so a file written into it
//! before the watch existed is found by the scan and one written after is reported
//! by an event: none is missed, some are seen twice (the batch set absorbs that).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use std::ffi::CString;
use std::os::fd::AsRawFd;

use inotify::Inotify;

use super::Change;
use super::link_walker::Ctime;
use crate::config::EventSet;
use crate::exclude::ExcludeSet;
use moves::unswap;
use watch_tree::{NodeId, WatchTree, Wd};

mod events;
mod lost_writes;
mod moves;
mod removed_names;
pub(super) mod scan;
mod watch_tree;

struct Root {
    path: PathBuf,
    node: Option<NodeId>,
    excludes: ExcludeSet,
    /// Why some directories of this tree have no watch (the watch limit), if so:
    /// their changes are seen only by full syncs.
    degraded: Option<String>,
    /// Directories that could not be watched for another reason than the
    /// limit (not readable by the daemon's user: `EACCES`), with why: tried
    /// again when a `chmod` or `chown` of one is seen, and before full syncs.
    unreadable: BTreeMap<Vec<u8>, String>,
    /// Where the kernel's filesystems are mounted inside it (relative): left
    /// unwatched, as rsync never sees them (`crate::kernel_filesystems`).
    kernel_points: BTreeSet<Vec<u8>>,
    /// Whether it may hold files with several names (see `lost_writes`).
    links: lost_writes::Links,
}

/// Owns the inotify instance and the watch table.
pub struct InotifyWatcher {
    /// `None` when no instance could be made (`fs.inotify.max_user_instances`
    /// reached by other programs of the user): trees fanotify watches need
    /// none, and any other tree is refused saying why.
    inotify: Option<Inotify>,
    /// Why there is no instance.
    unavailable: Option<String>,
    events: EventSet,
    tree: WatchTree,
    roots: HashMap<u32, Root>,
    /// Directories seen leaving by `IN_MOVED_FROM`, by cookie, until the matching
    /// `IN_MOVED_TO` (a rename inside our trees) or the end of the read (moved out).
    /// (cookie, watch descriptor, the tree it left).
    moved_out: Vec<(u32, Wd, u32)>,
    /// Directories (by watch descriptor) that left by rename and lost events while
    /// their path was unknown: their arrival is not a pure rename.
    lost_while_moving: Vec<Wd>,
    /// Every entry seen leaving by `IN_MOVED_FROM` in this read (cookie, tree,
    /// old path, whether a directory), to pair it with its `IN_MOVED_TO` as one
    /// move.
    renamed_from: Vec<(u32, u32, Vec<u8>, bool)>,
    /// File names whose removal was read: a write named by one went through
    /// a descriptor kept open after the removal (see `removed_names`).
    removed: removed_names::RemovedNames,
    /// Names written through and gone when the write was read (renamed
    /// since), by tree, in this read and the one before: a rename read after
    /// carries the write to the new name, whose other names are looked for
    /// (see `events::carry_gone_writes`).
    /// Each with the change time it may date from (see `lost_writes`).
    written_gone: Vec<(u32, Vec<u8>, Ctime)>,
    written_gone_before: Vec<(u32, Vec<u8>, Ctime)>,
    /// Closes after writes read at names that held a file then, in trees
    /// that may hold files with several names, in this read and the one
    /// before, with the change time they may date from (see `lost_writes`).
    written_seen: lost_writes::WrittenSeen,
    written_seen_before: lost_writes::WrittenSeen,
    /// Trees where writes were read in this read past the bound on those
    /// kept in `written_seen`: their files changed since are looked for.
    written_unkept: std::collections::HashSet<u32>,
    /// When the queue was last found empty: every event read since was
    /// queued after it.
    quiet_at: SystemTime,
    buffer: Vec<u8>,
    limit_reported: bool,
    /// Directories whose watch failed for another reason (logged once each).
    unwatchable_reported: std::collections::HashSet<PathBuf>,
    /// While a start-up scan runs beside the initial full sync: anything changed
    /// at or after this time may have been missed by that sync.
    changed_since: Option<SystemTime>,
    saw_change: bool,
    /// Queue overflows so far.
    pub overflows: u64,
}

/// What a tree that needs inotify is told when there is no instance.
fn unavailable_because(error: &io::Error) -> String {
    let hint = match error.raw_os_error() {
        Some(libc::EMFILE) => {
            " (the user's inotify instances are used up by other programs: raise \
             fs.inotify.max_user_instances)"
        }
        _ => "",
    };
    format!("inotify is unavailable: {error}{hint}")
}

impl InotifyWatcher {
    /// Creates the inotify instance. `events` are the events that count as changes.
    pub fn new(events: EventSet) -> InotifyWatcher {
        Self::with_instance(events, Inotify::init())
    }

    /// [`InotifyWatcher::new`] with the instance given (or why there is none).
    pub fn with_instance(events: EventSet, instance: io::Result<Inotify>) -> InotifyWatcher {
        let (inotify, unavailable) = match instance {
            Ok(instance) => (Some(instance), None),
            Err(e) => (None, Some(unavailable_because(&e))),
        };
        InotifyWatcher {
            inotify,
            unavailable,
            events,
            tree: WatchTree::default(),
            roots: HashMap::new(),
            moved_out: Vec::new(),
            lost_while_moving: Vec::new(),
            renamed_from: Vec::new(),
            removed: removed_names::RemovedNames::default(),
            written_gone: Vec::new(),
            written_gone_before: Vec::new(),
            written_seen: Default::default(),
            written_seen_before: Default::default(),
            written_unkept: Default::default(),
            quiet_at: SystemTime::now(),
            buffer: vec![0; 256 * 1024],
            limit_reported: false,
            unwatchable_reported: Default::default(),
            changed_since: None,
            saw_change: false,
            overflows: 0,
        }
    }

    /// The inotify descriptor, for the event loop to wait on, if there is an
    /// instance.
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.inotify.as_ref().map(Inotify::as_raw_fd)
    }

    /// Why there is no inotify instance, if there is none.
    pub fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// `inotify_add_watch(2)`, called directly: the table keeps only the number.
    fn add_watch(&self, path: &Path) -> io::Result<Wd> {
        self.add_watch_with(path, 0)
    }

    /// A directory opened without following any symlink, named by its
    /// descriptor (`/proc/self/fd/N`, itself a link the watch must follow).
    fn add_watch_through(&self, proc_path: &Path) -> io::Result<Wd> {
        self.add_watch_mask(
            proc_path,
            self.events.watch_mask().bits() & !libc::IN_DONT_FOLLOW,
        )
    }

    fn add_watch_with(&self, path: &Path, extra: u32) -> io::Result<Wd> {
        self.add_watch_mask(path, self.events.watch_mask().bits() | extra)
    }

    fn add_watch_mask(&self, path: &Path, mask: u32) -> io::Result<Wd> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        let Some(fd) = self.raw_fd() else {
            return Err(io::Error::other(
                self.unavailable.clone().unwrap_or_default(),
            ));
        };
        // SAFETY: a valid descriptor and a NUL-terminated path that outlives the call.
        let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) };
        if wd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(wd)
        }
    }

    /// `inotify_rm_watch(2)`; a watch the kernel already dropped is not an error.
    fn rm_watch(&self, wd: Wd) {
        if let Some(fd) = self.raw_fd() {
            // SAFETY: plain syscall on our own descriptor.
            unsafe { libc::inotify_rm_watch(fd, wd) };
        }
    }

    /// Starts watching a tree: its root now, the rest with [`InotifyWatcher::scan_root`].
    /// The root's watch also reports the root itself moving away (`IN_MOVE_SELF`).
    pub fn add_root(&mut self, watch: u32, path: &Path, excludes: ExcludeSet) -> io::Result<()> {
        let wd = self
            .add_watch_with(path, libc::IN_MOVE_SELF)
            .map_err(name_the_watch_limit)?;
        let node = self.tree.insert(None, watch, b"", wd);
        self.roots.insert(
            watch,
            Root {
                path: path.to_path_buf(),
                node: Some(node),
                excludes,
                degraded: None,
                unreadable: BTreeMap::new(),
                kernel_points: BTreeSet::new(),
                links: Default::default(),
            },
        );
        Ok(())
    }

    /// Watches every directory of a tree (excluded ones left out). The initial full
    /// sync may already be running beside this scan, to save time: then
    /// `changed_since` is when it started, and the scan reports whether anything in
    /// the tree changed after that (a directory's or file's ctime, read after the
    /// watch on its directory exists, so later changes are events). Only then can
    /// the sync have missed something, and the caller schedules another.
    pub fn scan_root(&mut self, watch: u32, changed_since: Option<SystemTime>) -> bool {
        let Some(root) = self.roots.get(&watch) else {
            return false;
        };
        let Some(node) = root.node else {
            return false;
        };
        self.changed_since = changed_since;
        self.saw_change = false;
        if let Ok(meta) = std::fs::symlink_metadata(&root.path) {
            self.note_ctime(&meta);
        }
        let mut ignored = Vec::new();
        self.scan_children(watch, node, Vec::new(), false, &mut ignored);
        self.changed_since = None;
        self.saw_change
    }

    fn note_ctime(&mut self, meta: &std::fs::Metadata) {
        use std::os::unix::fs::MetadataExt;
        let Some(since) = self.changed_since else {
            return;
        };
        let ctime = SystemTime::UNIX_EPOCH
            + std::time::Duration::new(
                meta.ctime().max(0) as u64,
                meta.ctime_nsec().clamp(0, 999_999_999) as u32,
            );
        if ctime >= since {
            self.saw_change = true;
            // One change is enough to ask for another full sync.
            self.changed_since = None;
        }
    }

    /// Stops watching a tree: every watch in it is removed from the kernel.
    pub fn remove_root(&mut self, watch: u32) {
        if let Some(root) = self.roots.remove(&watch)
            && let Some(node) = root.node
        {
            self.drop_subtree(node);
        }
    }

    /// New exclude patterns for a tree: directories no longer excluded get watches
    /// (newly excluded ones keep theirs, but their events are filtered out).
    pub fn set_excludes(&mut self, watch: u32, excludes: ExcludeSet) {
        let node = match self.roots.get_mut(&watch) {
            Some(root) => {
                root.excludes = excludes;
                root.node
            }
            None => None,
        };
        if let Some(node) = node {
            let mut ignored = Vec::new();
            self.scan_children(watch, node, Vec::new(), false, &mut ignored);
        }
        // What an exclude let go of was never walked by a search.
        self.note_links(watch);
    }

    /// Where the kernel's filesystems are mounted inside a tree now (from the
    /// mount table): the scans do not descend there.
    pub fn set_kernel_points(&mut self, watch: u32, points: BTreeSet<Vec<u8>>) {
        if let Some(root) = self.roots.get_mut(&watch) {
            root.kernel_points = points;
        }
    }

    /// Why a tree is not fully watched, if it is not.
    pub fn degraded(&self, watch: u32) -> Option<&str> {
        let root = self.roots.get(&watch)?;
        root.degraded
            .as_deref()
            .or_else(|| root.unreadable.values().next().map(String::as_str))
    }

    /// Tries again to watch the directories of a tree that could not be read
    /// (not those past the watch limit): cheap enough for every `wait`,
    /// where a whole-tree retry walked every directory each time (found by
    /// a review).
    pub fn retry_unreadable(&mut self, watch: u32) {
        let Some(root) = self.roots.get(&watch) else {
            return;
        };
        let unreadable: Vec<Vec<u8>> = root.unreadable.keys().cloned().collect();
        let mut ignored = Vec::new();
        for rel in unreadable {
            if let Some(root) = self.roots.get_mut(&watch) {
                root.unreadable.remove(&rel);
            }
            self.rewatch(watch, &rel, &mut ignored);
        }
    }

    /// Tries again to watch every directory of a degraded tree (the limit may have
    /// been raised, or directories deleted); returns whether it is still degraded.
    pub fn retry_degraded(&mut self, watch: u32) -> bool {
        let Some(root) = self.roots.get_mut(&watch) else {
            return false;
        };
        root.degraded = None;
        root.unreadable.clear();
        let Some(node) = root.node else {
            return false;
        };
        self.limit_reported = false;
        let mut ignored = Vec::new();
        self.scan_children(watch, node, Vec::new(), false, &mut ignored);
        let still = self.degraded(watch).is_some();
        if !still && let Some(root) = self.roots.get(&watch) {
            tracing::info!("{}: every directory is watched again", root.path.display());
        }
        still
    }

    /// The trees watched here, with their roots.
    pub fn roots(&self) -> Vec<(u32, PathBuf)> {
        self.roots
            .iter()
            .map(|(watch, root)| (*watch, root.path.clone()))
            .collect()
    }

    /// A filesystem was mounted on, or unmounted from, directory `rel` of a
    /// tree: its old watches (on what is no longer visible there) are dropped,
    /// and it is watched and listed again as it is now.
    pub fn rewatch(&mut self, watch: u32, rel: &[u8], out: &mut Vec<Change>) {
        let Some(mut node) = self.roots.get(&watch).and_then(|r| r.node) else {
            return;
        };
        let (parent_rel, name) = match rel.iter().rposition(|b| *b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&rel[..0], rel),
        };
        for part in parent_rel.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
            match self.tree.child(node, part) {
                Some(child) => node = child,
                // Not watched (excluded, or below a directory that is not).
                None => return,
            }
        }
        if let Some(old) = self.tree.child(node, name) {
            self.drop_subtree(old);
        }
        let emit = self.events.wants_new_entries();
        self.scan_dir(watch, node, name, rel.to_vec(), emit, out);
    }

    /// Directories watched in one tree.
    pub fn watched_dirs(&self, watch: u32) -> u64 {
        self.tree.count(watch)
    }

    /// The relative path of every watched directory of one tree.
    #[cfg(test)]
    pub fn watched_paths(&self, watch: u32) -> std::collections::BTreeSet<Vec<u8>> {
        self.tree.rel_paths(watch)
    }

    /// Reads and handles every event queued now, without waiting. Returns
    /// `Ok(false)` when there was nothing to read.
    pub fn read_queued(&mut self, out: &mut Vec<Change>) -> io::Result<bool> {
        let mut any = false;
        let start = out.len();
        loop {
            let Some(inotify) = self.inotify.as_mut() else {
                return Ok(false);
            };
            let events: Vec<_> = match inotify.read_events(&mut self.buffer) {
                Ok(events) => events
                    .map(|e| {
                        (
                            e.wd.get_watch_descriptor_id(),
                            e.mask,
                            e.cookie,
                            e.name.map(|n| n.as_bytes().to_vec()),
                        )
                    })
                    .collect(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            any = true;
            for (wd, mask, cookie, name) in events {
                self.handle(wd, mask, cookie, name, out);
            }
        }
        self.finish_moves(out);
        // A file with other names swapped in (`RENAME_EXCHANGE`): a write
        // read by the name it had before the swap was looked up on the file
        // that took that name, so its other names are looked for now, as a
        // write read at its own name would have them (a black-box attack: a
        // same-size rewrite of `d/b` swapped with `f` left `d/b`'s other name
        // with its old bytes).
        for (watch, rel) in unswap(&mut out[start..]) {
            if let Some(root) = self.roots.get(&watch)
                && crate::watcher::has_other_links(&root.path, &rel)
            {
                out.push(Change::Linked {
                    watch,
                    rel: Some(rel),
                });
            }
        }
        Ok(any)
    }

    /// Unwatches a directory and everything below it.
    fn drop_subtree(&mut self, node: NodeId) {
        for wd in self.tree.remove_subtree(node) {
            self.removed.forget_dir(wd);
            self.rm_watch(wd);
        }
    }
}

#[cfg(test)]
mod tests;

/// The kernel says a full watch table as ENOSPC, "No space left on device",
/// which sends an administrator to the disks: a root that cannot be watched
/// for that reason names the limit instead (found by a black-box attack).
fn name_the_watch_limit(error: io::Error) -> io::Error {
    if error.raw_os_error() != Some(libc::ENOSPC) {
        return error;
    }
    let limit = scan::max_user_watches().map_or("?".into(), |n| n.to_string());
    io::Error::new(
        error.kind(),
        format!(
            "the inotify watch limit is reached (fs.inotify.max_user_watches = {limit}, \
             shared by every program of this user): raise it, e.g. `sysctl \
             fs.inotify.max_user_watches=524288` and a file in /etc/sysctl.d/ to keep it \
             ({error})"
        ),
    )
}
