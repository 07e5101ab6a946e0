//! The mirror boundary holds: hostile names, odd rsync and ssh options, a target
//! link re-pointed while the daemon runs and a remote path that climbs never
//! reach outside a mirror, and a run the sandbox refused is never counted as
//! synced. Each test asserts on the filesystem outside the mirror (entry counts,
//! inode numbers) and on what status reports.

mod remote_path;

use std::fs;
use std::path::Path;

/// The names in `dir`, sorted (lossy, for messages and comparisons).
pub(super) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
