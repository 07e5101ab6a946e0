//! A local destination rsync can never create: one of its components is a
//! file (a regular file, a device, a socket), or it lies on a kernel
//! filesystem (`/proc`, `/sys`) where no directory can be made; and a watch
//! of such a filesystem, which can never be mirrored. Without this
//! check such a target is accepted, retried forever with `mkdir ... failed`,
//! and holds up every stop; with it, start, `--check`, `add` and `reload` name
//! the path and the reason. Remote targets are not looked at: one that is down
//! now may be back later.

use std::ffi::CString;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Trees of the kernel's filesystems named by path: `/proc/self/cwd/x` leads
/// through a magic link to a real directory, the daemon's own working one.
const KERNEL_TREES: &[&str] = &["/proc", "/sys"];

/// Why the local destination `destination` can never be made, or `None` when
/// rsync may create it (or it exists as a directory).
pub fn why_unmakeable(destination: &Path) -> Option<String> {
    if let Some(tree) = KERNEL_TREES
        .iter()
        .find(|tree| destination.starts_with(Path::new(tree)))
    {
        return Some(format!(
            "{} is below {tree}, the kernel's, where no mirror can be made",
            destination.display()
        ));
    }
    let mut prefix = PathBuf::from("/");
    let mut deepest_existing = prefix.clone();
    for component in destination.components() {
        match component {
            Component::Normal(name) => prefix.push(name),
            Component::ParentDir => {
                prefix.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        }
        match std::fs::metadata(&prefix) {
            Ok(meta) if meta.is_dir() => deepest_existing = prefix.clone(),
            Ok(meta) => {
                let kind = if meta.is_file() {
                    "a regular file"
                } else {
                    "a special file"
                };
                return Some(format!(
                    "{} is {kind}, not a directory{}",
                    prefix.display(),
                    if prefix.as_path() == destination {
                        ""
                    } else {
                        ": no directory can be made below it"
                    }
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            // Not readable by the daemon (permissions): rsync says more at run time.
            Err(_) => break,
        }
    }
    let kind = crate::kernel_filesystems::by_magic(filesystem_type(&deepest_existing)?)?;
    Some(format!(
        "{} is on {}, where no directory can be made",
        deepest_existing.display(),
        kind.words
    ))
}

/// Why the tree `source` can never be watched and mirrored, or `None`: a
/// kernel filesystem's files are made up as they are read, no event says
/// when they change, and some never end (a mirror of `/proc` is never
/// equal to it, and rsync reads it for ever).
pub fn why_unwatchable(source: &Path) -> Option<String> {
    if let Some(tree) = KERNEL_TREES
        .iter()
        .find(|tree| source.starts_with(Path::new(tree)))
    {
        let place = if source == Path::new(tree) {
            format!("{tree} is the kernel's")
        } else {
            format!("{} is below {tree}, the kernel's", source.display())
        };
        return Some(format!(
            "{place}: its files are made up as they are read, and no event says when \
             they change"
        ));
    }
    let kind = crate::kernel_filesystems::by_magic(filesystem_type(source)?)?;
    Some(format!(
        "{} is on {}, the kernel's: its files are made up as they are read, and no event \
         says when they change",
        source.display(),
        kind.words
    ))
}

/// The `statfs` filesystem type of `path`, if it can be read.
fn filesystem_type(path: &Path) -> Option<i64> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs fills the zeroed struct we own from a NUL-terminated path.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut buf) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    Some(buf.f_type as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_below_a_regular_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("afile");
        std::fs::write(&file, "x").unwrap();
        let why = why_unmakeable(&file.join("dst/deeper")).unwrap();
        assert!(why.contains(file.to_str().unwrap()), "{why}");
        assert!(why.contains("a regular file"), "{why}");
        assert_eq!(why_unmakeable(&dir.path().join("not-yet/dst")), None);
        assert_eq!(why_unmakeable(dir.path()), None);
    }

    #[test]
    fn other_kernel_filesystems_and_magic_links_are_named() {
        for (path, words) in [("/proc/self/cwd/x", "/proc"), ("/dev/pts/x", "devpts")] {
            let why = why_unmakeable(Path::new(path)).unwrap_or_default();
            assert!(why.contains(words), "{path}: {why:?}");
        }
        if Path::new("/sys/fs/cgroup").is_dir() {
            assert!(why_unmakeable(Path::new("/sys/fs/cgroup/x")).is_some());
        }
        assert_eq!(why_unmakeable(Path::new("/dev/shm/mirror")), None);
    }

    #[test]
    fn proc_and_sys_are_named() {
        assert!(
            why_unmakeable(Path::new("/proc/nope"))
                .unwrap()
                .contains("/proc")
        );
        assert!(
            why_unmakeable(Path::new("/sys/a/b"))
                .unwrap()
                .contains("/sys")
        );
    }
}
