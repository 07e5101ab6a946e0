//! A local destination rsync can never create: one of its components is a
//! file (a regular file, a device, a socket), or it lies on a kernel
//! filesystem (`/proc`, `/sys`) where no directory can be made. Without this
//! check such a target is accepted, retried forever with `mkdir ... failed`,
//! and holds up every stop; with it, start, `--check`, `add` and `reload` name
//! the path and the reason. Remote targets are not looked at: one that is down
//! now may be back later.

use std::ffi::CString;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// `statfs` f_type of procfs (linux/magic.h).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// `statfs` f_type of sysfs (linux/magic.h).
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Why the local destination `destination` can never be made, or `None` when
/// rsync may create it (or it exists as a directory).
pub fn why_unmakeable(destination: &Path) -> Option<String> {
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
    match filesystem_type(&deepest_existing) {
        Some(PROC_SUPER_MAGIC) => Some(format!(
            "{} is on procfs (the kernel's /proc), where no directory can be made",
            deepest_existing.display()
        )),
        Some(SYSFS_MAGIC) => Some(format!(
            "{} is on sysfs (the kernel's /sys), where no directory can be made",
            deepest_existing.display()
        )),
        _ => None,
    }
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
