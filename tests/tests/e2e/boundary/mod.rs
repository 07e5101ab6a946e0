//! The mirror boundary holds: hostile names, odd rsync and ssh options, a target
//! link re-pointed while the daemon runs and a remote path that climbs never
//! reach outside a mirror, and a run the sandbox refused is never counted as
//! synced. Each test asserts on the filesystem outside the mirror (entry counts,
//! inode numbers) and on what status reports.

mod remote_path;
mod retargeted_link;
mod sandbox_refusals;
mod ssh_keys;
mod ssh_renames;

use std::fs;
use std::path::Path;

use inosync_tests::Daemon;

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

/// Every entry below `dir`, counted (directories, files, links).
pub(super) fn count_below(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            n += 1;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    n
}

/// The first target of the first watch, from `status --json`.
pub(super) fn first_target(daemon: &Daemon) -> serde_json::Value {
    daemon.status()["watches"][0]["targets"][0].clone()
}

/// Whether that target has failed at least once with an error containing every
/// one of `words`.
pub(super) fn failed_naming(target: &serde_json::Value, words: &[&str]) -> bool {
    target["failures"].as_u64().is_some_and(|f| f >= 1)
        && target["last_error"]
            .as_str()
            .is_some_and(|e| words.iter().all(|w| e.contains(w)))
}
