//! The files the daemon keeps for itself (lock, pid, state and temp files, the
//! log, private directories): created with explicit modes whatever the umask,
//! never followed through a symlink, and never anything but a regular file.
//!
//! A root daemon that writes through a planted symlink overwrites its victim; a
//! daemon that trusts the umask leaves its state world-writable. Every file of
//! ours goes through here so that neither can happen.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the files the daemon creates for itself.
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode of the directories the daemon creates for itself.
pub const PRIVATE_DIR: u32 = 0o700;

/// Opens (creating it 0600 if needed) a regular file for writing, refusing a
/// symlink, a FIFO, a device or a directory at `path`.
pub fn open_regular(path: &Path, append: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .append(append)
        .create(true)
        .mode(PRIVATE_FILE)
        // O_NONBLOCK: opening a FIFO for writing must not hang the daemon.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| explain_nofollow(path, e))?;
    ensure_regular(path, &file)?;
    Ok(file)
}

/// Opens an existing regular file for reading without following a symlink.
/// `Ok(None)` when there is no file.
pub fn read_regular(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(explain_nofollow(path, e)),
    };
    ensure_regular(path, &file)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

fn ensure_regular(path: &Path, file: &File) -> io::Result<()> {
    let meta = file.metadata()?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{} is not a regular file; refusing to use it",
            path.display()
        )))
    }
}

fn explain_nofollow(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::other(format!(
            "{} is a symlink; refusing to follow it",
            path.display()
        ))
    } else if e.raw_os_error() == Some(libc::EISDIR) {
        io::Error::other(format!("{} is a directory, not a file", path.display()))
    } else {
        io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    }
}

/// Creates `dir` (and missing parents) with `mode` when it does not exist. An
/// existing one must be a real directory, not a symlink.
pub fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) if meta.file_type().is_symlink() => Err(io::Error::other(format!(
            "{} is a symlink; refusing to follow it (the daemon's own directories must be \
             real ones, so that nobody can point its files elsewhere: name the directory \
             the link leads to instead)",
            dir.display()
        ))),
        Ok(_) => Err(io::Error::other(format!(
            "{} exists and is not a directory",
            dir.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(dir)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
            // The umask may have taken bits away; set exactly what was asked.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        }
        Err(e) => Err(e),
    }
}

/// A directory that only the daemon's user may enter: created 0700, or an existing
/// one verified to be owned by us with no access for anyone else.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    ensure_dir(dir, PRIVATE_DIR)?;
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    if meta.uid() != uid {
        return Err(io::Error::other(format!(
            "{} is owned by uid {}, not by the daemon's uid {uid}",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "{} has mode {:o}; it must be 0700",
            dir.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a new temp file beside it (O_EXCL, no
/// symlink followed, 0600), fsync, rename over `path`, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with_mode(path, bytes, PRIVATE_FILE)
}

/// [`write_atomically`] for a file others must read (the metrics file, read by
/// node_exporter's own user).
pub fn write_atomically_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    // A leftover of ours from a crash with the same pid: only ever a regular file
    // we may remove (never followed).
    if std::fs::symlink_metadata(&tmp).is_ok() {
        std::fs::remove_file(&tmp)?;
    }
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| explain_nofollow(&tmp, e))?;
        // The umask may have taken bits away.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    File::open(dir)?.sync_all()
}

/// The directory a file lives in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// An exclusive `flock` on a file, held until dropped: proof that no other daemon
/// uses the same socket or state file.
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    /// Takes the lock without waiting; `Ok(None)` when another process holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<Lock>> {
        let file = open_regular(path, true)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(Some(Lock { file }))
    }

    /// The locked file, for writing into it (the pid file).
    pub fn file(&self) -> &File {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = open_regular(&link, false).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(read_regular(&link).is_err());
        assert!(Lock::try_acquire(&link).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn a_symlinked_directory_is_refused_saying_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("real"), &link).unwrap();
        let e = ensure_dir(&link, PRIVATE_DIR).unwrap_err();
        assert!(e.to_string().contains("is a symlink"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(open_regular(&fifo, false).is_err());
        assert!(read_regular(&fifo).is_err());
    }

    #[test]
    fn files_and_dirs_get_private_modes_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: umask only changes this process's creation mask.
        let old = unsafe { libc::umask(0) };
        let sub = dir.path().join("a/b");
        ensure_dir(&sub, PRIVATE_DIR).unwrap();
        let file = sub.join("state.toml");
        write_atomically(&file, b"x").unwrap();
        unsafe { libc::umask(old) };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&file), 0o600);
        private_dir(&sub).unwrap();
    }

    #[test]
    fn a_second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = Lock::try_acquire(&path).unwrap();
        assert!(first.is_some());
        assert!(Lock::try_acquire(&path).unwrap().is_none());
        drop(first);
        assert!(Lock::try_acquire(&path).unwrap().is_some());
    }
}
