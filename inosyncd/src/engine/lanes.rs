//! Two lanes for rsync processes. `max_parallel` caps every process at once;
//! `max_parallel_large` caps the large transfers among them: full syncs, trees
//! compared whole, and batches of many paths or many bytes. What the cap
//! protects is the bandwidth and CPU that long transfers hold, so a one-file
//! change to sixteen targets starts sixteen short rsyncs side by side instead of
//! waiting in rounds behind it (README "Config (TOML)", `max_parallel_large`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::time::Duration;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use tokio::time::Instant;

use super::Engine;
use crate::rsync::SPLIT_MIN_PATHS;

/// A batch sending more file data than this is large: it may hold a link for a
/// while. 8 MiB takes under a second on a 100 Mbit/s link.
pub(super) const SMALL_MAX_BYTES: u64 = 8 << 20;

/// A large run that has moved no data this long (a target that accepts the
/// connection and never answers, waiting out `io_timeout`) gives its large
/// slot to the next transfer; it keeps running, and counts in `max_parallel`.
pub(super) const STALLED_AFTER: Duration = Duration::from_secs(20);

/// The large runs holding a large slot: watch, when each started, its
/// processes; by pair.
#[derive(Debug, Default)]
pub(super) struct LargeRuns(BTreeMap<u64, (u32, Instant, usize)>);

impl LargeRuns {
    /// A large run of pair `pair` (of watch `watch`) started.
    pub(super) fn started(&mut self, watch: u32, pair: u64, processes: usize, now: Instant) {
        self.0.insert(pair, (watch, now, processes));
    }

    /// The run of `pair` ended; whether it still held its large slot.
    pub(super) fn ended(&mut self, pair: u64) -> bool {
        self.0.remove(&pair).is_some()
    }

    /// When the next one may be found stalled.
    pub(super) fn next_check(&self) -> Option<Instant> {
        self.0
            .values()
            .map(|(_, started, _)| *started + STALLED_AFTER)
            .min()
    }
}

/// Which cap a batch counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    /// A few paths and little data: counts against `max_parallel` only.
    Small,
    /// Counts against `max_parallel_large` too.
    Large,
}

/// Whether listed paths under `root` are small together: fewer than a split's
/// worth, and at most [`SMALL_MAX_BYTES`] of regular files as they are now (a
/// path that cannot be looked at counts as nothing: it is gone, or rsync will
/// say why). Symlinks are not followed.
pub(super) fn is_small<'a>(
    root: &Path,
    count: usize,
    paths: impl Iterator<Item = &'a [u8]>,
) -> bool {
    if count >= SPLIT_MIN_PATHS {
        return false;
    }
    let mut bytes = 0u64;
    for rel in paths {
        if let Ok(meta) = std::fs::symlink_metadata(root.join(OsStr::from_bytes(rel)))
            && meta.is_file()
        {
            bytes = bytes.saturating_add(meta.len());
            if bytes > SMALL_MAX_BYTES {
                return false;
            }
        }
    }
    true
}

impl Engine {
    /// The lane the pending batch of pair `i` of watch `id` would take.
    pub(super) fn lane_of(&self, id: u32, i: usize) -> Lane {
        let Some(watch) = self.watches.get(&id) else {
            return Lane::Large;
        };
        let listed = watch.pairs.get(i).and_then(|pair| pair.listed_pending());
        if listed.is_some_and(|(count, paths)| is_small(&watch.spec.path, count, paths)) {
            Lane::Small
        } else {
            Lane::Large
        }
    }

    /// Large runs that moved no data for [`STALLED_AFTER`] give up their large
    /// slot (logged once each).
    pub(super) fn release_stalled_large_runs(&mut self) {
        let now = Instant::now();
        let due: Vec<(u64, u32, usize)> = self
            .large_runs
            .0
            .iter()
            .filter(|(_, (_, started, _))| now >= *started + STALLED_AFTER)
            .map(|(pair, (watch, _, processes))| (*pair, *watch, *processes))
            .collect();
        for (pair_id, watch_id, processes) in due {
            let Some(watch) = self.watches.get(&watch_id) else {
                continue;
            };
            let Some(pair) = watch.pairs.iter().find(|p| p.id() == pair_id) else {
                continue;
            };
            if pair.progress(now).is_some_and(|p| p.bytes_done > 0) {
                // Moving data: it keeps its slot (looked at again later).
                self.large_runs.started(watch_id, pair_id, processes, now);
                continue;
            }
            tracing::info!(
                "{} -> {}: no data moved for {STALLED_AFTER:?}; its large-transfer slot goes to \
                 the next one (it keeps running, up to io_timeout)",
                watch.spec.path.display(),
                pair.destination()
            );
            self.large_runs.ended(pair_id);
            self.running_large = self.running_large.saturating_sub(processes);
        }
    }

    /// At most `max_parallel_large` of the processes are large ones, and never
    /// more than `max_parallel` in all.
    pub(super) fn large_cap(&self) -> usize {
        self.config.max_parallel_large.min(self.config.max_parallel) as usize
    }

    /// Whether a batch in `lane` may start now.
    pub(super) fn has_room(&self, lane: Lane) -> bool {
        self.running < self.config.max_parallel as usize
            && (lane == Lane::Small || self.running_large < self.large_cap())
    }

    /// Free slots for the processes of a large batch (split when it is big).
    pub(super) fn large_slots_free(&self) -> usize {
        self.large_cap()
            .saturating_sub(self.running_large)
            .min((self.config.max_parallel as usize).saturating_sub(self.running))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_means_few_paths_and_few_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("small"), vec![0u8; 1000]).expect("write");
        let big = std::fs::File::create(dir.path().join("big")).expect("create");
        big.set_len(SMALL_MAX_BYTES + 1).expect("sparse file");
        let one = |p: &'static [u8]| std::iter::once(p);
        assert!(is_small(dir.path(), 1, one(b"small")));
        assert!(is_small(dir.path(), 1, one(b"gone")));
        assert!(!is_small(dir.path(), 1, one(b"big")));
        assert!(!is_small(dir.path(), SPLIT_MIN_PATHS, one(b"small")));
    }

    #[test]
    fn a_symlink_to_a_big_file_is_small() {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = std::fs::File::create(dir.path().join("big")).expect("create");
        big.set_len(SMALL_MAX_BYTES + 1).expect("sparse file");
        std::os::unix::fs::symlink("big", dir.path().join("link")).expect("symlink");
        assert!(is_small(dir.path(), 1, std::iter::once(&b"link"[..])));
    }
}
