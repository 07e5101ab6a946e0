//! A full sync into an empty local target (a first start, a target added)
//! cut over several rsync processes while CPUs are free. One rsync copying a
//! tree keeps about one CPU busy; two copy a tree of 50,000 directories in
//! about half the time (README "Performance"). Nothing is deleted in such a
//! sync, so the tree may be cut anywhere: first the top level (the root's
//! own attributes, its files and links, its directories made empty), then
//! the top-level directories walked, in groups of about equal weight, side
//! by side. Each part is read as the full sync it belongs to: a failure of
//! any is the full sync's, which is retried (then into a target that is no
//! longer empty, in one process).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use tokio::sync::{oneshot, watch};

use super::job::{FullPart, Job};
use super::outcome::{FailureClass, Outcome, Progress, RunResult};

/// Whether `job` (a full sync into an empty target) may be cut: not when
/// the user's rsync options tie one part of the tree to another, which
/// separate processes would not see (hard links), or make the parts copy
/// other than one process would (one file system from each top-level
/// directory rather than from the root; empty directories pruned after
/// the top level made them; a batch file written by every part; a list or
/// a recursion of their own; rules read from a file in each directory,
/// whose copy in the root only a walk of the root reads).
pub fn may_cut(job: &Job) -> bool {
    job.into_empty
        && job.keep_deleted
        && !job.compare_contents
        && job.moves.is_empty()
        && job.trees.is_empty()
        && job.sweep.is_empty()
        && crate::config::checks::is_local_target(&job.destination)
        && !super::user_options(&job.extra).iter().any(|option| {
            TIES_THE_TREE.contains(&option.name.as_str())
                || (matches!(option.name.as_str(), "--filter" | "-f")
                    && option.value.as_deref().is_some_and(is_merge))
        })
}

/// Whether a filter rule reads rules from a file: one in each directory
/// (`: NAME`, `dir-merge NAME`), which a part walking a top-level directory
/// does not read in the root, or one file (`. FILE`, `merge FILE`), which
/// may itself name such a rule.
fn is_merge(rule: &str) -> bool {
    let rule = rule.trim_start();
    rule.starts_with([':', '.']) || rule.starts_with("dir-merge") || rule.starts_with("merge")
}

/// The user's rsync options under which a tree copied in parts is not the
/// tree one process would copy.
const TIES_THE_TREE: &[&str] = &[
    "-H",
    "--hard-links",
    "-x",
    "--one-file-system",
    "-m",
    "--prune-empty-dirs",
    "-d",
    "--dirs",
    "--no-recursive",
    "--no-r",
    "-R",
    "--relative",
    "--files-from",
    "--write-batch",
    "--only-write-batch",
    "--read-batch",
    "-F",
    "-C",
    "--cvs-exclude",
];

/// Runs the full sync `job` in parts (see the module): the top level, then
/// the top-level directories in at most `job.split` processes side by side.
/// The top level's process starts before this returns (see `run::run`).
pub fn send(
    job: Job,
    label: String,
    stop: oneshot::Receiver<()>,
    progress: watch::Sender<Option<Progress>>,
) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send + 'static>> {
    let (mut stops, mut progresses) = super::split::in_turn(stop, progress, 2);
    let (top_stop, trees_stop) = (stops.remove(0), stops.remove(0));
    let (top_progress, trees_progress) = (progresses.remove(0), progresses.remove(0));
    let mut top = job.clone();
    top.part = FullPart::TopLevel;
    top.split = 1;
    let running = super::newline_names::start(top, label.clone(), top_stop, top_progress);
    Box::pin(async move {
        let mut outcome = running.await;
        if !outcome.result.arrived() {
            return outcome;
        }
        let dirs = match top_level_dirs(&job) {
            Ok(dirs) => dirs,
            Err(e) => {
                // What lies below the top level was never sent: the full
                // sync failed (no event would ever bring what did not change).
                let cause = format!("the source's top level could not be read: {e}");
                tracing::warn!("{label}: {cause}");
                outcome.absorb(Outcome::bare(
                    RunResult::Failed {
                        class: FailureClass::Transient,
                        cause,
                    },
                    None,
                ));
                outcome.files = None;
                return outcome;
            }
        };
        let parts: Vec<Job> = super::split::by_weight(dirs, job.split)
            .into_iter()
            .map(|group| {
                let mut part = job.clone();
                part.part = FullPart::Trees;
                part.recursive = true;
                part.split = 1;
                part.paths = Some(group);
                part
            })
            .collect();
        if !parts.is_empty() {
            tracing::debug!(
                "{label}: full sync into an empty target over {} rsync processes",
                parts.len()
            );
            let walked =
                super::split::run_parts(parts, trees_stop, trees_progress, move |part, s, p| {
                    super::newline_names::start(part, label.clone(), s, p)
                })
                .await;
            outcome.absorb(walked);
        }
        // The whole tree, as the log and metrics say of a full sync.
        outcome.files = None;
        outcome
    })
}

/// The root's directories (not through a symlink), each with its link count
/// as its weight (two plus its subdirectories on most file systems: a rough
/// size of what is below it). A directory made after the top level was
/// copied is one too, or arrives by its events; an error reading the root
/// is the sync's.
fn top_level_dirs(job: &Job) -> std::io::Result<Vec<(Vec<u8>, u64)>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(&job.source)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let weight = entry.metadata().map_or(1, |m| m.nlink());
            dirs.push((entry.file_name().as_bytes().to_vec(), weight));
        }
    }
    Ok(dirs)
}

/// How many top-level directories the source root has, from its link count
/// (two plus its subdirectories), or `None` where the file system does not
/// count them so (a link count below 2): a sync is cut into no more parts
/// than that, so it holds no slot it cannot use.
pub fn top_level_count(source: &std::path::Path) -> Option<u64> {
    let links = std::fs::metadata(source).ok()?.nlink();
    (links >= 2).then(|| links - 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_target_sync(extra: &[&str]) -> Job {
        Job {
            source: "/srv/www".into(),
            destination: "/mirror/www/".into(),
            keep_deleted: true,
            into_empty: true,
            split: 2,
            extra: extra.iter().map(|a| a.to_string()).collect(),
            ..Job::default()
        }
    }

    #[test]
    fn only_a_sync_into_an_empty_local_target_is_cut() {
        assert!(may_cut(&empty_target_sync(&[])));
        assert!(may_cut(&empty_target_sync(&["--numeric-ids", "-v"])));
        let mut remote = empty_target_sync(&[]);
        remote.destination = "host:/mirror/www/".into();
        assert!(!may_cut(&remote));
        let mut not_empty = empty_target_sync(&[]);
        not_empty.into_empty = false;
        assert!(!may_cut(&not_empty));
        let mut by_content = empty_target_sync(&[]);
        by_content.compare_contents = true;
        assert!(!may_cut(&by_content));
    }

    #[test]
    fn options_that_tie_the_tree_together_keep_it_whole() {
        for extra in [
            &["-aH"][..],
            &["--hard-links"],
            &["-x"],
            &["--one-file-system"],
            &["--write-batch=/tmp/b"],
            &["--files-from", "list"],
            &["--filter=: .rsync-filter"],
            &["-f", "dir-merge .ignore"],
            &["-F"],
            &["--cvs-exclude"],
        ] {
            assert!(!may_cut(&empty_target_sync(extra)), "{extra:?}");
        }
        // A value is not an option: `--exclude -H` excludes a file.
        assert!(may_cut(&empty_target_sync(&["--exclude", "-H"])));
        // A rule file may hold a per-directory rule: any keeps it whole.
        assert!(!may_cut(&empty_target_sync(&["--filter=merge /etc/rules"])));
        assert!(!may_cut(&empty_target_sync(&["-f", ". /etc/rules"])));
        // A plain rule does not.
        assert!(may_cut(&empty_target_sync(&["--filter=- *.tmp"])));
    }

    #[test]
    fn the_top_level_directories_are_read_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("d"), dir.path().join("link")).unwrap();
        let job = Job {
            source: dir.path().to_path_buf(),
            ..Job::default()
        };
        let dirs = top_level_dirs(&job).unwrap();
        assert_eq!(dirs.len(), 1);
        assert_eq!(dirs[0].0, b"d".to_vec());
        assert!(dirs[0].1 >= 1);
        assert_eq!(top_level_count(dir.path()), Some(1));
        let gone = Job {
            source: dir.path().join("gone"),
            ..Job::default()
        };
        assert!(top_level_dirs(&gone).is_err());
    }
}
