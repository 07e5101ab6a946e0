//! The watch registry: which trees are watched, with which targets and settings;
//! opening, finding and dropping watches; the overlap checks; and where the speed
//! and delay in force for each come from.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use inosync_proto::Source;
use tokio::time::Instant;

use super::batch::FullReason;
use super::pair::Pair;
use super::source::{self, RootId};
use super::{Engine, Refusal, Reply};
use crate::config::layout::Layout;
use crate::config::{WatchConfig, destination};
use crate::exclude::ExcludeSet;

/// A watched tree and its targets.
pub(super) struct Watch {
    /// What the config or `inosyncctl add` asked for.
    pub(super) spec: WatchConfig,
    /// `Config` or `Runtime`.
    pub(super) origin: Source,
    pub(super) excludes: ExcludeSet,
    pub(super) pairs: Vec<Pair>,
    pub(super) paused: bool,
    pub(super) speed_override: Option<u32>,
    pub(super) delay_override: Option<f64>,
    /// Being removed: no longer watched, pending changes being synced; the waiting
    /// `remove` calls are answered when that is done.
    pub(super) removing: Option<Vec<(Instant, Reply<bool>)>>,
    /// The directory being watched, while one is.
    pub(super) root: Option<RootId>,
    /// The filesystem the root must be on (recorded when the watch first started).
    pub(super) fsid: u64,
    /// When the root must be a mount point (as it was when the watch was
    /// opened, or when `sync --force` accepted it): the inode of the
    /// directory mounted there.
    pub(super) mount_point: Option<u64>,
    /// Where the root must lie on its filesystem (`source::Places::place`), when the
    /// mount table could say: a bind mount from the same filesystem above the
    /// root or on it, unmounted or replaced, leads the path to another
    /// directory with the same filesystem id.
    pub(super) place: Option<String>,
    /// The block device the root must be on, in this boot (`source::device`):
    /// a copy of its disk has its filesystem id, directories and places.
    pub(super) device: Option<u64>,
    /// Why the root cannot be synced from, while it cannot (see `source.rs`).
    pub(super) missing: Option<String>,
}

impl Watch {
    /// Held by `pause`; a watch being removed syncs its last changes even then.
    pub(super) fn holds_syncs(&self) -> bool {
        self.paused && self.removing.is_none()
    }

    /// No batch pending or running for any of its targets.
    pub(super) fn is_idle(&self) -> bool {
        self.pairs
            .iter()
            .all(|p| !p.has_pending() && !p.is_running())
    }

    /// Why this watch cannot sync: its root is missing, or a target holds back an
    /// empty source.
    pub(super) fn source_problem(&self) -> Option<Refusal> {
        let path = self.spec.path.display().to_string();
        if let Some(why) = &self.missing {
            return Some(Refusal::SourceMissing {
                path,
                why: why.clone(),
            });
        }
        self.pairs
            .iter()
            .find(|p| p.is_held_empty())
            .map(|p| Refusal::EmptySource {
                path,
                destination: p.destination().to_string(),
            })
    }
}

impl Engine {
    /// After a reload, `add` or `remove`: a local target that now leads
    /// elsewhere than where it was first written to (a symlink re-pointed to
    /// a rotated-in disk) is taken as meant, and its pairs get a full sync,
    /// at once: the new place holds none of the mirror, or an old one (found
    /// by a black-box attack: only the pending paths went there, and `wait`
    /// said idle).
    pub(super) fn retarget_local_targets(&mut self) {
        let now = tokio::time::Instant::now();
        for watch in self.watches.values_mut() {
            for pair in &mut watch.pairs {
                let destination = pair.destination().to_string();
                if !crate::config::checks::is_local_target(&destination) {
                    continue;
                }
                let resolved =
                    crate::config::places::resolve_local(std::path::Path::new(&destination));
                if self.policy.retarget(&destination, &resolved) {
                    tracing::info!(
                        "{destination}: now leads to {}, taken as meant: full sync",
                        resolved.display()
                    );
                    pair.record_full(now, true, super::batch::FullReason::Reload);
                    pair.hurry(now);
                }
            }
        }
    }

    /// Writes the runtime state; a failure is logged, the change stays in force.
    pub(super) fn persist(&mut self) {
        self.runtime.tidy();
        let Some(file) = &self.state_file else {
            return;
        };
        match file.save(&self.runtime) {
            Ok(()) => self.state_file_error = None,
            Err(e) => {
                let why = format!("cannot write state file {}: {e}", file.path().display());
                tracing::error!(
                    "{why}; runtime changes, and which watches still have changes to sync, \
                     will not survive a restart"
                );
                self.state_file_error = Some(why);
            }
        }
    }

    /// Watches a tree and creates its pairs; `full_sync` schedules an immediate
    /// full sync to every target. Runtime overrides of this path are applied. The
    /// caller writes the state file (a new root's filesystem is recorded).
    pub(super) fn open_watch(
        &mut self,
        spec: WatchConfig,
        origin: Source,
        full_sync: bool,
    ) -> Result<u32, Refusal> {
        let excludes = self.excludes_for(&spec)?;
        let id = self.next_watch_id;
        let started = Instant::now();
        let key = spec.path.display().to_string();
        let root = source::identify(&spec.path).map_err(Refusal::Source)?;
        // A root on another filesystem than the one recorded is most likely a disk
        // that failed to mount: never synced from until it is back.
        let recorded = self.runtime.sources.get(&key).copied();
        let was_mount_point = self.runtime.mount_points.get(&key).copied();
        let was_place = self.runtime.places.get(&key).cloned();
        let place = self.places.place(&spec.path);
        let was_device = self.runtime.devices.get(&key).copied();
        // The same directory as the recorded mount point's, wherever its
        // place now (the directory a root is bind-mounted from, renamed).
        let same_dir = was_mount_point == Some(root.ino());
        let missing = if recorded.is_some_and(|fsid| fsid != root.fsid) {
            Some(format!(
                "{} is on another filesystem than the one recorded at an earlier start (not mounted?)",
                spec.path.display()
            ))
        } else if was_mount_point.is_some_and(|ino| ino != root.ino()) && !root.mount_point {
            // A bind mount from the same filesystem that is not there: the
            // directory under it has the recorded filesystem id.
            Some(format!(
                "{} was a mount point at an earlier start and is not now (not mounted?)",
                spec.path.display()
            ))
        } else if let Some(why) = source::other_device(&spec.path, was_device, root.dev()) {
            Some(format!("{why}, since an earlier start"))
        } else if same_dir {
            None
        } else {
            // A bind mount above it or on it that is not there (or another).
            source::moved(&spec.path, was_place.as_deref(), place.as_deref())
                .map(|why| format!("{why} since an earlier start"))
        };
        if missing.is_none() {
            self.watcher
                .add_root(id, &spec.path, excludes.clone())
                .map_err(|error| Refusal::CannotWatch {
                    path: spec.path.clone(),
                    error,
                })?;
            // Written to the state file by the caller, once for all the watches
            // it opens (once per watch made a start with n watches write n
            // files of n entries).
            if recorded.is_none() {
                self.runtime.sources.insert(key.clone(), root.fsid);
            }
            if root.mount_point {
                self.runtime.mount_points.insert(key.clone(), root.ino());
            }
            if let Some(place) = &place {
                self.runtime.places.insert(key.clone(), place.clone());
            }
            if let Some(device) = source::device(root.dev()) {
                self.runtime.devices.insert(key.clone(), device);
            }
        }
        self.next_watch_id += 1;
        let full_sync = full_sync && missing.is_none();
        let mut pairs = self.pairs_for(&spec);
        if full_sync {
            for pair in &mut pairs {
                pair.record_full(started, true, FullReason::Initial);
            }
        }
        let overrides = self.runtime.watch.get(&key).cloned().unwrap_or_default();
        self.roots.take();
        let path = spec.path.clone();
        self.watches.insert(
            id,
            Watch {
                spec,
                origin,
                excludes,
                pairs,
                paused: overrides.paused,
                speed_override: overrides.speed,
                delay_override: overrides.delay,
                removing: None,
                root: missing.is_none().then_some(root),
                fsid: recorded.unwrap_or(root.fsid),
                // What covers a root that is missing (another filesystem,
                // a bind mount of another directory) is not its own: its
                // unmount is the root back (before, it read "was a mount
                // point and is not now" for good; a black-box attack).
                mount_point: if missing.is_some() {
                    was_mount_point
                } else if root.mount_point {
                    Some(root.ino())
                } else {
                    was_mount_point.filter(|ino| *ino != root.ino())
                },
                place: if missing.is_some() {
                    was_place
                } else {
                    place.or(was_place)
                },
                device: if missing.is_some() {
                    was_device
                } else {
                    source::device(root.dev()).or(was_device)
                },
                missing: None,
            },
        );
        if let Some(why) = missing {
            self.mark_missing(id, why);
            return Ok(id);
        }
        // The initial full sync starts now and walks the tree while we set up the
        // watches beside it; the scan tells whether anything changed meanwhile
        // (with a margin for file-system clocks that tick coarsely, 1–10 ms).
        let changed_since = full_sync.then(|| {
            let since = std::time::SystemTime::now() - Duration::from_millis(50);
            self.start_due_batches();
            since
        });
        let changed = self.watcher.scan_root(id, changed_since);
        // fanotify needs no watch per directory: "0 directories" would read
        // as an empty or unwatched tree.
        if self
            .watcher
            .backend(id)
            .is_some_and(|b| b.name == "fanotify")
        {
            tracing::info!(
                "watching {} (every directory, by one fanotify mark; set up in {:.2?})",
                path.display(),
                started.elapsed()
            );
        } else {
            tracing::info!(
                "watching {} ({} directories in {:.2?})",
                path.display(),
                self.watcher.watched_dirs(id),
                started.elapsed()
            );
        }
        if changed && let Some(watch) = self.watches.get_mut(&id) {
            tracing::info!(
                "{}: changed while its initial sync was starting; another full sync follows",
                path.display()
            );
            let now = Instant::now();
            for pair in &mut watch.pairs {
                pair.record_full(now, true, FullReason::Initial);
            }
        }
        Ok(id)
    }

    /// Opens the watches added at runtime (kept in the state file), each checked
    /// against one layout of every watch so far (linear in their number); one
    /// that no longer fits or whose root is gone is logged and skipped.
    pub(super) fn restore_runtime_watches(&mut self, initial: bool) {
        let mut layout = self.layout();
        for added in self.runtime.added.clone() {
            let restored = super::commands::spec_from_added(&added).and_then(|spec| {
                let places = self.config.places(&spec);
                layout.check(&places).map_err(Refusal::Layout)?;
                let id = self.open_watch(spec, Source::Runtime, initial)?;
                layout.insert(id as usize, &places);
                Ok(())
            });
            if let Err(e) = restored {
                tracing::error!(
                    "watch {} added at runtime cannot be restored: {e}",
                    added.path
                );
            }
        }
    }

    /// Removals that waited for their changes when the daemon stopped: each
    /// watch gets a full sync (what was pending is no longer known) and goes
    /// when it is done, as `remove` would have done.
    pub(super) fn resume_removals(&mut self) {
        let now = Instant::now();
        for path in self.runtime.removing.clone() {
            let Ok(id) = self.find_watch(&path) else {
                self.runtime.removing.retain(|p| *p != path);
                self.persist();
                continue;
            };
            if let Some(watch) = self.watches.get_mut(&id) {
                for pair in &mut watch.pairs {
                    pair.record_full(now, true, FullReason::Initial);
                }
            }
            tracing::info!("{path}: its removal waited for pending changes; finishing it");
            self.begin_removal(id, false, None);
        }
    }

    pub(super) fn excludes_for(&self, spec: &WatchConfig) -> Result<ExcludeSet, Refusal> {
        let mut patterns = self.config.excludes.clone();
        patterns.extend(spec.excludes.iter().cloned());
        ExcludeSet::new(&patterns).map_err(Refusal::Excludes)
    }

    pub(super) fn pairs_for(&mut self, spec: &WatchConfig) -> Vec<Pair> {
        spec.effective_targets(&self.config)
            .to_vec()
            .into_iter()
            .map(|target| {
                let destination = destination(&target, &spec.remote_path);
                self.new_pair(target, destination)
            })
            .collect()
    }

    pub(super) fn new_pair(&mut self, target: String, destination: String) -> Pair {
        self.next_pair_id += 1;
        Pair::new(self.next_pair_id, target, destination)
    }

    /// Every watched tree, for the layout check before each child starts.
    pub(super) fn roots(&self) -> Arc<[PathBuf]> {
        self.roots
            .borrow_mut()
            .get_or_insert_with(|| self.watches.values().map(|w| w.spec.path.clone()).collect())
            .clone()
    }

    /// The places of every watch now (sources and destinations, resolved once),
    /// under the current config: what a new watch is checked against.
    pub(super) fn layout(&self) -> Layout {
        let mut layout = Layout::default();
        for (id, watch) in &self.watches {
            layout.insert(*id as usize, &self.config.places(&watch.spec));
        }
        layout
    }

    /// A new watch must not contain, or lie inside, an existing one, and none of
    /// its destinations may overlap a watched tree or another destination.
    pub(super) fn check_free(&self, spec: &WatchConfig) -> Result<(), Refusal> {
        self.layout()
            .check(&self.config.places(spec))
            .map_err(Refusal::Layout)
    }

    /// The watch of a directory given by an administrator (symlinks resolved when
    /// the path exists).
    pub(super) fn find_watch(&self, path: &str) -> Result<u32, Refusal> {
        let given = PathBuf::from(path);
        let resolved = given.canonicalize().unwrap_or_else(|_| given.clone());
        self.watches
            .iter()
            .find(|(_, w)| w.spec.path == resolved || w.spec.path == given)
            .map(|(id, _)| *id)
            .ok_or_else(|| Refusal::NotWatched(path.to_string()))
    }

    /// The global bandwidth limit and where it comes from.
    pub(super) fn global_speed(&self) -> (u32, Source) {
        match self.runtime.speed {
            Some(speed) => (speed, Source::Runtime),
            None => (self.config.speed, self.config_source()),
        }
    }

    /// The global delay and where it comes from.
    pub(super) fn global_delay(&self) -> (f64, Source) {
        match (self.runtime.delay, self.cli_delay) {
            (Some(delay), _) => (delay, Source::Runtime),
            (None, Some(delay)) => (delay, Source::CommandLine),
            (None, None) => (self.config.delay, self.config_source()),
        }
    }

    pub(super) fn config_source(&self) -> Source {
        if self.config.source.is_some() {
            Source::Config
        } else {
            Source::Default
        }
    }

    pub(super) fn watch_speed(&self, watch: &Watch) -> (u32, Source) {
        match (watch.speed_override, watch.spec.speed) {
            (Some(speed), _) => (speed, Source::Runtime),
            (None, Some(speed)) => (speed, watch.origin),
            (None, None) => (self.global_speed().0, Source::Global),
        }
    }

    pub(super) fn watch_delay(&self, watch: &Watch) -> (f64, Source) {
        match (watch.delay_override, watch.spec.delay) {
            (Some(delay), _) => (delay, Source::Runtime),
            (None, Some(delay)) => (delay, watch.origin),
            (None, None) => (self.global_delay().0, Source::Global),
        }
    }

    /// Drops a watch for good, records that in the state file, and answers the
    /// `remove` calls waiting for it.
    pub(super) fn drop_watch(&mut self, id: u32, why: &str) {
        if let Some(watch) = self.watches.remove(&id) {
            self.settling.forget(id);
            tracing::info!("{}: {why}", watch.spec.path.display());
            self.roots.take();
            self.forget(&watch);
            for (_, reply) in watch.removing.into_iter().flatten() {
                let _ = reply.send(Ok(true));
            }
        }
    }

    /// Records in the state file that a watch is gone.
    pub(super) fn forget(&mut self, watch: &Watch) {
        let path = watch.spec.path.display().to_string();
        match watch.origin {
            Source::Runtime => self.runtime.added.retain(|a| a.path != path),
            _ => {
                if !self.runtime.removed.contains(&path)
                    && self.config.watches.iter().any(|w| w.spec_path_is(&path))
                {
                    self.runtime.removed.push(path.clone());
                }
            }
        }
        self.runtime.watch.remove(&path);
        self.runtime.removing.retain(|p| *p != path);
        self.persist();
    }
}

impl WatchConfig {
    /// Whether this config watch is the directory `path` (as shown in status).
    fn spec_path_is(&self, path: &str) -> bool {
        self.path.display().to_string() == path
    }
}
