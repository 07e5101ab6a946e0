//! fanotify groups and their filesystem marks. Events name a filesystem by its
//! `f_fsid` only, and two filesystems may report the same one (an ext4 disk and
//! its clone share a UUID, so an fsid): in one group their events could not be
//! told apart, and a handle of one would be looked up on the other. So each
//! group holds filesystems with distinct fsids, and a filesystem whose fsid is
//! taken in every group gets a group of its own. Events are re-keyed on
//! reading with the filesystem's device number, which is unique.
//!
//! Marks are set and removed by path: no descriptor on a watched filesystem is
//! kept open, so it can be unmounted as if the daemon did not run (a mark goes
//! with its filesystem).

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A filesystem marked in a group.
struct Marked {
    fsid: u64,
    /// A path on it, to remove the mark by.
    path: PathBuf,
    /// Trees (and mounts inside them) that need it.
    users: usize,
}

struct Group {
    fd: OwnedFd,
    marked: HashMap<u64, Marked>,
}

/// Every fanotify group of the daemon.
pub struct Groups {
    groups: Vec<Group>,
    mask: u64,
}

/// `fanotify_init(2)` as the backend needs it: directory handles and names,
/// an unbounded queue (events of the whole filesystem arrive, and an overflow
/// caused elsewhere would cost full syncs), non-blocking reads.
fn new_group() -> io::Result<OwnedFd> {
    let flags = libc::FAN_CLASS_NOTIF
        | libc::FAN_CLOEXEC
        | libc::FAN_NONBLOCK
        | libc::FAN_REPORT_DFID_NAME_TARGET
        | libc::FAN_UNLIMITED_QUEUE;
    // SAFETY: plain syscall; the descriptor is owned below.
    let fd =
        unsafe { libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_LARGEFILE) as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

impl Groups {
    /// Creates the first group (which tells whether fanotify can be had at
    /// all); `mask` is what every mark asks for.
    pub fn new(mask: u64) -> io::Result<Groups> {
        Ok(Groups {
            groups: vec![Group {
                fd: new_group()?,
                marked: HashMap::new(),
            }],
            mask,
        })
    }

    /// Marks the filesystem `dev` (with id `fsid`) through `path`, a directory
    /// on it, unless it is marked already.
    pub fn mark(&mut self, dev: u64, fsid: u64, path: &Path) -> io::Result<()> {
        if let Some(m) = self.groups.iter_mut().find_map(|g| g.marked.get_mut(&dev)) {
            m.users += 1;
            return Ok(());
        }
        let free = self
            .groups
            .iter()
            .position(|g| g.marked.values().all(|m| m.fsid != fsid));
        let index = match free {
            Some(index) => index,
            None => {
                tracing::info!(
                    "{}: its filesystem id is another watched filesystem's (a cloned disk?); \
                     it gets a fanotify group of its own",
                    path.display()
                );
                self.groups.push(Group {
                    fd: new_group()?,
                    marked: HashMap::new(),
                });
                self.groups.len() - 1
            }
        };
        let group = &mut self.groups[index];
        mark(&group.fd, libc::FAN_MARK_ADD, self.mask, path)?;
        group.marked.insert(
            dev,
            Marked {
                fsid,
                path: path.to_path_buf(),
                users: 1,
            },
        );
        Ok(())
    }

    /// One user less of filesystem `dev`; the last one removes the mark (when
    /// the path it was set by is still on that filesystem: an unmounted one
    /// took its mark with it).
    pub fn unmark(&mut self, dev: u64) {
        for group in &mut self.groups {
            let Some(m) = group.marked.get_mut(&dev) else {
                continue;
            };
            m.users -= 1;
            if m.users > 0 {
                return;
            }
            if let Some(m) = group.marked.remove(&dev)
                && std::fs::metadata(&m.path).is_ok_and(|meta| meta.dev() == dev)
            {
                let _ = mark(&group.fd, libc::FAN_MARK_REMOVE, self.mask, &m.path);
            }
            return;
        }
    }

    /// The descriptors to wait on, one per group.
    pub fn fds(&self) -> Vec<RawFd> {
        self.groups.iter().map(|g| g.fd.as_raw_fd()).collect()
    }

    /// How many groups there are.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// The filesystem (device number) that group `group` knows by `fsid`.
    pub fn dev_of(&self, group: usize, fsid: u64) -> Option<u64> {
        self.groups
            .get(group)?
            .marked
            .iter()
            .find(|(_, m)| m.fsid == fsid)
            .map(|(dev, _)| *dev)
    }

    /// Reads what group `group` has queued into `buffer`: the byte count, 0 when
    /// nothing is queued.
    pub fn read(&self, group: usize, buffer: &mut [u8]) -> io::Result<usize> {
        let Some(group) = self.groups.get(group) else {
            return Ok(0);
        };
        loop {
            // SAFETY: reading into a buffer we own, of the given length.
            let n = unsafe {
                libc::read(
                    group.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(0),
                io::ErrorKind::Interrupted => continue,
                _ => return Err(err),
            }
        }
    }
}

fn mark(group: &OwnedFd, action: libc::c_uint, mask: u64, path: &Path) -> io::Result<()> {
    let c_path = c_path(path)?;
    // SAFETY: our group and a NUL-terminated path that outlives the call.
    let rc = unsafe {
        libc::fanotify_mark(
            group.as_raw_fd(),
            action | libc::FAN_MARK_FILESYSTEM,
            mask,
            libc::AT_FDCWD,
            c_path.as_ptr(),
        )
    };
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
