//! A target path no one may change for a test's duration, not even root
//! (`chattr +i`): how the tests make rsync fail on one path of a run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `chattr +i` on a path until dropped (`chattr -i`, also when the test panics).
pub struct Immutable(PathBuf);

impl Immutable {
    /// Makes `path` immutable: a file cannot be replaced, nothing can be made
    /// or removed in a directory.
    pub fn set(path: &Path) -> Immutable {
        crate::run_ok(Command::new("chattr").arg("+i").arg(path));
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}
