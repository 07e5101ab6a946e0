//! Is the watch root still the tree we mirror? A root that is deleted, renamed
//! away, unmounted or covered by another filesystem must never be synced from:
//! rsync `--delete` would make every mirror equal to whatever is (or is not) at
//! the path now. Such a watch is `source missing`: nothing is synced, nothing is
//! deleted, and the root is looked at again every second; when it is back (the
//! same filesystem, or a new directory put in its place on it) the watch
//! re-attaches with a full sync. `inosyncctl sync PATH --force` accepts a root as
//! it is.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::Engine;
use crate::watcher::mounts::{self, Mount, MountTable};

/// How often every watch root is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies a watch root: the directory (device and inode) and the
/// filesystem it is on (`statfs` f_fsid, which for disk filesystems comes from
/// their UUID and so stays the same across remounts and reboots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootId {
    dev: u64,
    ino: u64,
    /// The filesystem's id.
    pub fsid: u64,
    /// Whether a mount sits on the path (the root of a mount: a bind mount
    /// from the same filesystem has the same id as the directory it covers).
    pub mount_point: bool,
}

impl RootId {
    /// The directory's inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The device number of its filesystem (`st_dev`): a block device's
    /// tells a disk from a copy of it within one boot (see [`device`]).
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// Whether `other` is the same directory on the same filesystem, mounted
    /// there or not (a service's sandbox may bind-mount a root over itself).
    fn same_dir(&self, other: &RootId) -> bool {
        (self.dev, self.ino, self.fsid) == (other.dev, other.ino, other.fsid)
    }
}

/// Why a watch root is not (or no longer) the tree to mirror. Its text is the
/// `source missing` reason `status` shows and the reply to `sync --force`.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Nothing at the path.
    #[error("{} is gone (deleted, renamed away or unmounted)", .0.display())]
    Gone(PathBuf),
    /// The path cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Unreadable {
        /// The watch root.
        path: PathBuf,
        /// What `lstat` returned.
        error: std::io::Error,
    },
    /// A symlink is where the directory was.
    #[error("{} is now a symlink", .0.display())]
    Symlink(PathBuf),
    /// Something else than a directory is there.
    #[error("{} is no longer a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A directory above the root became a symlink: the path leads elsewhere.
    #[error(
        "{} is now reached through a symlink, at {} (a directory above it replaced?); \
         `inosyncctl reload` takes the new place if it is meant",
        path.display(),
        real.display()
    )]
    ThroughSymlink {
        /// The watch root, as configured (resolved when it was read).
        path: PathBuf,
        /// Where it leads now.
        real: PathBuf,
    },
    /// Its filesystem cannot be asked for its id.
    #[error("cannot statfs {}: {error}", path.display())]
    Statfs {
        /// The watch root.
        path: PathBuf,
        /// What `statfs` returned.
        error: std::io::Error,
    },
    /// Accepted by `sync --force`, yet it cannot be watched.
    #[error("{} cannot be watched", .0.display())]
    NotWatchable(PathBuf),
}

/// The identity of the directory at `path` now; a symlink, a file or nothing
/// there is the reason it is not.
pub fn identify(path: &Path) -> Result<RootId, SourceError> {
    let meta = std::fs::symlink_metadata(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            SourceError::Gone(path.to_path_buf())
        } else {
            SourceError::Unreadable {
                path: path.to_path_buf(),
                error,
            }
        }
    })?;
    if meta.file_type().is_symlink() {
        return Err(SourceError::Symlink(path.to_path_buf()));
    }
    if !meta.is_dir() {
        return Err(SourceError::NotADirectory(path.to_path_buf()));
    }
    // The root's path was resolved when it was configured: a symlink on it
    // now is a directory above replaced, and rsync would read where it leads.
    if let Ok(real) = std::fs::canonicalize(path)
        && real != path
    {
        return Err(SourceError::ThroughSymlink {
            path: path.to_path_buf(),
            real,
        });
    }
    Ok(RootId {
        dev: meta.dev(),
        ino: meta.ino(),
        fsid: fsid(path).map_err(|error| SourceError::Statfs {
            path: path.to_path_buf(),
            error,
        })?,
        mount_point: is_mount_point(path),
    })
}

/// Whether `path` is the root of a mount (`statx`'s `STATX_ATTR_MOUNT_ROOT`,
/// Linux 5.8+; without it, taken as not).
fn is_mount_point(path: &Path) -> bool {
    let flag = libc::STATX_ATTR_MOUNT_ROOT as u64;
    statx(path, 0)
        .is_some_and(|stx| stx.stx_attributes_mask & flag != 0 && stx.stx_attributes & flag != 0)
}

/// The id of the mount `path` is on (`statx`'s `STX_MNT_ID`, Linux 5.8), as
/// `/proc/self/mountinfo` numbers mounts; `None` when the kernel does not say.
fn mount_id(path: &Path) -> Option<u64> {
    statx(path, libc::STATX_MNT_ID)
        .filter(|stx| stx.stx_mask & libc::STATX_MNT_ID != 0)
        .map(|stx| stx.stx_mnt_id)
}

/// `statx` of `path` itself (a symlink not followed), asking for `mask`.
fn statx(path: &Path, mask: u32) -> Option<libc::statx> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statx fills the zeroed struct we own from a NUL-terminated path.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let done = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            mask,
            &mut stx,
        )
    };
    (done == 0).then_some(stx)
}

fn fsid(path: &Path) -> std::io::Result<u64> {
    crate::fsid::Fsid::of(path).map(crate::fsid::Fsid::as_recorded)
}

/// Where the directory at `path` lies on its filesystem, by the mount
/// table `table`: the directory of the filesystem mounted where `path` is
/// (its `root` field in `/proc/self/mountinfo`: `/` for a whole filesystem, the bound directory
/// for a bind mount) joined with the rest of the path, escaped as `ls -b`.
/// Two paths to one filesystem id are two directories when their places
/// differ: a bind mount above the root unmounted leads the path to the old
/// directory under the mount point, whose `statfs` and mount-point flag say
/// nothing changed.
///
/// `mount_id` is the mount the path is really on (`statx`'s `STX_MNT_ID`):
/// a mount hidden by another one over a directory above it stays in the
/// table with the longest matching point, and taking it read the old place
/// for a path that now leads elsewhere (found by a review). Without the id,
/// the visible mount with the longest point is taken.
fn place_in(table: &[Mount], path: &Path, mount_id: Option<u64>) -> Option<String> {
    let path = path.as_os_str().as_encoded_bytes();
    let on = match mount_id {
        Some(id) => table.iter().find(|m| m.id == id)?.clone(),
        None => mounts::reachable(table, path).into_iter().next()?,
    };
    if !mounts::is_within(path, &on.point) {
        return None;
    }
    let below = path.get(on.point.len()..).unwrap_or_default();
    let below = below.strip_prefix(b"/").unwrap_or(below);
    let mut place = on.root.clone();
    if !below.is_empty() {
        if !place.ends_with(b"/") {
            place.push(b'/');
        }
        place.extend_from_slice(below);
    }
    Some(crate::escaped::ls_b(&place))
}

/// The mount table as the root checks read it (before every rsync and once
/// a second per watch): read again only when the kernel says a mount came or
/// went, so a host with thousands of mounts does not parse them all for each
/// rsync.
#[derive(Default)]
pub struct Places {
    table: Option<MountTable>,
}

impl Places {
    /// Where the directory at `path` lies on its filesystem now (see
    /// [`place_in`]); `None` when the mount table cannot be read.
    pub fn place(&mut self, path: &Path) -> Option<String> {
        let id = mount_id(path);
        let stale = |table: &MountTable| {
            table.changed() || id.is_some_and(|id| !table.mounts.iter().any(|m| m.id == id))
        };
        match &mut self.table {
            Some(table) if stale(table) => {
                if table.reread().is_err() {
                    // Read afresh next time: the kernel's notice is used up.
                    self.table = None;
                    return None;
                }
            }
            Some(_) => {}
            None => self.table = Some(MountTable::open().ok()?),
        }
        place_in(&self.table.as_ref()?.mounts, path, id)
    }
}

/// Why the root at `path` is not the recorded one by its place (see
/// [`Places::place`]), or `None` when it is, or either is unknown.
pub fn moved(path: &Path, recorded: Option<&str>, now: Option<&str>) -> Option<String> {
    let (was, now) = (recorded?, now?);
    (was != now).then(|| {
        format!(
            "{} now leads to another directory of its filesystem ({now}, not {was}): a \
             mount on it or above it is not there, or another one is",
            path.display()
        )
    })
}

/// `dev` when it is a block device's (a disk, a partition, a loop device):
/// its number holds while the system runs, and tells a disk from a copy of
/// it, which has its UUID and so its filesystem id. Filesystems without one
/// (NFS, overlay, tmpfs, btrfs subvolumes) get a number of the moment at each
/// mount, which says nothing.
pub fn device(dev: u64) -> Option<u64> {
    (libc::major(dev) != 0).then_some(dev)
}

/// Why a root on block device `now` is not the recorded one (on block device
/// `recorded`, with the same filesystem id), or `None`.
pub fn other_device(path: &Path, recorded: Option<u64>, now: u64) -> Option<String> {
    let (was, now) = (device(recorded?)?, device(now)?);
    (was != now).then(|| {
        format!(
            "{} is on a filesystem with the recorded id but on another device ({}:{}, not \
             {}:{}): a copy of its disk, or another one made with its UUID?",
            path.display(),
            libc::major(now),
            libc::minor(now),
            libc::major(was),
            libc::minor(was)
        )
    })
}

/// Device numbers hold only within one boot: those recorded in another are
/// forgotten (each root's is recorded again when it is attached).
pub fn forget_devices_of_another_boot(runtime: &mut crate::state_file::RuntimeState) {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string());
    if boot.is_none() || runtime.boot_id != boot {
        runtime.devices.clear();
    }
    runtime.boot_id = boot;
}

/// Whether a directory has no entries at all (an empty mount point).
pub fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

impl Engine {
    /// Looks at every watch root, once a second.
    pub(super) fn check_sources_when_due(&mut self) {
        let now = Instant::now();
        if now < self.next_source_check {
            return;
        }
        self.next_source_check = now + CHECK_EVERY;
        let ids: Vec<u32> = self.watches.keys().copied().collect();
        for id in ids {
            self.check_source(id);
        }
    }

    /// Whether the watch's root is the tree we mirror, acting on what changed:
    /// gone → `source missing`; back, or replaced by a new directory on the same
    /// filesystem → re-attached with a full sync.
    pub(super) fn check_source(&mut self, id: u32) -> bool {
        self.check_source_after(id, false)
    }

    /// [`Engine::check_source`] after inotify said the root itself went away
    /// (`gone`): a directory at the path now is a new one even when it has the
    /// old one's inode number (a filesystem may reuse it at once).
    pub(super) fn check_source_after(&mut self, id: u32, gone: bool) -> bool {
        let Some(watch) = self.watches.get(&id) else {
            return false;
        };
        if watch.removing.is_some() {
            return watch.missing.is_none();
        }
        let path = watch.spec.path.clone();
        let recorded = watch.place.clone();
        // The identity first, the place after: an unmount between the two
        // shows in the place, never pairs the old place with a new directory.
        let identity = identify(&path);
        let place_now = self.places.place(&path);
        let moved = moved(&path, recorded.as_deref(), place_now.as_deref());
        let Some(watch) = self.watches.get(&id) else {
            return false;
        };
        match identity {
            Err(why) => {
                self.mark_missing(id, why.to_string());
                false
            }
            Ok(now) if now.fsid != watch.fsid => {
                self.mark_missing(
                    id,
                    format!(
                        "{} is on another filesystem than the one recorded (not mounted?)",
                        path.display()
                    ),
                );
                false
            }
            // A bind mount from the same filesystem, unmounted (or one put
            // over the root): the directory there now has the recorded
            // filesystem id, yet it is not the tree that was mirrored.
            Ok(now)
                if now.mount_point != watch.mount_point.is_some()
                    && !watch.root.is_some_and(|was| was.same_dir(&now))
                    && watch.mount_point != Some(now.ino) =>
            {
                self.mark_missing(
                    id,
                    if watch.mount_point.is_some() {
                        format!(
                            "{} was a mount point and is not now (unmounted?)",
                            path.display()
                        )
                    } else {
                        format!(
                            "{} is now a mount point and was not (something mounted over it?)",
                            path.display()
                        )
                    },
                );
                false
            }
            // A bind mount from the same filesystem above the root (or on
            // it) unmounted or replaced: the directory the path leads to now
            // has the recorded filesystem id, and may be no mount point
            // either way (found by a black-box attack: the old copy under
            // the mount point was taken for a replaced root, and its full
            // sync wiped the mirrors).
            // A copy of the root's disk (its UUID, so its filesystem id,
            // directories and places) mounted in its place: its full sync
            // made the mirror equal to the copy (a black-box attack).
            Ok(now) if other_device(&path, watch.device, now.dev).is_some() => {
                let why = other_device(&path, watch.device, now.dev).unwrap_or_default();
                self.mark_missing(id, why);
                false
            }
            // Reached through another place, yet the same directory: while it
            // is watched, the same inode; while missing, the recorded mount
            // point's inode (the directory it is bind-mounted from renamed),
            // as at a start.
            Ok(now)
                if moved.is_some()
                    && !watch.root.is_some_and(|was| was.same_dir(&now))
                    && !(now.mount_point && watch.mount_point == Some(now.ino)) =>
            {
                self.mark_missing(id, moved.unwrap_or_default());
                false
            }
            Ok(now)
                if !gone
                    && watch.missing.is_none()
                    && watch.root.is_some_and(|was| was.same_dir(&now)) =>
            {
                // The same directory, now (or no longer) a mount over itself,
                // or reached through another place (the directory it is
                // bind-mounted from renamed).
                if let Some(place) = &place_now
                    && self
                        .runtime
                        .places
                        .insert(path.display().to_string(), place.clone())
                        .is_some_and(|was| was != *place)
                {
                    self.persist();
                }
                if let Some(watch) = self.watches.get_mut(&id) {
                    watch.mount_point = now.mount_point.then_some(now.ino);
                    watch.place = place_now.or(watch.place.take());
                    watch.root = Some(now);
                }
                true
            }
            Ok(now) => self.reattach(id, now),
        }
    }

    /// A watch root is gone: stop watching it, stop its running transfers (their
    /// batches are kept), and sync nothing from it until it is back.
    pub(super) fn mark_missing(&mut self, id: u32, why: String) {
        let Some(watch) = self.watches.get_mut(&id) else {
            return;
        };
        if watch.missing.as_deref() == Some(why.as_str()) {
            return;
        }
        tracing::error!(
            "{}: source missing: {why}; nothing is synced (and nothing deleted on the targets) \
             until it is back, or `inosyncctl sync {} --force`",
            watch.spec.path.display(),
            watch.spec.path.display()
        );
        watch.missing = Some(why);
        watch.root = None;
        for pair in &mut watch.pairs {
            pair.interrupt();
        }
        self.watcher.remove_root(id);
    }

    /// Watches the directory now at the watch's path and schedules a full sync;
    /// returns whether that worked.
    pub(super) fn reattach(&mut self, id: u32, now: RootId) -> bool {
        let Some(watch) = self.watches.get(&id) else {
            return false;
        };
        let path = watch.spec.path.clone();
        let excludes = watch.excludes.clone();
        let replaced = watch.missing.is_none() || watch.root.is_some();
        self.watcher.remove_root(id);
        if let Err(e) = self.watcher.add_root(id, &path, excludes) {
            self.mark_missing(id, format!("cannot watch {}: {e}", path.display()));
            return false;
        }
        self.watcher.scan_root(id, None);
        let Some(watch) = self.watches.get_mut(&id) else {
            return false;
        };
        watch.root = Some(now);
        watch.missing = None;
        // A root that was on no block device (a disk not there at the start)
        // is known by the one it is on from now on.
        if watch.device.is_none()
            && let Some(device) = device(now.dev)
        {
            watch.device = Some(device);
            self.runtime
                .devices
                .insert(path.display().to_string(), device);
        }
        let Some(watch) = self.watches.get_mut(&id) else {
            return false;
        };
        let instant = Instant::now();
        for pair in &mut watch.pairs {
            pair.source_replaced(instant);
        }
        tracing::info!(
            "{}: source {}; watching it again ({} directories), full sync follows",
            path.display(),
            if replaced {
                "replaced by a new directory"
            } else {
                "is back"
            },
            self.watcher.watched_dirs(id)
        );
        true
    }

    /// `sync PATH --force`: the root as it is now is the source, on whatever
    /// filesystem, however empty; the next full sync of each target deletes what
    /// the source no longer has.
    pub(super) fn force_sync(&mut self, id: u32) -> Result<(), SourceError> {
        let path = self.watches[&id].spec.path.clone();
        let now = identify(&path)?;
        let key = path.display().to_string();
        let place = self.places.place(&path);
        match &place {
            Some(place) => self.runtime.places.insert(key.clone(), place.clone()),
            None => self.runtime.places.remove(&key),
        };
        let device = device(now.dev);
        match device {
            Some(device) => self.runtime.devices.insert(key.clone(), device),
            None => self.runtime.devices.remove(&key),
        };
        if let Some(watch) = self.watches.get_mut(&id) {
            watch.fsid = now.fsid;
            watch.place = place;
            watch.device = device;
            watch.mount_point = now.mount_point.then_some(now.ino);
            for pair in &mut watch.pairs {
                pair.allow_empty_source();
            }
        }
        if now.mount_point {
            self.runtime.mount_points.insert(key.clone(), now.ino);
        } else {
            self.runtime.mount_points.remove(&key);
        }
        self.runtime.sources.insert(key, now.fsid);
        self.persist();
        if !self.check_source(id) {
            return Err(SourceError::NotWatchable(path));
        }
        tracing::warn!(
            "{}: forced full sync: the targets are made equal to the source as it is now",
            path.display()
        );
        Ok(())
    }
}

/// Whether `destination` is a local directory with nothing in it, or none yet
/// (a remote one is never known to be empty).
pub(super) fn local_target_is_empty(destination: &str) -> bool {
    if !crate::config::checks::is_local_target(destination) {
        return false;
    }
    match std::fs::read_dir(destination) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bind mount from the same filesystem above the root gives the root
    /// another place than the directory under the mount point has: the two
    /// are told apart though their filesystem id and mount-point flag agree.
    #[test]
    fn a_bind_mount_above_the_root_gives_it_another_place() {
        let mounted = mounts::parse(
            b"27 1 254:0 / / rw - ext4 /dev/vda rw\n\
              60 27 254:0 /data/pb /srv/pb rw - ext4 /dev/vda rw\n\
              61 27 0:50 / /srv/tmp rw - tmpfs tmpfs rw\n",
        );
        let root = Path::new("/srv/pb/site");
        assert_eq!(
            place_in(&mounted, root, None).as_deref(),
            Some("/data/pb/site")
        );
        assert_eq!(
            place_in(&mounted, Path::new("/srv/pb"), None).as_deref(),
            Some("/data/pb")
        );
        assert_eq!(
            place_in(&mounted, Path::new("/srv/tmp/a b"), None).as_deref(),
            Some("/a\\ b")
        );
        let unmounted: Vec<Mount> = mounted.into_iter().filter(|m| m.id != 60).collect();
        assert_eq!(
            place_in(&unmounted, root, None).as_deref(),
            Some("/srv/pb/site")
        );
        // Hidden by a mount over a directory above it (`mount --bind
        // /data/other /srv`), the old mount keeps the longest point: the
        // mount the path is really on says where it leads.
        let shadowed = mounts::parse(
            b"27 1 254:0 / / rw - ext4 /dev/vda rw\n\
              60 27 254:0 /data/pb /srv/pb rw - ext4 /dev/vda rw\n\
              62 27 254:0 /data/other /srv rw - ext4 /dev/vda rw\n",
        );
        assert_eq!(
            place_in(&shadowed, root, Some(62)).as_deref(),
            Some("/data/other/pb/site")
        );
        let why = moved(root, Some("/data/pb/site"), Some("/srv/pb/site")).unwrap();
        assert!(why.contains("another directory"), "{why}");
        assert_eq!(
            moved(root, Some("/data/pb/site"), Some("/data/pb/site")),
            None
        );
        assert_eq!(moved(root, None, Some("/srv/pb/site")), None);
    }
}
