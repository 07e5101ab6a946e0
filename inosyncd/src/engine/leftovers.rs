//! Where a pair's runs that did not finish may have left rsync's partial or
//! temp files on the target (see `rsync::leftovers`): the directories of the
//! paths they listed. A batch of paths does not remove them, so they are swept
//! after the pair's next run that arrives (its transfer first uses and removes
//! the partial files of the paths it sends again). A full sync that deletes
//! and arrives removes every one of them; one that deletes nothing
//! (`delete = "running"`, the keep modes) sweeps them as a run of paths does.
//! Kept in memory; a restart after a kill or an unsynced stop starts with the
//! directories of the changes the last daemon had not synced (its journal,
//! `engine/journal.rs`): the rsync it left running keeps what it received
//! there when the restart stops it.

use std::collections::BTreeSet;

use super::batch::Batch;
use crate::rsync::Outcome;

/// Past this many directories to sweep a pair gives up listing them: its next
/// run is a full sync, which removes every leftover when it deletes (in a
/// mode whose full syncs delete nothing, they stay: README "How a sync
/// works").
const MAX_DIRS: usize = 10_000;

/// How a run ended, for its leftovers.
#[derive(Debug, Clone, Copy)]
struct Ended {
    /// It completed.
    arrived: bool,
    /// A full sync that deleted, with its deletions done: every leftover is
    /// gone.
    swept_all: bool,
}

/// The directories of one pair to sweep.
#[derive(Debug, Default)]
pub struct Leftovers {
    dirs: BTreeSet<Vec<u8>>,
}

impl Leftovers {
    /// Whether there are more than a sweep lists: a full sync is due instead.
    pub fn too_many(&self) -> bool {
        self.dirs.len() > MAX_DIRS
    }

    /// Whether nothing is to be swept.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// Takes the directories to sweep, for the next run.
    pub fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.dirs).into_iter().collect()
    }

    /// Directories where a run of an earlier daemon may have left rsync's
    /// files (the changes it had not synced), swept after the next run; at
    /// most [`MAX_DIRS`] in all (one sweep's rules grow with them, and
    /// more would make the next run a full sync, which in a mode that
    /// deletes nothing removes none of them). Whether every one was kept.
    pub fn add(&mut self, dirs: impl IntoIterator<Item = Vec<u8>>) -> bool {
        for dir in dirs {
            if self.dirs.len() >= MAX_DIRS && !self.dirs.contains(&dir) {
                return false;
            }
            self.dirs.insert(dir);
        }
        true
    }

    /// A run of `batch` ended with `outcome`.
    pub fn after_run(&mut self, batch: &Batch, outcome: &Outcome) {
        self.after(
            batch.full,
            &batch.paths,
            &batch.sweep,
            &outcome.unswept,
            &outcome.kept_partial,
            Ended {
                arrived: outcome.result.arrived(),
                swept_all: outcome.swept_all,
            },
        );
    }

    /// A run ended. `arrived`: it completed (what it swept is gone, what it
    /// did not sweep, `unswept`, stays; a full sync that deleted removed
    /// everything, `swept_all`); otherwise the directories it was to
    /// sweep stay and those of the paths it listed are added (for a batch of
    /// paths: a full sync that did not arrive is done again). Either way the
    /// directories of the files whose part rsync kept (`kept`) are added: such
    /// a file may not be sent again.
    fn after(
        &mut self,
        full: bool,
        listed: &[Vec<u8>],
        sweep: &[Vec<u8>],
        unswept: &[Vec<u8>],
        kept: &[Vec<u8>],
        ended: Ended,
    ) {
        if ended.arrived {
            if ended.swept_all {
                self.dirs.clear();
            }
            self.dirs.extend(unswept.iter().cloned());
        } else {
            self.dirs.extend(sweep.iter().cloned());
            if !full {
                self.dirs.extend(crate::rsync::leftover_dirs(listed));
            }
        }
        self.dirs.extend(crate::rsync::leftover_dirs(kept));
    }

    /// `from` was renamed to `to` in the source (and so on the target):
    /// directories at or below it follow.
    pub fn reroot(&mut self, from: &[u8], to: &[u8]) {
        let below = |d: &Vec<u8>| {
            d.as_slice() == from
                || (d.len() > from.len() && d.starts_with(from) && d[from.len()] == b'/')
        };
        let moved: Vec<Vec<u8>> = self.dirs.iter().filter(|d| below(d)).cloned().collect();
        for dir in moved {
            self.dirs.remove(&dir);
            self.dirs.insert([to, &dir[from.len()..]].concat());
        }
    }

    /// Forgets everything (a full sync is due, which removes it all).
    pub fn clear(&mut self) {
        self.dirs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED: Ended = Ended {
        arrived: false,
        swept_all: false,
    };
    const ARRIVED: Ended = Ended {
        arrived: true,
        swept_all: false,
    };
    const DELETED_ALL: Ended = Ended {
        arrived: true,
        swept_all: true,
    };

    fn dirs(l: &Leftovers) -> Vec<String> {
        l.dirs
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect()
    }

    #[test]
    fn a_batch_that_did_not_arrive_leaves_its_directories_to_sweep() {
        let mut l = Leftovers::default();
        let listed = [b"a/b/f".to_vec(), b"top".to_vec()];
        l.after(false, &listed, &[], &[], &[], FAILED);
        assert_eq!(dirs(&l), ["", "a/b"]);
        let sweep = l.take();
        assert!(l.is_empty());
        // The next run failed too: what it was to sweep comes back.
        l.after(false, &[b"c/g".to_vec()], &sweep, &[], &[], FAILED);
        assert_eq!(dirs(&l), ["", "a/b", "c"]);
        let sweep = l.take();
        // It arrived, but one directory could not be swept.
        let unswept = [b"c".to_vec()];
        l.after(false, &[b"c/g".to_vec()], &sweep, &unswept, &[], ARRIVED);
        assert_eq!(dirs(&l), ["c"]);
        // A full sync that arrived removes everything, except the part of a
        // file it kept itself.
        l.after(true, &[], &[], &[], &[b"d/e/f".to_vec()], DELETED_ALL);
        assert_eq!(dirs(&l), ["d/e"]);
    }

    #[test]
    fn directories_added_from_an_earlier_daemon_are_bounded() {
        let mut l = Leftovers::default();
        assert!(l.add((0..MAX_DIRS).map(|n| format!("d{n}").into_bytes())));
        assert!(l.add([b"d0".to_vec()]), "one already kept costs nothing");
        assert!(!l.add([b"one more".to_vec()]));
        assert!(!l.too_many(), "no full sync for them: it would remove none");
    }

    #[test]
    fn a_full_sync_that_deletes_nothing_keeps_what_it_did_not_sweep() {
        let mut l = Leftovers::default();
        l.add([b"a".to_vec()]);
        let sweep = l.take();
        l.after(true, &[], &sweep, &sweep, &[], ARRIVED);
        assert_eq!(
            dirs(&l),
            ["a"],
            "a full sync without --delete removed nothing"
        );
        let sweep = l.take();
        l.after(true, &[], &sweep, &[], &[], ARRIVED);
        assert_eq!(dirs(&l), Vec::<String>::new(), "swept beside it");
    }

    #[test]
    fn directories_follow_a_rename() {
        let mut l = Leftovers::default();
        let listed = [b"a/b/f".to_vec(), b"ab/f".to_vec()];
        l.after(false, &listed, &[], &[], &[], FAILED);
        l.reroot(b"a", b"z/a");
        assert_eq!(dirs(&l), ["ab", "z/a/b"]);
    }
}
