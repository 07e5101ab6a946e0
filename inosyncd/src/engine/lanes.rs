//! Two lanes for rsync processes. `max_parallel` caps every process at once;
//! `max_parallel_large` caps the large transfers among them: full syncs, trees
//! compared whole, and batches of very many paths or many bytes. What the cap
//! protects is the bandwidth and CPU that long transfers hold, so a one-file
//! change to sixteen targets starts sixteen short rsyncs side by side instead of
//! waiting in rounds behind it (README "Config (TOML)", `max_parallel_large`).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::sync::OnceLock;
use std::time::Duration;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use tokio::time::Instant;

use super::Engine;
use super::pair::Cpus;

/// A batch sending more file data than this is large: it may hold a link for a
/// while. 8 MiB takes under a second on a 100 Mbit/s link.
pub(super) const SMALL_MAX_BYTES: u64 = 8 << 20;

/// A small batch of at most this many bytes is brief (see [`is_brief`]).
pub(super) const BRIEF_MAX_BYTES: u64 = 1 << 20;

/// A batch listing this many paths is large whatever their bytes: the target
/// host's work on that many entries lasts seconds. A burst of a few thousand
/// small files is not large: a few hundred milliseconds of CPU, little data
/// (to sixteen targets it goes out side by side, not four at a time).
pub(super) const LARGE_MIN_PATHS: usize = 10_000;

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

/// The lane a batch takes, with the bytes of a small one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Weight {
    /// Which cap it counts against.
    pub(super) lane: Lane,
    /// Its listed bytes, when it is small (see [`is_brief`]).
    pub(super) small_bytes: Option<u64>,
}

/// Which cap a batch counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    /// A few paths and little data: counts against `max_parallel` only.
    Small,
    /// Counts against `max_parallel_large` too.
    Large,
}

/// The bytes of listed paths that are small together: fewer than
/// [`LARGE_MIN_PATHS`], and at most [`SMALL_MAX_BYTES`] of regular files as
/// they are now (`size_of`: [`file_size`]; a path that cannot be looked at
/// counts as nothing: it is gone, or rsync will say why), or `None`. Symlinks
/// are not followed.
fn small_bytes_by<'a>(
    count: usize,
    paths: impl Iterator<Item = &'a [u8]>,
    mut size_of: impl FnMut(&[u8]) -> u64,
) -> Option<u64> {
    if count >= LARGE_MIN_PATHS {
        return None;
    }
    let mut bytes = 0u64;
    for rel in paths {
        bytes = bytes.saturating_add(size_of(rel));
        if bytes > SMALL_MAX_BYTES {
            return None;
        }
    }
    Some(bytes)
}

/// Whether a small batch of `bytes` (at `speed` KB/s, 0: unlimited) is brief:
/// over within about a second, so rsync is asked for neither progress
/// (`status` shows it after a second) nor a partial directory (at most
/// [`BRIEF_MAX_BYTES`] would be sent again after a stop). Each costs a line
/// or an `lstat` per file: together about a tenth of a burst of small files
/// (README "Performance").
pub(super) fn is_brief(bytes: u64, speed: u32) -> bool {
    bytes <= BRIEF_MAX_BYTES && (speed == 0 || bytes <= u64::from(speed) * 1024)
}

/// The size of a regular file of the tree now (anything else: 0).
fn file_size(root: &Path, rel: &[u8]) -> u64 {
    std::fs::symlink_metadata(root.join(OsStr::from_bytes(rel)))
        .ok()
        .filter(|meta| meta.is_file())
        .map_or(0, |meta| meta.len())
}

/// The sizes looked at while choosing the lanes of the batches due in one
/// pass: the targets of one watch usually wait with the same paths, and each
/// file is looked at once, not once per target. The last batch weighed is
/// kept too: the next target's, when it lists the very same paths (a
/// fan-out's usual case), weighs the same without a look-up per path.
#[derive(Debug, Default)]
pub(super) struct Sizes {
    known: HashMap<u32, HashMap<Vec<u8>, u64>>,
    last: Option<(u32, Vec<Vec<u8>>, Option<u64>)>,
}

/// The CPUs this daemon may use (read once).
pub(super) fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl Engine {
    /// The lane the pending batch of pair `i` of watch `id` would take (the
    /// sizes of its files kept in `sizes` for the other targets).
    pub(super) fn weigh(&self, id: u32, i: usize, sizes: &mut Sizes) -> Weight {
        let large = Weight {
            lane: Lane::Large,
            small_bytes: None,
        };
        let Some(watch) = self.watches.get(&id) else {
            return large;
        };
        let root = &watch.spec.path;
        let listed = watch.pairs.get(i).and_then(|pair| pair.listed_pending());
        let small_bytes = listed.and_then(|(count, paths)| {
            if let Some((watch, last, bytes)) = &sizes.last
                && *watch == id
                && last.len() == count
                && paths.clone().eq(last.iter().map(Vec::as_slice))
            {
                return *bytes;
            }
            let known = sizes.known.entry(id).or_default();
            let bytes = small_bytes_by(count, paths.clone(), |rel| match known.get(rel) {
                Some(size) => *size,
                None => *known
                    .entry(rel.to_vec())
                    .or_insert_with(|| file_size(root, rel)),
            });
            if count < LARGE_MIN_PATHS {
                sizes.last = Some((id, paths.map(<[u8]>::to_vec).collect(), bytes));
            }
            bytes
        });
        match small_bytes {
            Some(_) => Weight {
                lane: Lane::Small,
                small_bytes,
            },
            None => large,
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

    /// Whether the rsync processes running keep every CPU busy: a burst's next
    /// batch then waits for the writes to pause (see `Pair::burst_due`).
    pub(super) fn cpus(&self) -> Cpus {
        if self.running >= cpus() {
            Cpus::Busy
        } else {
            Cpus::Free
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

    /// How many rsync processes a batch of `lane` starting now may be split
    /// into (when it lists enough paths): its lane's free slots shared with
    /// the `due` batches still to start in this pass (itself included),
    /// at most two processes per CPU among them and those already running (a
    /// split puts idle CPUs to work for one target; with many targets due or
    /// running, every CPU has work already, and each extra process is only
    /// more work), and at most `max_parallel_large`.
    pub(super) fn split_share(&self, lane: Lane, due: usize) -> usize {
        let free = match lane {
            Lane::Large => self.large_slots_free(),
            Lane::Small => (self.config.max_parallel as usize).saturating_sub(self.running),
        };
        let due = due.max(1);
        let idle = (2 * cpus()).saturating_sub(self.running);
        (free / due)
            .min((idle / due).max(1))
            .min(self.large_cap())
            .max(1)
    }

    /// How many processes a full sync into an empty target may be cut into
    /// (`rsync/into_empty.rs`): its `share`, at most one per CPU (each keeps
    /// about one busy: four on 2 CPUs copy no faster than two), and never the
    /// last free slot (a first sync of a large tree may take hours, and the
    /// small changes of other watches keep a slot meanwhile).
    pub(super) fn full_sync_share(&self, share: usize) -> usize {
        let spare = (self.config.max_parallel as usize).saturating_sub(self.running + 1);
        share.min(cpus()).min(spare).max(1)
    }

    /// Free slots for the processes of a large batch.
    pub(super) fn large_slots_free(&self) -> usize {
        self.large_cap()
            .saturating_sub(self.running_large)
            .min((self.config.max_parallel as usize).saturating_sub(self.running))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_small<'a>(root: &Path, count: usize, paths: impl Iterator<Item = &'a [u8]>) -> bool {
        small_bytes_by(count, paths, |rel| file_size(root, rel)).is_some()
    }

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
        assert!(!is_small(dir.path(), LARGE_MIN_PATHS, one(b"small")));
    }

    #[test]
    fn brief_means_a_megabyte_at_most_and_a_second_at_the_speed_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("a"), vec![0u8; 1000]).expect("write");
        std::fs::write(dir.path().join("b"), vec![0u8; 24]).expect("write");
        let paths = [&b"a"[..], b"b", b"gone"];
        let bytes = small_bytes_by(3, paths.into_iter(), |rel| file_size(dir.path(), rel));
        assert_eq!(bytes, Some(1024));
        assert!(is_brief(1024, 0));
        assert!(is_brief(1024, 1), "1 KB/s sends 1024 bytes in a second");
        assert!(is_brief(BRIEF_MAX_BYTES, 0));
        assert!(!is_brief(BRIEF_MAX_BYTES + 1, 0));
        assert!(!is_brief(512 << 10, 100), "five seconds at 100 KB/s");
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
