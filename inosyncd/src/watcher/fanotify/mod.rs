//! The fanotify backend: filesystem marks instead of one inotify watch per
//! directory, so a tree of any size is watched the moment its marks are set (no
//! walk, no watch limit, no window in which a new directory is not yet watched).
//!
//! A tree is watched through every filesystem reachable below its root: the one
//! the root is on and each one mounted inside it (mounts that come and go while
//! the daemon runs included, see `refresh_mounts`). Marks are per filesystem and
//! shared by the trees on it; filesystems that report the same fsid go to
//! different groups (see `groups`). No descriptor on a watched filesystem is
//! held between reads, so it can be unmounted at any time.
//!
//! Every event names a directory by its file handle plus an entry name. The
//! directory's path is found through the handle, by each mount of its
//! filesystem that a tree reaches (see `places`), and remembered with what it
//! means here (outside every watch, excluded, or a path in one watch), so the
//! events of a busy filesystem outside our trees cost one map lookup. A
//! directory rename anywhere makes every remembered place stale (a new
//! generation): each is looked up again when next used, and the last known
//! place is kept for directories that are gone by then.
//!
//! A directory that is gone before its events are read cannot be looked up. Its
//! own deletion (or rename away) is always queued behind them, carrying its handle,
//! and the path that event names covers everything that happened inside. Should
//! a handle stay unplaced when the queue is drained, every watch on that
//! filesystem gets a full sync: never silence.

mod error;
mod events;
mod gone_names;
mod groups;
mod handles;
mod links;
mod outside;
mod places;
pub mod records;
mod remount;
mod returns;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use super::Change;
use super::mounts::{self, Mount};
use crate::config::EventSet;
use crate::exclude::ExcludeSet;
use groups::Groups;
use places::Cached;
use records::Fid;

pub use error::FanotifyError;

struct Root {
    /// The root's path as the kernel names it (symlinks resolved).
    path: Vec<u8>,
    /// The root's own handle, to recognise its deletion or rename.
    fid: Fid,
    /// The filesystems reachable from the root: the mount it is on first, then
    /// those mounted below it. Each one's filesystem is marked.
    mounts: Vec<Mount>,
    excludes: ExcludeSet,
}

impl Root {
    fn path(&self) -> &Path {
        Path::new(std::ffi::OsStr::from_bytes(&self.path))
    }

    /// Mount points strictly below the root, relative to it.
    fn points_below(&self) -> BTreeSet<Vec<u8>> {
        mounts::points_below(&self.mounts, &self.path)
    }
}

/// Past this many remembered directories outside every watch, they are forgotten
/// (looked up again when next seen), so a busy filesystem cannot grow the map.
const MAX_REMEMBERED_OUTSIDE: usize = 4096;

/// What became of the trees when the mounts changed.
#[derive(Debug, Default)]
pub struct Remounted {
    /// Mount points (watch, path, whether it went) where a filesystem came or
    /// went: compared whole.
    pub points: Vec<(u32, Vec<u8>, bool)>,
    /// Trees whose own mount changed (unmounted, covered).
    pub roots_gone: Vec<u32>,
    /// Trees with a new filesystem inside that cannot be marked, and why: they
    /// must be watched another way.
    pub failed: Vec<(u32, String)>,
}

/// Owns the fanotify groups and what it knows of directories.
pub struct FanWatcher {
    groups: Groups,
    events: EventSet,
    roots: HashMap<u32, Root>,
    dirs: HashMap<Fid, Cached>,
    outside: usize,
    generation: u64,
    /// Directories whose events could not be placed in this read, until their
    /// own deletion or rename is seen.
    unplaced: HashSet<Fid>,
    /// This process, whose own writes are not changes.
    own_pid: i32,
    escalation_logged: Option<Instant>,
    /// A directory was named by looking it up during this drain: its path is the
    /// one it has now, which may already include directory renames still to be
    /// read in this drain. Such renames are then transferred, not renamed (see
    /// `renamed`).
    looked_up: bool,
    /// The places objects left by renames in this drain (see `returns`).
    renames: returns::Renames,
    /// Mount points opened to look handles up during one drain (`None`: could
    /// not be opened); closed when the drain ends, so no filesystem stays busy.
    opened: HashMap<Vec<u8>, Option<OwnedFd>>,
    /// Files of the trees with other names (see `links`).
    links: links::Links,
    links_logged: Option<Instant>,
    /// Files written by names gone when the write was read (see `gone_names`).
    gone: gone_names::GoneWrites,
    /// Files written outside the trees, read with one name while the trees
    /// on their filesystem were walked (the index could not say whether it
    /// was a tree's), this read: each one whose link count changed in the
    /// same read (the name written through removed before the look-up) is
    /// searched for by its inode (see `outside::settle_single_names`).
    single_outside: Vec<(Fid, links::Inode, u32)>,
    /// Files with several names first kept by `gone_names` in this read, as
    /// [`Change::Kept`], for the journal.
    kept_linked: Vec<Change>,
    /// When the queue was last found empty (each group's, the earliest).
    drained_at: Instant,
    gone_logged: Option<Instant>,
    /// Each tree by its root's path (see `places`).
    root_at: HashMap<Vec<u8>, u32>,
    /// The trees by their roots' handles: a root is in its tree whatever an
    /// event read from the directory above it says (see `places::remember`).
    root_fids: HashMap<Fid, u32>,
    /// The mount points through which each filesystem (by device number) is
    /// reached by a tree, deepest first (see `places`).
    views: HashMap<u64, Vec<Vec<u8>>>,
    /// Queue overflows so far (none expected: the queue is unbounded).
    pub overflows: u64,
    buffer: Vec<u8>,
}

/// The events every mark asks for: the user's content events (their bits are
/// inotify's) and the directory-entry events the backend always needs.
fn mark_mask(events: EventSet) -> u64 {
    let content = libc::FAN_ACCESS
        | libc::FAN_MODIFY
        | libc::FAN_ATTRIB
        | libc::FAN_CLOSE_WRITE
        | libc::FAN_CLOSE_NOWRITE
        | libc::FAN_OPEN;
    (u64::from(events.bits()) & content)
        | libc::FAN_CREATE
        | libc::FAN_DELETE
        | libc::FAN_RENAME
        | libc::FAN_ONDIR
}

impl FanWatcher {
    /// Creates the first fanotify group (root only: `CAP_SYS_ADMIN`).
    pub fn new(events: EventSet) -> io::Result<FanWatcher> {
        Ok(FanWatcher {
            groups: Groups::new(mark_mask(events))?,
            events,
            roots: HashMap::new(),
            dirs: HashMap::new(),
            outside: 0,
            generation: 0,
            unplaced: HashSet::new(),
            // The unit tests change trees from this very process (the end-to-end
            // test `own_writes` checks the daemon's).
            own_pid: if cfg!(test) {
                -1
            } else {
                std::process::id() as i32
            },
            escalation_logged: None,
            looked_up: false,
            renames: returns::Renames::default(),
            opened: HashMap::new(),
            links: links::Links::default(),
            links_logged: None,
            gone: gone_names::GoneWrites::default(),
            single_outside: Vec::new(),
            kept_linked: Vec::new(),
            drained_at: Instant::now(),
            gone_logged: None,
            root_at: HashMap::new(),
            root_fids: HashMap::new(),
            views: HashMap::new(),
            overflows: 0,
            buffer: vec![0; 64 * 1024],
        })
    }

    /// The descriptors to wait on (one per group; a cloned disk adds one).
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.groups.fds()
    }

    /// Starts watching a tree: marks the filesystem it is on and each one
    /// mounted below it (`table`: the mounts now), unless another tree already
    /// did. The error says why this tree cannot use fanotify; nothing stays
    /// marked for it then.
    pub fn add_root(
        &mut self,
        watch: u32,
        path: &Path,
        excludes: ExcludeSet,
        table: &[Mount],
    ) -> Result<(), FanotifyError> {
        let kernel = handles::kernel_path(path).map_err(FanotifyError::Resolve)?;
        let dev = std::fs::metadata(&kernel)
            .map_err(FanotifyError::Stat)?
            .dev();
        let fsid = handles::fsid_of(&kernel).map_err(FanotifyError::Statfs)?;
        let fid = handles::fid_of(&kernel, fsid)
            .map_err(FanotifyError::NoHandles)?
            .keyed(dev);
        let kernel_bytes = kernel.as_os_str().as_bytes().to_vec();
        let mut reachable = mounts::watchable(table, &kernel_bytes);
        // The mount table may lag behind (or not know) the root's own mount.
        if reachable.first().is_none_or(|m| m.dev != dev) {
            reachable.insert(
                0,
                Mount {
                    id: u64::MAX,
                    parent: u64::MAX,
                    dev,
                    root: b"/".to_vec(),
                    point: kernel_bytes.clone(),
                    fstype: String::new(),
                },
            );
        }
        let mut marked: Vec<u64> = Vec::new();
        for (i, mount) in reachable.iter().enumerate() {
            // The root's own filesystem is marked through the root; the others
            // through their mount points.
            let through = if i == 0 {
                kernel.clone()
            } else {
                Path::new(std::ffi::OsStr::from_bytes(&mount.point)).to_path_buf()
            };
            if let Err(e) = self.mark(mount, &through) {
                for dev in marked {
                    self.groups.unmark(dev);
                }
                return Err(if i == 0 {
                    e
                } else {
                    FanotifyError::Submount {
                        fstype: mount.fstype.clone(),
                        point: through,
                        cause: Box::new(e),
                    }
                });
            }
            marked.push(mount.dev);
        }
        self.links.index(watch, kernel.clone(), excludes.clone());
        self.roots.insert(
            watch,
            Root {
                path: kernel_bytes,
                fid,
                mounts: reachable,
                excludes,
            },
        );
        self.generation += 1;
        self.index_roots();
        Ok(())
    }

    /// Marks the filesystem of `mount` through the directory `through` on it.
    fn mark(&mut self, mount: &Mount, through: &Path) -> Result<(), FanotifyError> {
        let fsid = handles::fsid_of(through).map_err(FanotifyError::Statfs)?;
        handles::fid_of(through, fsid).map_err(FanotifyError::NoHandles)?;
        self.groups.mark(mount.dev, fsid, through).map_err(|error| {
            let why = match error.raw_os_error() {
                Some(libc::EOPNOTSUPP | libc::ENODEV | libc::EXDEV) => {
                    " (this filesystem has no filesystem-wide marks with file handles)"
                }
                Some(libc::EPERM) => " (needs CAP_SYS_ADMIN)",
                _ => "",
            };
            FanotifyError::Mark { error, why }
        })
    }

    /// Rebuilds what `places` looks trees up by, after trees or mounts changed.
    fn index_roots(&mut self) {
        self.root_at = self
            .roots
            .iter()
            .map(|(watch, root)| (root.path.clone(), *watch))
            .collect();
        self.root_fids = self
            .roots
            .iter()
            .map(|(watch, root)| (root.fid.clone(), *watch))
            .collect();
        let mut views: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
        for mount in self.roots.values().flat_map(|r| r.mounts.iter()) {
            views
                .entry(mount.dev)
                .or_default()
                .push(mount.point.clone());
        }
        for points in views.values_mut() {
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            points.dedup();
        }
        self.views = views;
    }

    /// The trees watched here, with their roots as the kernel names them
    /// (symlinks resolved, as the mount table names mount points).
    pub fn root_paths(&self) -> Vec<(u32, Vec<u8>)> {
        self.roots
            .iter()
            .map(|(watch, root)| (*watch, root.path.clone()))
            .collect()
    }

    /// Whether this tree is watched here.
    pub fn has_root(&self, watch: u32) -> bool {
        self.roots.contains_key(&watch)
    }

    /// Stops watching a tree; each filesystem's mark goes with its last tree.
    pub fn remove_root(&mut self, watch: u32) {
        let Some(root) = self.roots.remove(&watch) else {
            return;
        };
        self.links.forget(watch);
        self.generation += 1;
        self.index_roots();
        for mount in &root.mounts {
            self.groups.unmark(mount.dev);
        }
    }

    /// Stops watching a tree and gives back its path and excludes (to watch it
    /// another way).
    pub fn take_root(&mut self, watch: u32) -> Option<(std::path::PathBuf, ExcludeSet)> {
        let (path, excludes) = {
            let root = self.roots.get(&watch)?;
            (root.path().to_path_buf(), root.excludes.clone())
        };
        self.remove_root(watch);
        Some((path, excludes))
    }

    /// New exclude patterns for a tree. Its files with several names are
    /// looked for again: a directory no longer excluded holds names the last
    /// walk left out.
    pub fn set_excludes(&mut self, watch: u32, excludes: ExcludeSet) {
        if let Some(root) = self.roots.get_mut(&watch) {
            root.excludes = excludes;
            self.generation += 1;
            self.index_roots();
            self.reindex(&[watch]);
        }
    }

    /// Reads and handles every event queued now. Returns `Ok(false)` when there
    /// was nothing to read.
    pub fn read_queued(&mut self, out: &mut Vec<Change>) -> io::Result<bool> {
        let mut any = false;
        self.looked_up = false;
        self.renames.clear();
        let read_at = Instant::now();
        let mut events = Vec::new();
        let mut drained_at: Option<Instant> = None;
        for group in 0..self.groups.len() {
            // A rename that ends a buffer may be the first half of an
            // exchange whose second half opens the next one: it waits for
            // it (read apart, the halves were two renames, and the index
            // moved both sides' names to one; a review).
            let mut held: Option<records::Event> = None;
            loop {
                let reading_at = Instant::now();
                let n = match self.groups.read(group, &mut self.buffer) {
                    Ok(n) => n,
                    // The next event does not fit (names and handles are
                    // larger on some filesystems): the buffer grows.
                    Err(e)
                        if e.raw_os_error() == Some(libc::EINVAL)
                            && self.buffer.len() < MAX_BUFFER =>
                    {
                        let grown = (self.buffer.len() * 2).min(MAX_BUFFER);
                        self.buffer.resize(grown, 0);
                        continue;
                    }
                    Err(e) => {
                        self.handle_all(&mut Vec::from_iter(held.take()), out);
                        return Err(e);
                    }
                };
                if n == 0 {
                    // Every event queued before this read has been read.
                    drained_at = Some(drained_at.map_or(reading_at, |at| at.min(reading_at)));
                    break;
                }
                any = true;
                events.clear();
                if let Err(e) = records::parse(&self.buffer[..n], &mut events) {
                    tracing::warn!("{e}: full sync of every fanotify-watched tree");
                    self.everything(out);
                }
                for event in &mut events {
                    self.rekey(group, event);
                }
                if let Some(first) = held.take() {
                    events.insert(0, first);
                }
                held = events::take_unpaired_rename(&mut events);
                self.handle_all(&mut events, out);
            }
            if let Some(last) = held {
                self.handle_all(&mut [last], out);
            }
        }
        self.drained_at = drained_at.unwrap_or(read_at);
        self.escalate_unplaced(out);
        self.settle_single_names(out);
        out.append(&mut self.kept_linked);
        self.place_gone_writes(read_at, false, out);
        self.take_in_links(out);
        // Nothing of a watched filesystem stays open between reads.
        self.opened.clear();
        Ok(any)
    }

    /// The trees that reach a filesystem in `devs` (device numbers), sorted:
    /// those an event there that cannot be placed more closely concerns.
    fn watches_on(&self, devs: &[u64]) -> Vec<u32> {
        let mut watches: Vec<u32> = self
            .roots
            .iter()
            .filter(|(_, root)| root.mounts.iter().any(|m| devs.contains(&m.dev)))
            .map(|(watch, _)| *watch)
            .collect();
        watches.sort_unstable();
        watches
    }

    /// Whether a tree is being walked for its files with several names: until
    /// it is done, a write to such a file may be compared whole rather than
    /// listed by name (a same-size rewrite with its mtime set back would not
    /// reach its other names), so `wait` waits for it too.
    pub fn indexing(&self) -> bool {
        self.links.walking()
    }

    /// Whether writes outside the trees wait for a walk to be placed.
    pub fn has_deferred(&self) -> bool {
        self.links.has_deferred() || !self.gone.is_empty()
    }

    /// Places the writes by names gone when they were read, once their grace
    /// is over: the queue is read once more (the events that made their names
    /// go are in it by then), and they are looked up. Called by the event loop
    /// on every turn (it wakes for them: [`FanWatcher::next_placing`]); while
    /// stopping (`read` false: no more events are read), all are placed as
    /// they are.
    pub fn place_gone_names(&mut self, read: bool, out: &mut Vec<Change>) {
        if self.gone.is_empty() {
            return;
        }
        if !read {
            self.place_gone_writes(Instant::now(), true, out);
            self.opened.clear();
            return;
        }
        if self.gone.next_due().is_some_and(|due| due > Instant::now()) {
            return;
        }
        if let Err(e) = self.read_queued(out) {
            tracing::warn!("reading fanotify events: {e}");
            self.place_gone_writes(Instant::now(), true, out);
            self.opened.clear();
        }
    }

    /// When writes by gone names are next due to be placed.
    pub fn next_placing(&self) -> Option<Instant> {
        self.gone.next_due()
    }

    /// Takes in the walks of the link index that are done, and places the
    /// writes that waited for them. Called by the event loop at least once a
    /// second (a walk ends without an event): a walk that ended after the
    /// queue was last found empty has the queue read first (see
    /// [`FanWatcher::take_in_links`]).
    pub fn poll_links(&mut self, out: &mut Vec<Change>) {
        if self.links.ended_after(self.drained_at) {
            match self.read_queued(out) {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!("reading fanotify events: {e}");
                    self.drained_at = Instant::now();
                }
            }
        }
        self.take_in_links(out);
    }

    /// Takes in the walks that ended by the time the queue was last found
    /// empty: a rename made while one ran, which it may have missed, has
    /// been read, while its walk still counted, so that the renamed
    /// directory is walked (a review: a walk taken in before such a rename
    /// was read left the tree counted as walked, and the directory's files
    /// unknown).
    fn take_in_links(&mut self, out: &mut Vec<Change>) {
        self.links.poll(self.drained_at);
        if self.links.take_walk_all() {
            let watches: Vec<u32> = self.roots.keys().copied().collect();
            self.reindex(&watches);
        }
        self.place_deferred(out);
    }
}

/// The largest read buffer: an event is a few hundred bytes at most (two
/// directory handles and names, and the file's handle).
const MAX_BUFFER: usize = 1 << 20;

/// Whether a message logged at most once a minute (last logged at `last`)
/// is due now; if so, now is when it was last logged.
fn once_a_minute(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    let due = last.is_none_or(|at| now.duration_since(at) > std::time::Duration::from_secs(60));
    if due {
        *last = Some(now);
    }
    due
}
