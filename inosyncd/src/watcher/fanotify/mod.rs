//! The fanotify backend: one filesystem mark per filesystem instead of one
//! inotify watch per directory, so a tree of any size is watched the moment its
//! mark is set (no walk, no watch limit, no window in which a new directory is not
//! yet watched).
//!
//! Every event names a directory by its file handle plus an entry name. The
//! directory's path is found through the handle (see `handles`) and remembered
//! with what it means here (outside every watch, excluded, or a path in one watch),
//! so the events of a busy filesystem outside our trees cost one map lookup. A
//! directory rename anywhere makes every remembered place stale (a new
//! generation): each is looked up again when next used, and the last known place
//! is kept for directories that are gone by then.
//!
//! A directory that is gone before its events are read cannot be looked up. Its
//! own deletion (or rename away) is always queued behind them, carrying its handle,
//! and the path that event names covers everything that happened inside. Should
//! a handle stay unplaced when the queue is drained, every watch on that
//! filesystem gets a full sync: never silence.

mod handles;
mod places;
pub mod records;

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use inotify::EventMask;

use super::Change;
use crate::config::EventSet;
use crate::exclude::ExcludeSet;
use crate::watch_tree::join;
use places::{Cached, Place};
use records::{Event, Fid};

struct Root {
    /// The root's path as the kernel names it (symlinks resolved).
    path: Vec<u8>,
    fid: Fid,
    fsid: u64,
    excludes: ExcludeSet,
    /// A descriptor on the root, for `open_by_handle_at` (its mount is one from
    /// which every directory of this tree can be named).
    mount: OwnedFd,
}

impl Root {
    fn path(&self) -> &Path {
        Path::new(std::ffi::OsStr::from_bytes(&self.path))
    }
}

struct Filesystem {
    /// The descriptor the mark was set through, to remove it by.
    marked: OwnedFd,
    roots: usize,
}

/// Past this many remembered directories outside every watch, they are forgotten
/// (looked up again when next seen), so a busy filesystem cannot grow the map.
const MAX_REMEMBERED_OUTSIDE: usize = 4096;

/// Owns the fanotify group and what it knows of directories.
pub struct FanWatcher {
    fd: OwnedFd,
    events: EventSet,
    filesystems: HashMap<u64, Filesystem>,
    roots: HashMap<u32, Root>,
    dirs: HashMap<Fid, Cached>,
    outside: usize,
    generation: u64,
    /// Directories whose events could not be placed in this read, until their
    /// own deletion or rename is seen.
    unplaced: HashSet<Fid>,
    escalation_logged: Option<Instant>,
    /// A directory was named by looking it up during this drain: its path is the
    /// one it has now, which may already include directory renames still to be
    /// read in this drain. Such renames are then transferred, not renamed (see
    /// `renamed`).
    looked_up: bool,
    /// Queue overflows so far (none expected: the queue is unbounded).
    pub overflows: u64,
    buffer: Vec<u8>,
}

impl FanWatcher {
    /// Creates the fanotify group (root only: `CAP_SYS_ADMIN`). The queue is not
    /// bounded: events of the whole filesystem arrive, and an overflow caused by
    /// activity outside our trees would cost full syncs of all of them.
    pub fn new(events: EventSet) -> io::Result<FanWatcher> {
        let flags = libc::FAN_CLASS_NOTIF
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_REPORT_DFID_NAME_TARGET
            | libc::FAN_UNLIMITED_QUEUE;
        // SAFETY: plain syscall; the descriptor is owned below.
        let fd = unsafe {
            libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_LARGEFILE) as libc::c_uint)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FanWatcher {
            // SAFETY: a fresh descriptor nobody else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events,
            filesystems: HashMap::new(),
            roots: HashMap::new(),
            dirs: HashMap::new(),
            outside: 0,
            generation: 0,
            unplaced: HashSet::new(),
            escalation_logged: None,
            looked_up: false,
            overflows: 0,
            buffer: vec![0; 64 * 1024],
        })
    }

    /// The descriptor to wait on.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The events the mark asks for: the user's content events (their bits are
    /// inotify's) and the directory-entry events the backend always needs.
    fn mark_mask(&self) -> u64 {
        let content = libc::FAN_ACCESS
            | libc::FAN_MODIFY
            | libc::FAN_ATTRIB
            | libc::FAN_CLOSE_WRITE
            | libc::FAN_CLOSE_NOWRITE
            | libc::FAN_OPEN;
        (u64::from(self.events.bits()) & content)
            | libc::FAN_CREATE
            | libc::FAN_DELETE
            | libc::FAN_RENAME
            | libc::FAN_ONDIR
    }

    fn mark(&self, action: libc::c_uint, fd: &OwnedFd) -> io::Result<()> {
        // SAFETY: our group, a valid descriptor, no path (the object is `fd`'s).
        let rc = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                action | libc::FAN_MARK_FILESYSTEM,
                self.mark_mask(),
                fd.as_raw_fd(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Starts watching a tree: marks its filesystem unless another tree on it
    /// already did. The error says why this tree cannot use fanotify.
    pub fn add_root(
        &mut self,
        watch: u32,
        path: &Path,
        excludes: ExcludeSet,
    ) -> Result<(), String> {
        let kernel = handles::kernel_path(path).map_err(|e| format!("cannot resolve: {e}"))?;
        let mount = handles::mount_fd(&kernel).map_err(|e| format!("cannot open: {e}"))?;
        let fsid = handles::fsid_of(&kernel).map_err(|e| format!("cannot statfs: {e}"))?;
        let fid = handles::fid_of(&kernel, fsid)
            .map_err(|e| format!("no file handles on this filesystem ({e})"))?;
        if !self.filesystems.contains_key(&fsid) {
            let marked = handles::mount_fd(&kernel).map_err(|e| format!("cannot open: {e}"))?;
            self.mark(libc::FAN_MARK_ADD, &marked).map_err(|e| {
                let why = match e.raw_os_error() {
                    Some(libc::EOPNOTSUPP | libc::ENODEV | libc::EXDEV) => {
                        " (this filesystem has no filesystem-wide marks with file handles)"
                    }
                    Some(libc::EPERM) => " (needs CAP_SYS_ADMIN)",
                    _ => "",
                };
                format!("cannot mark the filesystem: {e}{why}")
            })?;
            self.filesystems
                .insert(fsid, Filesystem { marked, roots: 0 });
        }
        if let Some(fs) = self.filesystems.get_mut(&fsid) {
            fs.roots += 1;
        }
        self.roots.insert(
            watch,
            Root {
                path: kernel.into_os_string().into_encoded_bytes(),
                fid,
                fsid,
                excludes,
                mount,
            },
        );
        self.generation += 1;
        Ok(())
    }

    /// Whether this tree is watched here.
    pub fn has_root(&self, watch: u32) -> bool {
        self.roots.contains_key(&watch)
    }

    /// Stops watching a tree; the filesystem's mark goes with its last tree.
    pub fn remove_root(&mut self, watch: u32) {
        let Some(root) = self.roots.remove(&watch) else {
            return;
        };
        self.generation += 1;
        let last = match self.filesystems.get_mut(&root.fsid) {
            Some(fs) => {
                fs.roots -= 1;
                fs.roots == 0
            }
            None => false,
        };
        if last && let Some(fs) = self.filesystems.remove(&root.fsid) {
            // Already gone with an unmount: nothing to remove.
            let _ = self.mark(libc::FAN_MARK_REMOVE, &fs.marked);
        }
    }

    /// New exclude patterns for a tree.
    pub fn set_excludes(&mut self, watch: u32, excludes: ExcludeSet) {
        if let Some(root) = self.roots.get_mut(&watch) {
            root.excludes = excludes;
            self.generation += 1;
        }
    }

    /// Reads and handles every event queued now. Returns `Ok(false)` when there
    /// was nothing to read.
    pub fn read_queued(&mut self, out: &mut Vec<Change>) -> io::Result<bool> {
        let mut any = false;
        self.looked_up = false;
        let mut events = Vec::new();
        loop {
            // SAFETY: reading into our own buffer of the given length.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.buffer.as_mut_ptr().cast(),
                    self.buffer.len(),
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(err),
                }
            }
            if n == 0 {
                break;
            }
            any = true;
            events.clear();
            if let Err(e) = records::parse(&self.buffer[..n as usize], &mut events) {
                tracing::warn!("{e}: full sync of every fanotify-watched tree");
                self.everything(out);
            }
            let mut at = 0;
            while at < events.len() {
                let event = std::mem::take(&mut events[at]);
                if let Some(next) = events.get_mut(at + 1)
                    && is_exchange(&event, next)
                {
                    // RENAME_EXCHANGE: two renames that happened at once; applied
                    // one after the other they would collide, so both are
                    // transferred.
                    let next = std::mem::take(next);
                    self.handle(event, true, out);
                    self.handle(next, true, out);
                    at += 2;
                    continue;
                }
                self.handle(event, false, out);
                at += 1;
            }
        }
        self.escalate_unplaced(out);
        Ok(any)
    }

    fn everything(&self, out: &mut Vec<Change>) {
        for watch in self.roots.keys() {
            out.push(Change::Everything { watch: *watch });
        }
    }

    fn handle(&mut self, event: Event, exchanged: bool, out: &mut Vec<Change>) {
        let mask = event.mask;
        tracing::trace!("fanotify {mask:#x} {event:?}");
        if mask & libc::FAN_Q_OVERFLOW != 0 {
            self.overflows += 1;
            tracing::warn!("fanotify queue overflow: full sync of every fanotify-watched tree");
            self.everything(out);
            return;
        }
        let is_dir = mask & libc::FAN_ONDIR != 0;
        // The object left its place: whatever was unplaced inside it is covered
        // by the path this event names.
        if mask & (libc::FAN_DELETE | libc::FAN_RENAME) != 0
            && let Some(object) = &event.object
        {
            self.unplaced.remove(object);
            for (watch, root) in &self.roots {
                if root.fid == *object {
                    out.push(Change::RootGone { watch: *watch });
                }
            }
        }
        if mask & libc::FAN_RENAME != 0 {
            self.renamed(&event, is_dir, exchanged, out);
            return;
        }
        let Some(entry) = &event.entry else {
            return;
        };
        let entry_changed = mask & (libc::FAN_CREATE | libc::FAN_DELETE) != 0;
        let Some(place) = self.place_entry(entry, is_dir, entry_changed) else {
            return;
        };
        // A directory created is known from birth (its events never need a
        // lookup); one deleted is remembered where it was, for events about it
        // still queued (a file closed after its directory went).
        if is_dir
            && entry_changed
            && let Some(object) = event.object
        {
            self.remember(object, place.clone());
        }
        let Place::Inside { watch, rel } = place else {
            return;
        };
        if rel.is_empty() || !self.events.triggers(inotify_mask(mask)) {
            return;
        }
        // Written and not closed (events of one file merge: a close in the same
        // event makes it an ordinary change): it goes out once quiet.
        let settled =
            libc::FAN_CLOSE_WRITE | libc::FAN_ATTRIB | libc::FAN_CREATE | libc::FAN_DELETE;
        if !is_dir && mask & libc::FAN_MODIFY != 0 && mask & settled == 0 {
            out.push(Change::Written { watch, rel });
            return;
        }
        // A directory deleted: whatever holds its name by the time rsync runs
        // (`rm -rf d; mkdir d`) is made equal as a whole tree.
        if is_dir && mask & libc::FAN_DELETE != 0 {
            out.push(Change::Tree { watch, rel });
            return;
        }
        if !is_dir
            && mask & (libc::FAN_CLOSE_WRITE | libc::FAN_ATTRIB) != 0
            && self.has_other_links(watch, &rel)
        {
            // Its other names changed too, wherever they are.
            out.push(Change::Everything { watch });
        }
        out.push(Change::Path { watch, rel });
    }

    fn has_other_links(&self, watch: u32, rel: &[u8]) -> bool {
        self.roots
            .get(&watch)
            .is_some_and(|root| super::has_other_links(root.path(), rel))
    }

    /// A rename: a move the target can repeat, or (when that could go wrong) the
    /// old path deleted and the new one transferred with everything below it.
    ///
    /// Paths found by looking a directory up are where it is now, not where it
    /// was when its event happened; a directory rename read after such a lookup
    /// in the same drain may already be part of them, and replaying it as a move
    /// would move those paths a second time. So it is transferred: what it holds
    /// now is listed, and nothing pending is re-rooted. (After the drain every
    /// rename that happened before the lookups has been read.)
    fn renamed(&mut self, event: &Event, is_dir: bool, exchanged: bool, out: &mut Vec<Change>) {
        let (Some(old), Some(new)) = (&event.old, &event.new) else {
            return;
        };
        let transfer = exchanged || (is_dir && self.looked_up);
        let from = self.place_entry(old, is_dir, true);
        let to = self.place_entry(new, is_dir, true);
        if is_dir {
            // Every remembered path below it changed.
            self.generation += 1;
            if let (Some(object), Some(to)) = (&event.object, &to) {
                self.remember(object.clone(), to.clone());
            }
        }
        match (from, to) {
            (
                Some(Place::Inside { watch, rel: from }),
                Some(Place::Inside {
                    watch: into,
                    rel: to,
                }),
            ) if watch == into && !from.is_empty() && !to.is_empty() && !transfer => {
                let implied = if is_dir {
                    self.list_tree(watch, &to)
                } else {
                    Vec::new()
                };
                out.push(Change::Move {
                    watch,
                    from,
                    to,
                    implied,
                });
            }
            (from, to) => {
                // A directory that left, or arrived from elsewhere, or was
                // swapped: whatever holds each name when rsync runs is made
                // equal as a whole tree.
                let change = |watch, rel| {
                    if is_dir {
                        Change::Tree { watch, rel }
                    } else {
                        Change::Path { watch, rel }
                    }
                };
                if let Some(Place::Inside { watch, rel }) = from
                    && !rel.is_empty()
                    && self.events.triggers(EventMask::MOVED_FROM)
                {
                    out.push(change(watch, rel));
                }
                if let Some(Place::Inside { watch, rel }) = to
                    && !rel.is_empty()
                    && self.events.triggers(EventMask::MOVED_TO)
                {
                    out.push(change(watch, rel));
                }
            }
        }
    }

    /// Handles still unplaced when the queue is drained: a full sync of every
    /// tree on their filesystem.
    fn escalate_unplaced(&mut self, out: &mut Vec<Change>) {
        if self.unplaced.is_empty() {
            return;
        }
        let filesystems: HashSet<u64> = self.unplaced.drain().map(|f| f.fsid()).collect();
        let mut watches: Vec<u32> = self
            .roots
            .iter()
            .filter(|(_, root)| filesystems.contains(&root.fsid))
            .map(|(watch, _)| *watch)
            .collect();
        watches.sort_unstable();
        if watches.is_empty() {
            return;
        }
        let now = Instant::now();
        if self
            .escalation_logged
            .is_none_or(|at| now.duration_since(at) > Duration::from_secs(60))
        {
            self.escalation_logged = Some(now);
            tracing::warn!(
                "events in a directory that no longer exists and was never seen could not \
                 be placed: full sync of watch(es) {watches:?} (logged once a minute)"
            );
        }
        for watch in watches {
            out.push(Change::Everything { watch });
        }
    }

    /// Every entry below `rel` (not following symlinks, excluded ones left out),
    /// for a directory that arrived whole.
    fn list_tree(&self, watch: u32, rel: &[u8]) -> Vec<Vec<u8>> {
        let Some(root) = self.roots.get(&watch) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let mut stack = vec![rel.to_vec()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(super::absolute(root.path(), &dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let child = join(&dir, entry.file_name().as_bytes());
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if root.excludes.matches(&child, is_dir) {
                    continue;
                }
                if is_dir {
                    stack.push(child.clone());
                }
                found.push(child);
            }
        }
        found
    }
}

/// Whether `second` is the other half of an exchange of `first`'s two entries.
fn is_exchange(first: &Event, second: &Event) -> bool {
    first.mask & libc::FAN_RENAME != 0
        && second.mask & libc::FAN_RENAME != 0
        && first.old.is_some()
        && first.old == second.new
        && first.new == second.old
}

/// fanotify's content and entry bits are inotify's, so the configured inotify
/// event names decide which fanotify events count.
fn inotify_mask(mask: u64) -> EventMask {
    let mut bits = (mask & 0xfff) as u32;
    if mask & libc::FAN_ONDIR != 0 {
        bits |= libc::IN_ISDIR;
    }
    EventMask::from_bits_retain(bits)
}
