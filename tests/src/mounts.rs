//! Mounts a test makes: a tmpfs (of a given size, which can be changed while
//! mounted: a target filesystem that fills up and is grown again) or a bind
//! mount, lazily unmounted when dropped so a failed test leaves none behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run_ok;

/// A mount made by a test, unmounted on drop.
pub struct Mount(PathBuf);

impl Mount {
    /// A tmpfs at `at`, with tmpfs's default size (half the memory).
    pub fn tmpfs(at: &Path) -> Mount {
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "inosync-test"])
                .arg(at),
        );
        Mount(at.to_path_buf())
    }

    /// A tmpfs at `at` of `size` (as `mount -o size=` reads it: `256k`, `64m`).
    pub fn tmpfs_sized(at: &Path, size: &str) -> Mount {
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "inosync-test"])
                .arg(at),
        );
        Mount(at.to_path_buf())
    }

    /// `from` mounted again at `at`.
    pub fn bind(from: &Path, at: &Path) -> Mount {
        run_ok(Command::new("mount").arg("--bind").arg(from).arg(at));
        Mount(at.to_path_buf())
    }

    /// A mount the test made itself, to be unmounted on drop.
    pub fn adopt(at: &Path) -> Mount {
        Mount(at.to_path_buf())
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Changes a tmpfs's size (`mount -o remount,size=`): smaller than what it
    /// holds fills it up (the kernel refuses less than it holds), larger grows it.
    pub fn resize(&self, size: &str) -> std::io::Result<()> {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "remount,size={size}: {status}"
            )))
        }
    }

    /// Bytes in use on the mounted filesystem.
    pub fn used_bytes(&self) -> u64 {
        let path = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes())
            .expect("no NUL in a test path");
        // SAFETY: a zeroed statvfs we own and a NUL-terminated path.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return 0;
        }
        (st.f_blocks - st.f_bfree) * st.f_frsize
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
