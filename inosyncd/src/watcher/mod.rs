//! Turns what the kernel reports into changed paths per watch, through one of two
//! backends chosen per watch (`backend`, README "Backends: fanotify and inotify"): fanotify filesystem marks (no
//! per-directory set-up, no watch limit; root only, and only on filesystems that
//! report file handles) or inotify watches on every directory.
//!
//! Every backend descriptor sits in one epoll set, so the engine waits on one
//! descriptor whichever backends are in use. The mount table is waited on apart
//! (it says "changed" once, to whichever poll sees it first, so it cannot sit in
//! a nested epoll set): a filesystem mounted inside a tree, or unmounted from
//! it, is watched (or let go) at once, and the mount point is compared whole.

mod fanotify;
mod inotify;
mod link_walker;
#[cfg(test)]
mod model_test;
pub mod mounts;
mod name_search;
#[cfg(test)]
mod no_inotify_tests;
mod remount;

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{Backend, EventSet};
use crate::exclude::ExcludeSet;
use fanotify::{FanWatcher, FanotifyError};
use inotify::InotifyWatcher;

/// How often a search for the other names of a file (`name_search.rs`) is
/// looked at while it runs: a walk ends without an event.
const NAME_SEARCH_POLL: std::time::Duration = std::time::Duration::from_millis(10);

mod change;
pub use change::Change;

/// Joins a directory's relative path and an entry name: both backends build
/// the relative paths of what they report this way (`""` is the root).
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    path.extend_from_slice(dir);
    if !dir.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// A path in a tree: its root joined with a relative path (`""` is the root).
pub fn absolute(root: &Path, rel: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(std::ffi::OsStr::from_bytes(rel))
    }
}

/// Whether `rel` in the tree at `root` names an `O_TMPFILE` file: the kernel
/// calls one `#<inode>` until `linkat` gives it a name (and its descriptor
/// keeps that name after), and reports its writes under it, though no
/// directory holds it. Listed, it was found missing and deleted on the
/// target under `delete = "running"`: a file of that name only the target
/// had went (a black-box attack). A file that has such a name for real is
/// there (an `lstat` finds it); its creation and removal are events of
/// their own.
pub fn is_tmpfile_name(root: &Path, rel: &[u8]) -> bool {
    named_like_a_tmpfile(rel)
        && absolute(root, rel)
            .symlink_metadata()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// Whether the last component of `rel` is `#` and digits, as the kernel
/// names an `O_TMPFILE`. A real file so named that is renamed is listed at
/// its old name by the rename (the backends), so that a write to it dropped
/// for that name goes with the move to the new one (a review).
pub fn named_like_a_tmpfile(rel: &[u8]) -> bool {
    let name = rel.rsplit(|b| *b == b'/').next().unwrap_or(rel);
    name.len() > 1 && name[0] == b'#' && name[1..].iter().all(u8::is_ascii_digit)
}

/// Leaves out of `changes[from..]`, the changes of one event that neither
/// made nor removed a name, the paths it listed under an `O_TMPFILE`'s name
/// (see [`is_tmpfile_name`]; `root_of` gives a watch's root). The file's
/// real names, once it has one, are found as for any write through a name
/// gone: by its handle under fanotify, by its change time under inotify.
pub fn drop_tmpfile_paths<'a>(
    changes: &mut Vec<Change>,
    from: usize,
    root_of: impl Fn(u32) -> Option<&'a Path>,
) {
    // Every event of a burst comes here: nothing is moved unless a name is
    // like an `O_TMPFILE`'s.
    let named_so = |change: &Change| {
        matches!(change, Change::Path { rel, .. } | Change::Written { rel, .. }
            if named_like_a_tmpfile(rel))
    };
    if !changes
        .get(from..)
        .is_some_and(|tail| tail.iter().any(named_so))
    {
        return;
    }
    let tail = changes.split_off(from);
    changes.extend(tail.into_iter().filter(|change| {
        let (Change::Path { watch, rel } | Change::Written { watch, rel, .. }) = change else {
            return true;
        };
        let dropped = root_of(*watch).is_some_and(|root| is_tmpfile_name(root, rel));
        if dropped {
            tracing::debug!(
                "{}: an O_TMPFILE's name (written before or without a name of its own); not listed",
                String::from_utf8_lossy(rel)
            );
        }
        !dropped
    }));
}

/// Whether a rename left something that is not a directory at its old name
/// `rel`: `renameat2(RENAME_WHITEOUT)` (overlayfs on its upper layer) leaves
/// a whiteout there, made by the filesystem with no event of its own (a
/// black-box attack: it never reached the mirror). A directory there was
/// made again, and has its own event.
pub fn left_at_old_name(root: &Path, rel: &[u8]) -> bool {
    absolute(root, rel)
        .symlink_metadata()
        .is_ok_and(|meta| !meta.is_dir())
}

/// Whether the file at `rel` in the tree at `root` has other names (hard links):
/// a change through one name changes them all, wherever they are, and the
/// kernel reports only the name written through.
pub fn has_other_links(root: &Path, rel: &[u8]) -> bool {
    absolute(root, rel)
        .symlink_metadata()
        .is_ok_and(|m| is_linked(&m))
}

/// Whether the entry just created at `rel` is a new regular file with one
/// name, not a link to an existing one: its creator is most likely still
/// writing it, and its close (or a quiet second) says when it is whole. Sent
/// at its creation, a file copied in over longer than the delay would reach
/// the mirror cut short, and go again at its close.
pub fn is_new_file(root: &Path, rel: &[u8]) -> bool {
    absolute(root, rel)
        .symlink_metadata()
        .is_ok_and(|m| m.is_file() && std::os::unix::fs::MetadataExt::nlink(&m) == 1)
}

/// Whether an entry has other names. Anything but a directory can: a symlink,
/// a fifo or a device node linked with `ln` shares its mtime, mode and owner
/// between its names as a regular file shares its content.
pub fn is_linked(meta: &std::fs::Metadata) -> bool {
    !meta.is_dir() && std::os::unix::fs::MetadataExt::nlink(meta) > 1
}

/// Which backend a watch ended up with, and why (for the log and `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInUse {
    /// "fanotify" or "inotify".
    pub name: &'static str,
    /// Why inotify was used under `auto`, if it was.
    pub reason: Option<String>,
}

/// Owns both backends and knows which one watches each tree.
pub struct Watcher {
    choice: Backend,
    events: EventSet,
    inotify: InotifyWatcher,
    /// Created the first time a watch may use it; `Err` says why it cannot be.
    fanotify: Option<Result<FanWatcher, Arc<FanotifyError>>>,
    in_use: HashMap<u32, BackendInUse>,
    epoll: OwnedFd,
    /// The fanotify group descriptors in the epoll set now.
    polled: HashSet<RawFd>,
    /// Whether fanotify events wake the loop (see `listen_to_fanotify`).
    listening: bool,
    foreign_only: bool,
    /// The mount table, when it can be read.
    mounts: Option<mounts::MountTable>,
    /// Other names of files written through one, looked for where no index
    /// knows them (inotify trees; settled writes and journal records on
    /// either backend).
    names: name_search::NameSearch,
}

impl Watcher {
    /// Creates the inotify instance and the epoll set; fanotify waits for its
    /// first watch.
    pub fn new(events: EventSet, choice: Backend) -> io::Result<Watcher> {
        Self::with_inotify(events, choice, InotifyWatcher::new(events))
    }

    /// [`Watcher::new`] with the inotify side given (tests: one without an
    /// instance, as when the user's instances are used up).
    fn with_inotify(
        events: EventSet,
        choice: Backend,
        inotify: InotifyWatcher,
    ) -> io::Result<Watcher> {
        // SAFETY: plain syscall; the descriptor is owned below.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        let mounts = mounts::MountTable::open()
            .inspect_err(|e| {
                tracing::warn!(
                    "cannot read /proc/self/mountinfo ({e}): filesystems mounted inside a tree \
                     while running are not noticed"
                );
            })
            .ok();
        if let Some(why) = inotify.unavailable() {
            // Every tree needs it under `backend = "inotify"`; under the other
            // backends a tree fanotify watches does not.
            if choice == Backend::Inotify {
                return Err(io::Error::other(why.to_string()));
            }
            tracing::warn!("{why}; only trees fanotify can watch are watched");
        }
        let watcher = Watcher {
            choice,
            events,
            inotify,
            fanotify: None,
            in_use: HashMap::new(),
            // SAFETY: a fresh descriptor nobody else owns.
            epoll: unsafe { OwnedFd::from_raw_fd(epoll) },
            polled: HashSet::new(),
            listening: true,
            foreign_only: false,
            mounts,
            names: Default::default(),
        };
        if let Some(fd) = watcher.inotify.raw_fd() {
            watcher.poll_also(fd)?;
        }
        Ok(watcher)
    }

    /// The mounts as last read (none when the table cannot be read).
    fn mount_table(&self) -> &[mounts::Mount] {
        self.mounts.as_ref().map_or(&[], |t| t.mounts.as_slice())
    }

    /// Puts every fanotify group in the epoll set (a new one comes with a
    /// filesystem whose fsid another one has).
    fn poll_fanotify_groups(&mut self) {
        let Some(Ok(fan)) = &self.fanotify else {
            return;
        };
        for fd in fan.raw_fds() {
            if self.polled.contains(&fd) {
                continue;
            }
            if self.listening
                && let Err(e) = self.poll_also(fd)
            {
                tracing::error!("cannot poll a fanotify group: {e}");
                continue;
            }
            self.polled.insert(fd);
        }
    }

    /// Stops (`false`) or restarts (`true`) waking on fanotify events: while a
    /// busy filesystem's foreign events gather, each new one would otherwise wake
    /// the event loop by itself. Restarting reports at once what is queued.
    pub fn listen_to_fanotify(&mut self, listen: bool) {
        self.listening = listen;
        for fd in self.polled.iter().copied() {
            if listen {
                if let Err(e) = self.poll_also(fd) {
                    tracing::error!("cannot poll the fanotify group again: {e}");
                }
            } else {
                // SAFETY: our epoll set and a descriptor in it.
                unsafe {
                    libc::epoll_ctl(
                        self.epoll.as_raw_fd(),
                        libc::EPOLL_CTL_DEL,
                        fd,
                        std::ptr::null_mut(),
                    )
                };
            }
        }
    }

    fn poll_also(&self, fd: RawFd) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: our epoll set, a valid descriptor, an event we own.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) }
            != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The descriptor for the event loop to wait on (readable when either backend
    /// has events).
    pub fn raw_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    fn fanotify(&mut self) -> Result<&mut FanWatcher, FanotifyError> {
        if self.fanotify.is_none() {
            let created = FanWatcher::new(self.events).map_err(|e| {
                Arc::new(match e.raw_os_error() {
                    Some(libc::EPERM) => FanotifyError::NeedsRoot(e),
                    Some(libc::EINVAL) => FanotifyError::OldKernel(e),
                    _ => FanotifyError::NoGroup(e),
                })
            });
            self.fanotify = Some(created);
            self.poll_fanotify_groups();
        }
        match self.fanotify.as_mut() {
            Some(Ok(fan)) => Ok(fan),
            Some(Err(e)) => Err(FanotifyError::Unavailable(e.clone())),
            None => Err(FanotifyError::Missing),
        }
    }

    /// Starts watching a tree with the configured backend: its root now, the rest
    /// (inotify) with [`Watcher::scan_root`]. Under `fanotify` a tree whose
    /// filesystem cannot be marked is an error naming why; under `auto` it falls
    /// back to inotify, logged with the reason.
    pub fn add_root(&mut self, watch: u32, path: &Path, excludes: ExcludeSet) -> io::Result<()> {
        self.names.remove_root(watch);
        self.add_to_backend(watch, path, excludes.clone())?;
        self.names.set_root(watch, path, excludes);
        Ok(())
    }

    /// [`Watcher::add_root`] for the backend alone.
    fn add_to_backend(&mut self, watch: u32, path: &Path, excludes: ExcludeSet) -> io::Result<()> {
        self.in_use.remove(&watch);
        if self.choice != Backend::Inotify {
            let table = self.mount_table().to_vec();
            let tried = self
                .fanotify()
                .and_then(|fan| fan.add_root(watch, path, excludes.clone(), &table));
            self.poll_fanotify_groups();
            match tried {
                Ok(()) => {
                    tracing::info!(
                        "{}: watched by fanotify (one filesystem mark)",
                        path.display()
                    );
                    self.in_use.insert(
                        watch,
                        BackendInUse {
                            name: "fanotify",
                            reason: None,
                        },
                    );
                    return Ok(());
                }
                Err(e) if self.choice == Backend::Fanotify => {
                    return Err(io::Error::other(format!("backend = \"fanotify\": {e}")));
                }
                Err(e) => {
                    tracing::info!("{}: watched by inotify ({e})", path.display());
                    self.in_use.insert(
                        watch,
                        BackendInUse {
                            name: "inotify",
                            reason: Some(e.to_string()),
                        },
                    );
                }
            }
        } else {
            self.in_use.insert(
                watch,
                BackendInUse {
                    name: "inotify",
                    reason: None,
                },
            );
        }
        self.inotify.add_root(watch, path, excludes)?;
        self.note_kernel_points(watch, path);
        Ok(())
    }

    /// Tells an inotify tree where the kernel's filesystems are mounted in it
    /// now (a chroot's `proc`), so that its scans leave them alone.
    fn note_kernel_points(&mut self, watch: u32, path: &Path) {
        let kernel = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let points =
            mounts::kernel_points_below(self.mount_table(), kernel.as_os_str().as_encoded_bytes());
        self.inotify.set_kernel_points(watch, points);
    }

    fn on_fanotify(&self, watch: u32) -> bool {
        matches!(&self.fanotify, Some(Ok(fan)) if fan.has_root(watch))
    }

    /// Watches every directory of an inotify tree (see the inotify backend); a
    /// fanotify tree needs nothing, and nothing can change unseen after its mark.
    pub fn scan_root(&mut self, watch: u32, changed_since: Option<SystemTime>) -> bool {
        if self.on_fanotify(watch) {
            return false;
        }
        self.inotify.scan_root(watch, changed_since)
    }

    /// Stops watching a tree.
    pub fn remove_root(&mut self, watch: u32) {
        self.names.remove_root(watch);
        if let Some(Ok(fan)) = &mut self.fanotify {
            fan.remove_root(watch);
        }
        self.inotify.remove_root(watch);
    }

    /// New exclude patterns for a tree.
    pub fn set_excludes(&mut self, watch: u32, excludes: ExcludeSet) {
        self.names.set_excludes(watch, excludes.clone());
        if let Some(Ok(fan)) = &mut self.fanotify
            && fan.has_root(watch)
        {
            fan.set_excludes(watch, excludes);
            return;
        }
        self.inotify.set_excludes(watch, excludes);
    }

    /// Why a tree is not fully watched, if it is not (the inotify watch limit).
    pub fn degraded(&self, watch: u32) -> Option<&str> {
        self.inotify.degraded(watch)
    }

    /// Tries again to watch the directories of an inotify tree its user
    /// could not read (before `wait`'s full sync; see the inotify backend).
    pub fn retry_unreadable(&mut self, watch: u32) {
        self.inotify.retry_unreadable(watch);
    }

    /// Tries again to watch every directory of a degraded tree; returns
    /// whether it is still degraded.
    pub fn retry_degraded(&mut self, watch: u32) -> bool {
        self.inotify.retry_degraded(watch)
    }

    /// Directories with an inotify watch in one tree (0 under fanotify: it needs
    /// none).
    pub fn watched_dirs(&self, watch: u32) -> u64 {
        self.inotify.watched_dirs(watch)
    }

    /// Kernel event queue overflows so far, in both backends.
    pub fn overflows(&self) -> u64 {
        let fan = match &self.fanotify {
            Some(Ok(fan)) => fan.overflows,
            _ => 0,
        };
        self.inotify.overflows + fan
    }

    /// Which backend watches a tree.
    pub fn backend(&self, watch: u32) -> Option<&BackendInUse> {
        self.in_use.get(&watch)
    }

    /// Reads and handles every event queued now in both backends, without
    /// waiting. Returns `Ok(false)` when there was nothing to read.
    pub fn read_queued(&mut self, out: &mut Vec<Change>) -> io::Result<bool> {
        // Empty the epoll set's ready list (level-triggered: what is still
        // unread is reported again), so its own readiness follows the backends'.
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 8];
        // SAFETY: our epoll set and a buffer of the given length; no wait.
        unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), ready.as_mut_ptr(), 8, 0) };
        let before = out.len();
        let mut any = self.inotify.read_queued(out)?;
        let mut fan_any = false;
        if let Some(Ok(fan)) = &mut self.fanotify {
            fan_any = fan.read_queued(out)?;
            any |= fan_any;
        }
        self.foreign_only = fan_any && out.len() == before;
        if out[before..].iter().any(|change| {
            matches!(
                change,
                Change::Move { .. } | Change::Renamed { .. } | Change::Tree { .. }
            )
        }) {
            self.names.renamed();
        }
        if self.moved_a_mount_point(&out[before..]) {
            // The kernel says nothing of a mount carried along by a rename of
            // a directory above it; its recorded place must follow, or its
            // later unmount is compared at the old place (found by a
            // black-box attack: the unmounted files stayed on the mirror).
            self.mounts_changed(out);
        }
        Ok(any)
    }

    /// Whether a directory move among `changes` may have carried a mount
    /// point below it (a mount point's path holds the moved name as a
    /// component run; a false alarm costs one read of the mount table).
    fn moved_a_mount_point(&self, changes: &[Change]) -> bool {
        let Some(table) = &self.mounts else {
            return false;
        };
        changes.iter().any(|change| {
            // A tree is how a move that could not be paired is reported.
            let (Change::Move { from, .. }
            | Change::Renamed { from, .. }
            | Change::Tree { rel: from, .. }) = change
            else {
                return false;
            };
            let inside = [b"/".as_slice(), from, b"/"].concat();
            let at = &inside[..inside.len() - 1];
            table.mounts.iter().any(|m| {
                m.point.ends_with(at)
                    || m.point
                        .windows(inside.len())
                        .any(|w| w == inside.as_slice())
            })
        })
    }

    /// Whether changes seen are still being placed (writes through hard links
    /// outside the trees, waiting for a walk of them; searches for other
    /// names; writes read while their names were gone): `wait` is not idle
    /// yet.
    pub fn placing(&self) -> bool {
        matches!(&self.fanotify, Some(Ok(fan)) if fan.has_deferred())
            || self.names.busy()
            || self.inotify.holds_gone_writes()
    }

    /// `rel` of `watch`, a file that may have other names, was written: they
    /// are looked for in the background and reported as changed paths (see
    /// `name_search.rs`). Returns the file looked for (filesystem, inode),
    /// if any, for the journal.
    pub fn look_for_other_names(&mut self, watch: u32, rel: &[u8]) -> Option<(u64, u64)> {
        self.names
            .look_for_other_names(watch, rel, name_search::Seek::Again)
    }

    /// [`Watcher::look_for_other_names`] for a change taken up from the
    /// journal at a start: not again while a search for it runs.
    pub fn take_up_other_names(&mut self, watch: u32, rel: &[u8]) -> Option<(u64, u64)> {
        self.names
            .look_for_other_names(watch, rel, name_search::Seek::Once)
    }

    /// Looks for the names of file `inode` (filesystem, inode) in the trees:
    /// a search left unfinished by a killed daemon (see `name_search.rs`),
    /// not again while one for it runs.
    pub fn look_for_names_of(&mut self, watch: u32, inode: (u64, u64)) {
        self.names.look_for(watch, inode, name_search::Seek::Once);
    }

    /// Looks for the names of file `inode` (filesystem, inode), written
    /// through a name gone since (see [`Change::LinkedInode`]): again, even
    /// while a search for it runs (a name made since may lie where that one
    /// has walked already).
    pub fn look_for_names_again(&mut self, watch: u32, inode: (u64, u64)) {
        self.names.look_for(watch, inode, name_search::Seek::Again);
    }

    /// Looks for every regular file changed at or after `since` in the trees
    /// on the filesystem of `watch`'s root (see [`Change::ChangedSince`]).
    pub fn look_for_changed_since(&mut self, watch: u32, since: i128, dev: Option<u64>) {
        self.names.look_for_changed_since(watch, since, dev);
    }

    /// Whether fanotify's index of files with several names is being built
    /// (see `FanWatcher::indexing`): `wait` is not idle yet.
    pub fn indexing(&self) -> bool {
        matches!(&self.fanotify, Some(Ok(fan)) if fan.indexing())
    }

    /// Background work of the backends that ended since (fanotify's index of
    /// files with several names), with the changes it places, and the writes
    /// by names gone when read whose time has come (`reading`: false once the
    /// daemon stops reading events). The event loop calls it on every turn and
    /// at least once a second: a walk ends without an event.
    pub fn poll_background(&mut self, reading: bool, out: &mut Vec<Change>) {
        if let Some(Ok(fan)) = &mut self.fanotify {
            fan.poll_links(out);
            fan.place_gone_names(reading, out);
        }
        // A search whose walks are done is concluded only after the queue
        // is read: a rename made meanwhile has it done again. Writes read
        // while their names were gone are placed by the reads after them,
        // whether events come or not.
        if reading
            && (self.names.ending() || self.inotify.holds_gone_writes())
            && let Err(e) = self.read_queued(out)
        {
            tracing::warn!("cannot read the event queue: {e}");
        }
        // Stopping: no read will place them, so they are placed as lost now
        // (their search runs before the last runs, not after the grace).
        if !reading && self.inotify.holds_gone_writes() {
            self.inotify.flush_gone_writes(out);
        }
        self.names.poll(out);
        // What the searches saw of files with several names spares inotify's
        // trees without any the next searches (see `inotify/lost_writes.rs`).
        for walked in self.names.take_walked() {
            self.inotify
                .walked(walked.watch, walked.saw_linked, walked.started);
        }
    }

    /// When background work must be looked at next (writes by gone names to
    /// place), if sooner than the event loop's once a second.
    pub fn next_background(&self) -> Option<std::time::Instant> {
        let searching = (self.names.busy() || self.inotify.holds_gone_writes())
            .then(|| std::time::Instant::now() + NAME_SEARCH_POLL);
        let placing = match &self.fanotify {
            Some(Ok(fan)) => fan.next_placing(),
            _ => None,
        };
        match (searching, placing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the last read found only events of other files on a marked
    /// filesystem (nothing in any tree): the caller may let the next ones gather
    /// for a moment instead of waking for each.
    pub fn read_only_foreign_events(&self) -> bool {
        self.foreign_only
    }
}

#[cfg(test)]
/// `RENAME_EXCHANGE` of `a` and `b`.
pub(crate) fn exchange(a: &std::path::Path, b: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let (a, b) = (c_path(a), c_path(b));
    // SAFETY: two NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}
