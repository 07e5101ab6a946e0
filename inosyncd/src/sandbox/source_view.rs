//! The source as rsync sees it: in a mount namespace of the child's own, the
//! watch root is mounted over itself `nosymfollow`, so no symlink in the source
//! can be followed by rsync, not even a directory swapped for one after the
//! daemon's checks and before rsync's own `open` (README "Safety": without
//! this, `mv d d.real; ln -s /etc d` timed to that open put files rsync may
//! read, such as `/etc`'s, into the mirror). Symlinks are still read and sent
//! as symlinks (`readlink` works on such a mount); only following them fails,
//! as `ELOOP`, which rsync reports as a file it could not send and the daemon
//! retries. The options that would follow source symlinks on purpose (`-L`,
//! `-k`, `--copy-unsafe-links`) are refused by the config anyway.
//!
//! Making a mount namespace needs `CAP_SYS_ADMIN`: a daemon run as root has
//! it, an unprivileged one does not (and reads only what its user may). The
//! namespace is made by the thread that starts the child (`unshare` of a mount
//! namespace is per thread), its mounts made slaves first so nothing mounted
//! in it reaches the daemon's own namespace; it ends with its last process.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// `open_tree(2)` and `move_mount(2)` flags and the `mount_setattr(2)` attribute
/// (uapi `linux/mount.h`; the same on every architecture).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Whether this daemon can give its children such a view: tried once at start
/// in a thread of its own (its namespace ends with it), on `/`. `Err` says why
/// not, for the start-up log.
pub fn available() -> Result<(), ViewError> {
    std::thread::Builder::new()
        .name("inosyncd-probe-namespace".into())
        .spawn(|| enter(Path::new("/")))
        .map_err(ViewError::Mount)?
        .join()
        .unwrap_or_else(|_| {
            Err(ViewError::Mount(io::Error::other(
                "the probe thread panicked",
            )))
        })
}

/// Where the view of `source` is mounted: over the highest directory above
/// the watch root that a user other than root could rename or replace (from
/// the root's parent up: a writer of a directory can swap its entries for
/// symlinks at rsync's start, and the view must hold that directory), when
/// that suits; else over the root's parent, else the root itself, or `None`
/// when none suits. `needed`: what the run itself reads or writes by path
/// besides the source (the rsync binary, a local target, the files its
/// remote shell names), which must not be below it.
pub fn place<'a>(source: &'a Path, needed: &[PathBuf]) -> Option<&'a Path> {
    let parent = source.parent().filter(|p| p.parent().is_some());
    let mut highest = parent;
    while let Some(dir) = highest.filter(|d| replaceable_by_others(d)) {
        highest = dir.parent().filter(|p| p.parent().is_some());
    }
    highest
        .filter(|d| suits(d, needed))
        .or(parent.filter(|p| suits(p, needed)))
        .or(Some(source).filter(|s| suits(s, needed)))
}

/// Whether a user other than root may rename `dir` or put something in its
/// place: its parent is theirs, or writable by them without the sticky bit
/// (with it, only `dir`'s own owner may). ACLs are not read.
fn replaceable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Some(parent), Ok(own)) = (dir.parent(), std::fs::symlink_metadata(dir)) else {
        return false;
    };
    let Ok(above) = std::fs::symlink_metadata(parent) else {
        return false;
    };
    let others_write = above.mode() & 0o022 != 0;
    let sticky = above.mode() & 0o1000 != 0;
    above.uid() != 0 || (others_write && (!sticky || own.uid() != 0))
}

/// Whether rsync and ssh can run with `dir` seen `nosymfollow`: not when it
/// holds what they read through symlinks themselves (`/`, `/usr` with the
/// dynamic loader's links, `/etc` with `resolv.conf`, a home with `~/.ssh`)
/// or what the run names by path (`needed`, which may go through a symlink:
/// a target at `/backup/current`).
fn suits(dir: &Path, needed: &[PathBuf]) -> bool {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut held = super::rules::SYSTEM
        .iter()
        .map(Path::new)
        .chain(home.as_deref())
        .chain(needed.iter().map(PathBuf::as_path));
    !held.any(|n| n.starts_with(dir))
}

/// Why a thread could not enter the view.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The source is not a directory reached without a symlink now (removed,
    /// renamed, replaced by a symlink a moment ago): a race with its writers.
    #[error("cannot open {0}: {1}")]
    Source(String, io::Error),
    /// The kernel refused a step (a namespace, a mount): it will again, so
    /// it needs an administrator.
    #[error("{0}")]
    Mount(io::Error),
}

/// Moves the calling thread into a new mount namespace in which `source` (a
/// canonical directory, reached without following any symlink) is mounted
/// over itself, with every mount below it, `nosymfollow`. Only for a thread
/// made to start one child: it never returns to the daemon's namespace.
pub fn enter(source: &Path) -> Result<(), ViewError> {
    make_namespace().map_err(ViewError::Mount)?;
    // Opened in the new namespace (a mount of the old one cannot be mounted
    // on), without following a symlink on the way.
    let place = super::open_no_symlinks(source)
        .map_err(|e| ViewError::Source(source.display().to_string(), e))?;
    mount_over(&place).map_err(|e| match e.raw_os_error() {
        // Removed between the open and the mount: the same race.
        Some(libc::ENOENT) => ViewError::Source(source.display().to_string(), e),
        _ => ViewError::Mount(e),
    })?;
    hide_kernel_mounts(source);
    Ok(())
}

/// Takes the kernel's filesystems mounted inside the source (a chroot's
/// `proc` or `sys`) out of the view, with whatever is mounted below them:
/// rsync then sees the directory under each mount point, on the source's own
/// filesystem. Their files are made up as they are read, some for ever
/// (`kcore`), and some fail to read: mirrored, they held the tree's changes
/// for good and never let `wait` say idle (`crate::kernel_filesystems`). An
/// unmount that fails (one gone meanwhile) leaves that mount as it was.
fn hide_kernel_mounts(source: &Path) {
    use crate::watcher::mounts;
    // This thread's namespace (`/proc/self` is the daemon's main thread's).
    let Ok(text) = std::fs::read("/proc/thread-self/mountinfo") else {
        return;
    };
    let source_bytes = source.as_os_str().as_encoded_bytes();
    let mut hidden: Vec<Vec<u8>> = Vec::new();
    // Sorted: a mount point comes before those below it.
    for rel in mounts::kernel_points_below(&mounts::parse(&text), source_bytes) {
        if hidden.iter().any(|h| mounts::is_within(&rel, h)) {
            continue;
        }
        let Ok(point) = std::ffi::CString::new([source_bytes, b"/", &rel].concat()) else {
            continue;
        };
        // SAFETY: a NUL-terminated path; detaches a mount of this thread's
        // own namespace (its mounts are slaves: nothing reaches the daemon's).
        let done =
            unsafe { libc::umount2(point.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
        if done == 0 {
            hidden.push(rel);
        } else {
            let error = io::Error::last_os_error();
            // rsync will read the kernel's files: said once per mount point,
            // not at every run.
            static SAID: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
            let mut said = SAID
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !said.contains(&rel) {
                tracing::warn!(
                    "cannot hide the kernel filesystem at {} from rsync: {error}",
                    String::from_utf8_lossy(point.as_bytes())
                );
                said.push(rel);
            }
        }
    }
}

/// A mount namespace for the calling thread, its mounts made slaves (nothing
/// mounted in it reaches the daemon's).
fn make_namespace() -> io::Result<()> {
    // SAFETY: unshare changes only this thread's namespace and fs context.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(context("cannot make a mount namespace"));
    }
    // SAFETY: NUL-terminated literals; no data argument.
    let slaved = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        )
    };
    if slaved != 0 {
        return Err(context("cannot make the namespace's mounts slaves"));
    }
    Ok(())
}

/// Mounts a copy of the mount tree at `place`, submounts included, over it,
/// `nosymfollow`.
fn mount_over(place: &OwnedFd) -> io::Result<()> {
    let tree = open_tree(place)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_NOSYMFOLLOW,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the attribute struct is ours and its size is given.
    let set = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if set != 0 {
        return Err(context("cannot set nosymfollow on the source's mount"));
    }
    // SAFETY: two descriptors we own, empty paths.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            place.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if moved != 0 {
        return Err(context("cannot mount the source over itself"));
    }
    Ok(())
}

/// A detached copy of the mount tree at `place`, submounts included.
fn open_tree(place: &OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: an empty path on a descriptor we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            place.as_raw_fd(),
            c"".as_ptr(),
            OPEN_TREE_CLONE
                | OPEN_TREE_CLOEXEC
                | (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(context("cannot copy the source's mount"));
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The last OS error, prefixed with what was being done.
fn context(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In the view, a symlink of the source (or of a mount below it) is read
    /// but never followed; the daemon's own namespace is untouched.
    #[test]
    fn symlinks_in_the_view_are_read_not_followed() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mount namespaces need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().canonicalize().unwrap().join("src");
        std::fs::create_dir_all(source.join("real")).unwrap();
        std::fs::write(source.join("real/f"), "inside").unwrap();
        std::os::unix::fs::symlink("/etc", source.join("d")).unwrap();
        std::os::unix::fs::symlink("real", source.join("near")).unwrap();
        let seen = {
            let source = source.clone();
            std::thread::spawn(move || -> Result<_, ViewError> {
                enter(&source)?;
                let through = std::fs::read(source.join("d/passwd"));
                let near = std::fs::read(source.join("near/f"));
                let link = std::fs::read_link(source.join("d")).map_err(ViewError::Mount)?;
                let plain = std::fs::read(source.join("real/f")).map_err(ViewError::Mount)?;
                Ok((
                    through.err().and_then(|e| e.raw_os_error()),
                    near.is_err(),
                    link,
                    plain,
                ))
            })
            .join()
            .unwrap()
            .unwrap()
        };
        assert_eq!(seen.0, Some(libc::ELOOP));
        assert!(seen.1, "a symlink within the source was followed");
        assert_eq!(seen.2, Path::new("/etc"));
        assert_eq!(seen.3, b"inside");
        // Not in this thread's namespace (nor the process's).
        assert_eq!(std::fs::read(source.join("near/f")).unwrap(), b"inside");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(source.to_str().unwrap()));
    }

    /// A watch of what rsync and ssh themselves read through symlinks goes
    /// without the view; a tree below those is seen `nosymfollow`.
    #[test]
    fn a_source_holding_the_system_or_rsync_gets_no_view() {
        let rsync = [PathBuf::from("/usr/bin/rsync")];
        for holding in ["/", "/usr", "/etc", "/usr/bin"] {
            assert!(!suits(Path::new(holding), &rsync), "{holding}");
        }
        let tools = [PathBuf::from("/opt/tools/rsync")];
        assert!(!suits(Path::new("/opt/tools"), &tools));
        for below in ["/srv/www", "/etc/nginx", "/var/www"] {
            assert!(suits(Path::new(below), &rsync), "{below}");
        }
        // The root's parent when it suits, else the root, else nothing.
        let place = |s: &'static str, needed: &[PathBuf]| {
            place(Path::new(s), needed).map(Path::to_path_buf)
        };
        assert_eq!(place("/srv/www", &rsync), Some("/srv".into()));
        assert_eq!(place("/home/alice/www", &rsync), Some("/home/alice".into()));
        assert_eq!(place("/etc/nginx", &rsync), Some("/etc/nginx".into()));
        assert_eq!(place("/srv", &rsync), Some("/srv".into()));
        assert_eq!(place("/usr", &rsync), None);
        // A target beside the root (maybe through a symlink there): the root.
        let beside = [rsync[0].clone(), PathBuf::from("/srv/backup/current")];
        assert_eq!(place("/srv/www", &beside), Some("/srv/www".into()));
    }

    /// Directories a user other than root could replace are held by the view
    /// too, up to the first one only root could.
    #[test]
    fn the_view_holds_every_directory_another_user_could_replace() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: chown needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().canonicalize().unwrap();
        let source = top.join("home/site/www");
        std::fs::create_dir_all(&source).unwrap();
        let rsync = [PathBuf::from("/usr/bin/rsync")];
        assert_eq!(
            place(&source, &rsync),
            Some(top.join("home/site").as_path())
        );
        for owned in ["home", "home/site"] {
            std::os::unix::fs::chown(top.join(owned), Some(65534), Some(65534)).unwrap();
        }
        assert_eq!(place(&source, &rsync), Some(top.join("home").as_path()));
    }

    /// A source that is a symlink, or gone, is no view.
    #[test]
    fn a_source_replaced_by_a_symlink_or_gone_is_refused() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mount namespaces need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        for source in [root.join("link"), root.join("gone")] {
            let refused = std::thread::spawn(move || enter(&source))
                .join()
                .unwrap()
                .unwrap_err();
            assert!(matches!(refused, ViewError::Source(..)), "{refused}");
            assert!(refused.to_string().contains("cannot open"), "{refused}");
        }
    }
}
