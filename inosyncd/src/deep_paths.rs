//! Directories deeper than a path can name: the kernel refuses a path of
//! PATH_MAX (4096) bytes or more, yet a program may make directories below any
//! depth (with relative `mkdirat`). Such a directory is opened one part at a
//! time below the watch root (never through a symlink), and then named by its
//! descriptor (`/proc/self/fd/N`, a short path the kernel resolves to it), so it
//! can still be watched and listed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Paths at least this long are opened part by part.
pub const LONG: usize = libc::PATH_MAX as usize - 1;

/// How many bytes of path one `openat2` walks at most.
const STEP: usize = 2048;

/// Opens directory `rel` below `root`, `O_PATH`, one part of at most [`STEP`]
/// bytes at a time, never following a symlink and never leaving the root.
pub fn open_dir_below(root: &Path, rel: &[u8]) -> io::Result<OwnedFd> {
    let c_root = CString::new(root.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    let fd = unsafe {
        libc::open(
            c_root.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
    for step in steps(rel) {
        dir = open_beneath(&dir, &step)?;
    }
    Ok(dir)
}

/// `rel` cut at slashes into parts of at most [`STEP`] bytes (a single name is
/// at most 255).
fn steps(rel: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for name in rel.split(|b| *b == b'/').filter(|n| !n.is_empty()) {
        match out.last_mut() {
            Some(step) if step.len() + 1 + name.len() <= STEP => {
                step.push(b'/');
                step.extend_from_slice(name);
            }
            _ => out.push(name.to_vec()),
        }
    }
    out
}

/// Opens directory `rel` below `dir` (`O_PATH`; `""` is `dir` itself) without
/// following any symlink and without leaving `dir`: for paths read from a tree
/// someone else may change under us.
pub fn open_beneath(dir: &OwnedFd, rel: &[u8]) -> io::Result<OwnedFd> {
    let rel = if rel.is_empty() { b".".as_slice() } else { rel };
    let c_rel = CString::new(rel)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: zeroed plain data, then the fields openat2 reads.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 reads the NUL-terminated path and the open_how we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c_rel.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Lists directory `rel` below `root`, however deep.
pub fn read_dir(root: &Path, rel: &[u8]) -> io::Result<std::fs::ReadDir> {
    let abs = crate::watcher::absolute(root, rel);
    if abs.as_os_str().len() < LONG {
        return std::fs::read_dir(abs);
    }
    let dir = open_dir_below(root, rel)?;
    std::fs::read_dir(proc_path(&dir))
}

/// A short path the kernel resolves to the open file `fd` (valid while it is
/// open).
pub fn proc_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_deeper_than_path_max_is_opened_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let name = "d".repeat(200);
        let mut rel = Vec::new();
        let mut fd = open_dir_below(dir.path(), b"").unwrap();
        for _ in 0..25 {
            let c_name = CString::new(name.as_bytes()).unwrap();
            // SAFETY: a descriptor we own and a NUL-terminated name.
            assert_eq!(
                unsafe { libc::mkdirat(fd.as_raw_fd(), c_name.as_ptr(), 0o755) },
                0
            );
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            fd = open_dir_below(dir.path(), &rel).unwrap();
        }
        assert!(rel.len() > LONG);
        let listed = std::fs::read_dir(proc_path(&fd)).unwrap().count();
        assert_eq!(listed, 0);
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        assert!(
            open_dir_below(dir.path(), b"link").is_err(),
            "followed a symlink"
        );
        assert_eq!(steps(b"a/b//c").len(), 1);
    }
}
