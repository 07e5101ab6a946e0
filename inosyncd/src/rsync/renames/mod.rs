//! Moves done as renames on the target, before the batch's rsync: a renamed
//! 20 GB directory is one `rename(2)` there instead of 20 GB sent again. A move
//! is renamed only when its old path exists on the target and its new one does
//! not; anything else (or any failure) falls back to the transfer, which is
//! always right, only slower.
//!
//! Local targets: `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` opens each
//! parent directory below the destination (never through a symlink, never out of
//! the mirror), then `renameat2(RENAME_NOREPLACE)`. `host:` targets: one ssh
//! command for the whole batch (`ssh.rs`). `rsync://` targets cannot rename:
//! every move is a transfer.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::job::{Job, Move};
use super::ssh_reuse::uses_remote_shell;
use crate::config::checks::is_local_target;

mod order;
mod ssh;

pub use order::unsure;

/// Applies the job's moves on its destination, in the order `order.rs` says;
/// `true` for each one renamed, in the job's order. Under `--pretend` each is
/// logged and none renamed (so their transfers are what gets logged next).
pub async fn apply(job: &Job) -> Vec<bool> {
    if job.moves.is_empty() {
        return Vec::new();
    }
    // The user's own filter rules (`rsync_args`) may protect a name on the
    // target that the daemon does not know of: a rename there would carry
    // it off, and the comparison of the new tree delete it (a black-box
    // attack). Every move falls back to the transfer, which reads them.
    if super::guarded::has_rules(&job.extra) {
        return vec![false; job.moves.len()];
    }
    // A move to or from a name like the partial directory's is never done
    // on the target: that name is never mirrored (a symlink renamed to it
    // would have rsync take files behind it for partial files; rsync's own
    // partial directory renamed away would land in the mirror). It falls
    // back to the transfer: the old place deleted, the new one hidden. Found
    // by a black-box attack.
    let partial = super::leftovers::partial_dir_name(&job.extra);
    let touches_partial = |m: &Move| {
        partial.as_deref().is_some_and(|name| {
            [&m.from, &m.to].iter().any(|p| {
                p.split(|b| *b == b'/')
                    .any(|component| component == name.as_bytes())
            })
        })
    };
    let order: Vec<usize> = order::order(&job.moves)
        .into_iter()
        .filter(|&i| !touches_partial(&job.moves[i]))
        .collect();
    let mut ordered = job.clone();
    ordered.moves = order.iter().map(|&i| job.moves[i].clone()).collect();
    let done = apply_in_order(&ordered).await;
    let mut renamed = vec![false; job.moves.len()];
    for (&i, ok) in order.iter().zip(done) {
        renamed[i] = ok;
    }
    renamed
}

/// Applies `job.moves` as they are listed.
async fn apply_in_order(job: &Job) -> Vec<bool> {
    if job.launch.pretend() {
        for m in &job.moves {
            tracing::info!(
                "{} -> {}:   would rename {} -> {} on the target",
                job.source.display(),
                job.destination,
                String::from_utf8_lossy(&m.from),
                String::from_utf8_lossy(&m.to)
            );
        }
        return vec![false; job.moves.len()];
    }
    if is_local_target(&job.destination) {
        // The place the transfer would be refused for is not renamed in
        // either (found by a review: the renames went through a mirror
        // replaced by a symlink before the transfer was refused).
        let root = match job.launch.local_target_now(job) {
            Ok(root) => root,
            Err(why) => {
                tracing::debug!("{}: no renames: {why}", job.destination);
                return vec![false; job.moves.len()];
            }
        };
        job.moves
            .iter()
            .map(|m| rename_local(&root, m).is_ok())
            .collect()
    } else if uses_remote_shell(&job.destination) {
        ssh::rename(job).await.unwrap_or_else(|e| {
            tracing::warn!(
                "{}: renames over ssh failed ({e}); transferring instead",
                job.destination
            );
            vec![false; job.moves.len()]
        })
    } else {
        vec![false; job.moves.len()]
    }
}

/// Opens `dir` below `root`, making the directories that are missing (0700: the
/// transfer that follows sets their modes, since a directory missing on the
/// target is new in the source and so listed). One component at a time, none
/// followed if it is a symlink.
fn open_or_make_beneath(root: &OwnedFd, dir: &[u8]) -> std::io::Result<OwnedFd> {
    match crate::deep_paths::open_beneath(root, dir) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    let mut current = crate::deep_paths::open_beneath(root, b"")?;
    for part in dir.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
        if part == b".." || part == b"." {
            return Err(std::io::Error::other("not a plain path"));
        }
        current = match crate::deep_paths::open_beneath(&current, part) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let c_part = CString::new(part).map_err(|_| std::io::Error::other("NUL"))?;
                // SAFETY: a descriptor we own and a NUL-terminated name.
                if unsafe { libc::mkdirat(current.as_raw_fd(), c_part.as_ptr(), 0o700) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                crate::deep_paths::open_beneath(&current, part)?
            }
            other => other?,
        };
    }
    Ok(current)
}

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

/// `rename(root/from, root/to)` when `to` does not exist, nothing followed.
fn rename_local(root: &Path, m: &Move) -> std::io::Result<()> {
    let c_root = CString::new(root.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("NUL in path"))?;
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    let root_fd = unsafe {
        libc::open(
            c_root.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if root_fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor nothing else owns.
    let root_fd = unsafe { OwnedFd::from_raw_fd(root_fd) };
    let (from_dir, from_name) = split(&m.from);
    let (to_dir, to_name) = split(&m.to);
    if from_name.is_empty() || to_name.is_empty() || from_name == b".." || to_name == b".." {
        return Err(std::io::Error::other("not a name"));
    }
    let from_parent = crate::deep_paths::open_beneath(&root_fd, from_dir)?;
    // The old one must exist before anything is made for the new one.
    let c_from_check = CString::new(from_name).map_err(|_| std::io::Error::other("NUL"))?;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a descriptor we own, a NUL-terminated name, a stat buffer we own.
    if unsafe {
        libc::fstatat(
            from_parent.as_raw_fd(),
            c_from_check.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    let to_parent = open_or_make_beneath(&root_fd, to_dir)?;
    let c_from = CString::new(from_name).map_err(|_| std::io::Error::other("NUL"))?;
    let c_to = CString::new(to_name).map_err(|_| std::io::Error::other("NUL"))?;
    // SAFETY: descriptors and NUL-terminated names we own; NOREPLACE makes "the
    // new path does not exist" part of the rename itself.
    let rc = unsafe {
        libc::renameat2(
            from_parent.as_raw_fd(),
            c_from.as_ptr(),
            to_parent.as_raw_fd(),
            c_to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A move from `from` to `to`, nothing to fall back on.
    pub(super) fn mv(from: &str, to: &str) -> Move {
        Move {
            from: from.as_bytes().to_vec(),
            to: to.as_bytes().to_vec(),
            fallback: Vec::new(),
        }
    }

    #[test]
    fn a_local_rename_never_replaces_and_never_leaves_the_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mirror");
        std::fs::create_dir_all(root.join("a/sub")).unwrap();
        std::fs::write(root.join("a/sub/f"), "x").unwrap();
        std::fs::create_dir(root.join("taken")).unwrap();
        std::fs::write(root.join("taken/keep"), "keep").unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("escape")).unwrap();
        assert!(rename_local(&root, &mv("a", "b")).is_ok());
        assert!(root.join("b/sub/f").exists() && !root.join("a").exists());
        assert!(rename_local(&root, &mv("b", "taken")).is_err(), "replaced");
        assert!(root.join("taken/keep").exists());
        assert!(
            rename_local(&root, &mv("b", "escape/out")).is_err(),
            "left the mirror"
        );
        assert!(rename_local(&root, &mv("escape/mirror", "x")).is_err());
        assert!(rename_local(&root, &mv("missing", "y")).is_err());
        assert!(!dir.path().join("out").exists());
        assert!(rename_local(&root, &mv("b/sub", "taken/sub")).is_ok());
    }
}
