//! The one task that owns the daemon's state: the watcher, every watch with its
//! (watch, target) pairs, the rsync slots and the runtime settings. Everything else
//! talks to it through [`Command`]s carrying their reply channel, so no state is
//! shared behind a lock and every decision is made in one place.

mod commands;
mod reload;
mod source;
mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use inosync_proto::{AddWatch, Setting, Source, Status, WatchStatus};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::sleep_until;

use crate::config::{Config, WatchConfig, destination, layout};
use crate::exclude::ExcludeSet;
use crate::pair::Pair;
use crate::rsync::{self, Job, Outcome};
use crate::state_file::{RuntimeState, StateFile};
use crate::watcher::{Change, Watcher};
use source::RootId;

/// A reply channel; errors are messages for the administrator.
pub type Reply<T> = oneshot::Sender<Result<T, String>>;

/// Requests from the control socket (and signals), each with its answer channel.
pub enum Command {
    /// Report the state of everything.
    Status(oneshot::Sender<Status>),
    /// Answer `true` when nothing is pending or running (in one watch, or anywhere),
    /// `false` at the deadline.
    Wait {
        path: Option<String>,
        deadline: Instant,
        reply: Reply<bool>,
    },
    /// Start watching a tree.
    Add {
        watch: AddWatch,
        reply: Reply<WatchStatus>,
    },
    /// Stop watching a tree, after syncing its pending changes unless `discard`.
    Remove {
        path: String,
        discard: bool,
        deadline: Instant,
        reply: Reply<bool>,
    },
    /// Show or set the bandwidth limit.
    Speed {
        kbps: Option<u32>,
        path: Option<String>,
        reply: Reply<Setting>,
    },
    /// Show or set the event delay.
    Delay {
        seconds: Option<f64>,
        path: Option<String>,
        reply: Reply<Setting>,
    },
    /// Full sync now; `force` accepts the source as it is (empty, another
    /// filesystem).
    Sync {
        path: Option<String>,
        force: bool,
        reply: Reply<()>,
    },
    /// Hold (`paused`) or release syncs.
    Pause {
        path: Option<String>,
        paused: bool,
        reply: Reply<()>,
    },
    /// Re-read the config file (`None`: from SIGHUP, nobody to answer).
    Reload { reply: Option<Reply<String>> },
}

/// A watched tree and its targets.
struct Watch {
    /// What the config or `inosyncctl add` asked for.
    spec: WatchConfig,
    /// `Config` or `Runtime`.
    origin: Source,
    excludes: ExcludeSet,
    pairs: Vec<Pair>,
    paused: bool,
    speed_override: Option<u32>,
    delay_override: Option<f64>,
    /// Being removed: no longer watched, pending changes being synced; the waiting
    /// `remove` calls are answered when that is done.
    removing: Option<Vec<(Instant, Reply<bool>)>>,
    /// The directory being watched, while one is.
    root: Option<RootId>,
    /// The filesystem the root must be on (recorded when the watch first started).
    fsid: u64,
    /// Why the root cannot be synced from, while it cannot (see `source.rs`).
    missing: Option<String>,
}

impl Watch {
    fn is_idle(&self) -> bool {
        self.pairs
            .iter()
            .all(|p| !p.has_pending() && !p.is_running())
    }

    /// Why this watch cannot sync: its root is missing, or a target holds back an
    /// empty source.
    fn source_problem(&self) -> Option<String> {
        let path = self.spec.path.display();
        if let Some(why) = &self.missing {
            return Some(format!("{path}: source missing: {why}"));
        }
        self.pairs.iter().find(|p| p.is_held_empty()).map(|p| {
            format!(
                "{path}: source missing for {}: the source is empty while the target is not",
                p.destination
            )
        })
    }
}

struct Waiter {
    scope: Option<u32>,
    deadline: Instant,
    reply: Reply<bool>,
}

struct Done {
    watch: u32,
    pair: u64,
    outcome: Outcome,
}

/// The daemon's state and its event loop.
pub struct Engine {
    config: Config,
    /// `--delay` from the command line: wins over the config, also after a reload.
    cli_delay: Option<f64>,
    runtime: RuntimeState,
    /// Where runtime changes are kept; `None` in a quick start without `--state`.
    state_file: Option<StateFile>,
    /// Where ssh keeps its shared connections (ControlPath); `None` when no safe
    /// directory could be had (no connection reuse then).
    ssh_dir: Option<PathBuf>,
    pretend: bool,
    watcher: Watcher,
    watches: BTreeMap<u32, Watch>,
    next_watch_id: u32,
    next_pair_id: u64,
    running: usize,
    waiters: Vec<Waiter>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    /// The safety-net full sync (`full_sync_interval`), when enabled: its period and
    /// when it is next due.
    periodic_full_sync: Option<(Duration, Instant)>,
    /// When degraded watches (not every directory watched) get their next full sync.
    degraded_full_sync: Instant,
    /// When every watch root is next looked at.
    next_source_check: Instant,
}

impl Engine {
    /// Sets up the watches of the config and of the state file and schedules the
    /// initial syncs. Watches come first, so nothing changed during the initial
    /// sync is missed. A config watch that cannot be set up stops the start; a
    /// runtime one (the directory may be gone) is reported and skipped.
    pub fn new(
        config: Config,
        cli_delay: Option<f64>,
        state_file: Option<StateFile>,
        runtime: RuntimeState,
        ssh_dir: Option<PathBuf>,
        pretend: bool,
    ) -> anyhow::Result<Engine> {
        let watcher = Watcher::new(config.events)
            .map_err(|e| anyhow::anyhow!("cannot initialise inotify: {e}"))?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let mut engine = Engine {
            config,
            cli_delay,
            runtime,
            state_file,
            ssh_dir,
            pretend,
            watcher,
            watches: BTreeMap::new(),
            next_watch_id: 0,
            next_pair_id: 0,
            running: 0,
            waiters: Vec::new(),
            done_tx,
            done_rx,
            periodic_full_sync: None,
            degraded_full_sync: Instant::now(),
            next_source_check: Instant::now() + source::CHECK_EVERY,
        };
        engine.reset_periodic_full_sync();
        let initial = engine.config.initial_sync;
        for spec in engine.config.watches.clone() {
            let path = spec.path.display().to_string();
            if engine.runtime.removed.contains(&path) {
                tracing::info!("{path}: removed at runtime (inosyncctl remove); not watched");
                continue;
            }
            engine
                .open_watch(spec, Source::Config, initial)
                .map_err(anyhow::Error::msg)?;
        }
        for added in engine.runtime.added.clone() {
            let spec = match commands::spec_from_added(&added) {
                Ok(spec) => spec,
                Err(e) => {
                    tracing::error!(
                        "watch {} added at runtime cannot be restored: {e}",
                        added.path
                    );
                    continue;
                }
            };
            if let Err(e) = engine.check_free(&spec) {
                tracing::error!(
                    "watch {} added at runtime cannot be restored: {e}",
                    added.path
                );
                continue;
            }
            if let Err(e) = engine.open_watch(spec, Source::Runtime, initial) {
                tracing::error!(
                    "watch {} added at runtime cannot be restored: {e}",
                    added.path
                );
            }
        }
        Ok(engine)
    }

    fn reset_periodic_full_sync(&mut self) {
        self.periodic_full_sync = (self.config.full_sync_interval > 0.0).then(|| {
            let every = Duration::from_secs_f64(self.config.full_sync_interval);
            (every, Instant::now() + every)
        });
    }

    /// Watches a tree and creates its pairs; `full_sync` schedules an immediate
    /// full sync to every target. Runtime overrides of this path are applied.
    fn open_watch(
        &mut self,
        spec: WatchConfig,
        origin: Source,
        full_sync: bool,
    ) -> Result<u32, String> {
        let excludes = self.excludes_for(&spec)?;
        let id = self.next_watch_id;
        let started = Instant::now();
        let key = spec.path.display().to_string();
        let root = source::identify(&spec.path)?;
        // A root on another filesystem than the one recorded is most likely a disk
        // that failed to mount: never synced from until it is back.
        let recorded = self.runtime.sources.get(&key).copied();
        let missing = recorded.filter(|fsid| *fsid != root.fsid).map(|_| {
            format!(
                "{} is on another filesystem than the one recorded at an earlier start (not mounted?)",
                spec.path.display()
            )
        });
        if missing.is_none() {
            self.watcher
                .add_root(id, &spec.path, excludes.clone())
                .map_err(|e| format!("cannot watch {}: {e}", spec.path.display()))?;
            if recorded.is_none() {
                self.runtime.sources.insert(key.clone(), root.fsid);
                self.persist();
            }
        }
        self.next_watch_id += 1;
        let full_sync = full_sync && missing.is_none();
        let mut pairs = self.pairs_for(&spec);
        if full_sync {
            for pair in &mut pairs {
                pair.record_full(started, true);
            }
        }
        let overrides = self.runtime.watch.get(&key).cloned().unwrap_or_default();
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
        tracing::info!(
            "watching {} ({} directories in {:.2?})",
            path.display(),
            self.watcher.watched_dirs(id),
            started.elapsed()
        );
        if changed && let Some(watch) = self.watches.get_mut(&id) {
            tracing::info!(
                "{}: changed while its initial sync was starting; another full sync follows",
                path.display()
            );
            let now = Instant::now();
            for pair in &mut watch.pairs {
                pair.record_full(now, true);
            }
        }
        Ok(id)
    }

    fn excludes_for(&self, spec: &WatchConfig) -> Result<ExcludeSet, String> {
        let mut patterns = self.config.excludes.clone();
        patterns.extend(spec.excludes.iter().cloned());
        ExcludeSet::new(&patterns)
    }

    fn pairs_for(&mut self, spec: &WatchConfig) -> Vec<Pair> {
        spec.effective_targets(&self.config)
            .to_vec()
            .into_iter()
            .map(|target| {
                let destination = destination(&target, &spec.remote_path);
                self.new_pair(target, destination)
            })
            .collect()
    }

    fn new_pair(&mut self, target: String, destination: String) -> Pair {
        self.next_pair_id += 1;
        Pair::new(self.next_pair_id, target, destination)
    }

    /// A new watch must not contain, or lie inside, an existing one, and none of
    /// its destinations may overlap a watched tree or another destination.
    fn check_free(&self, spec: &WatchConfig) -> Result<(), String> {
        let path = &spec.path;
        for watch in self.watches.values() {
            if let Some(problem) = crate::config::overlap(path, &watch.spec.path) {
                return Err(format!(
                    "{} {problem} the watch {}",
                    path.display(),
                    watch.spec.path.display()
                ));
            }
        }
        let places = self.config.places(spec);
        layout::check_watch(&places)?;
        for watch in self.watches.values() {
            layout::check_pair(&places, &self.config.places(&watch.spec))?;
        }
        Ok(())
    }

    /// The watch of a directory given by an administrator (symlinks resolved when
    /// the path exists).
    fn find_watch(&self, path: &str) -> Result<u32, String> {
        let given = PathBuf::from(path);
        let resolved = given.canonicalize().unwrap_or_else(|_| given.clone());
        self.watches
            .iter()
            .find(|(_, w)| w.spec.path == resolved || w.spec.path == given)
            .map(|(id, _)| *id)
            .ok_or_else(|| format!("{path} is not watched"))
    }

    /// The global bandwidth limit and where it comes from.
    fn global_speed(&self) -> (u32, Source) {
        match self.runtime.speed {
            Some(speed) => (speed, Source::Runtime),
            None => (self.config.speed, self.config_source()),
        }
    }

    /// The global delay and where it comes from.
    fn global_delay(&self) -> (f64, Source) {
        match self.runtime.delay {
            Some(delay) => (delay, Source::Runtime),
            None => (self.config.delay, self.config_source()),
        }
    }

    fn config_source(&self) -> Source {
        if self.config.source.is_some() {
            Source::Config
        } else {
            Source::Default
        }
    }

    fn watch_speed(&self, watch: &Watch) -> (u32, Source) {
        match (watch.speed_override, watch.spec.speed) {
            (Some(speed), _) => (speed, Source::Runtime),
            (None, Some(speed)) => (speed, watch.origin),
            (None, None) => (self.global_speed().0, Source::Global),
        }
    }

    fn watch_delay(&self, watch: &Watch) -> (f64, Source) {
        match (watch.delay_override, watch.spec.delay) {
            (Some(delay), _) => (delay, Source::Runtime),
            (None, Some(delay)) => (delay, watch.origin),
            (None, None) => (self.global_delay().0, Source::Global),
        }
    }

    /// Writes the runtime state; a failure is logged, the change stays in force.
    fn persist(&mut self) {
        self.runtime.tidy();
        let Some(file) = &self.state_file else {
            return;
        };
        if let Err(e) = file.save(&self.runtime) {
            tracing::error!(
                "cannot write state file {}: {e}; runtime changes will not survive a restart",
                file.path().display()
            );
        }
    }

    /// Runs until asked to stop. `stop` counts SIGTERM/SIGINT: at the first, no more
    /// events are read and what is pending is synced (paused watches excepted) for
    /// at most `grace`; at the second, or when the grace is up, it stops at once.
    /// Whatever is left is covered by the initial full sync of the next start.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<u32>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        // SAFETY: the watcher owns the inotify descriptor and lives in `self`, which
        // outlives `inotify_fd` (dropped at the end of this function).
        let inotify_fd =
            unsafe { AsyncFd::register_with_interest(self.watcher.raw_fd(), Interest::READABLE) }
                .map_err(|e| anyhow::anyhow!("cannot poll the inotify descriptor: {e}"))?;
        let mut changes = Vec::new();
        let mut stopping: Option<Instant> = None;
        loop {
            if let Some(deadline) = stopping {
                if self.is_flushed() {
                    tracing::info!("pending changes synced; stopping");
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::warn!("stopping with changes still pending (grace period over)");
                    break;
                }
            }
            self.check_sources_when_due();
            self.schedule_periodic_full_sync();
            self.start_due_batches();
            self.progress_removals();
            self.answer_waiters(&mut changes)?;
            let wake = stopping.map_or(self.next_wakeup(), |d| d.min(self.next_wakeup()));
            tokio::select! {
                ready = inotify_fd.readable(), if stopping.is_none() => {
                    let mut guard = ready?;
                    self.read_events(&mut changes)?;
                    guard.clear_ready();
                }
                Some(done) = self.done_rx.recv() => self.finish(done),
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                _ = sleep_until(wake.into()) => {}
                changed = stop.changed() => {
                    let signals = *stop.borrow();
                    if changed.is_err() || signals >= 2 || stopping.is_some() {
                        tracing::info!("stopping now; pending changes are left to the next start's full sync");
                        break;
                    }
                    stopping = Some(Instant::now() + grace);
                    let pending = self.hurry_all();
                    tracing::info!(
                        "stopping: no more events read; syncing {pending} pending change(s) first \
                         (at most {grace:?}; signal again to stop at once)"
                    );
                }
            }
        }
        self.stop_running(Duration::from_secs(10)).await;
        Ok(())
    }

    /// Makes every pending batch due now; returns how many paths were pending.
    fn hurry_all(&mut self) -> u64 {
        let now = Instant::now();
        let mut pending = 0;
        for watch in self.watches.values_mut().filter(|w| !w.paused) {
            for pair in &mut watch.pairs {
                pending += pair.pending_count();
                pair.hurry(now);
            }
        }
        pending
    }

    /// Nothing pending or running, paused watches and missing sources aside (their
    /// changes are held on purpose and go to the next start's full sync).
    fn is_flushed(&self) -> bool {
        self.running == 0
            && self
                .watches
                .values()
                .filter(|w| !w.paused && w.source_problem().is_none())
                .all(Watch::is_idle)
    }

    fn read_events(&mut self, changes: &mut Vec<Change>) -> anyhow::Result<bool> {
        let read = self.watcher.read_queued(changes)?;
        let now = Instant::now();
        for change in changes.drain(..) {
            match change {
                Change::Path { watch, rel } => {
                    if let Some(w) = self.watches.get_mut(&watch) {
                        for pair in &mut w.pairs {
                            pair.record(&rel, now);
                        }
                    }
                }
                Change::Everything { watch } => {
                    if let Some(w) = self.watches.get_mut(&watch) {
                        for pair in &mut w.pairs {
                            pair.record_full(now, false);
                        }
                    }
                }
                Change::RootGone { watch } => {
                    self.check_source_after(watch, true);
                }
            }
        }
        Ok(read)
    }

    /// Every `full_sync_interval`, a full sync of every pair: a safety net for
    /// anything inotify could not tell us (e.g. changes made by another host on a
    /// shared file system).
    fn schedule_periodic_full_sync(&mut self) {
        self.schedule_degraded_full_sync();
        let Some((every, due)) = self.periodic_full_sync else {
            return;
        };
        let now = Instant::now();
        if now < due {
            return;
        }
        tracing::info!("periodic full sync of every watch (full_sync_interval)");
        for watch in self.watches.values_mut() {
            for pair in &mut watch.pairs {
                pair.record_full(now, true);
            }
        }
        self.periodic_full_sync = Some((every, now + every));
    }

    /// How often a degraded watch gets a full sync: `full_sync_interval`, or every
    /// minute when that is off.
    fn degraded_period(&self) -> Duration {
        if self.config.full_sync_interval > 0.0 {
            Duration::from_secs_f64(self.config.full_sync_interval)
        } else {
            Duration::from_secs(60)
        }
    }

    fn degraded_ids(&self) -> Vec<u32> {
        self.watches
            .keys()
            .copied()
            .filter(|id| self.watcher.degraded(*id).is_some())
            .collect()
    }

    /// Watches that could not get a watch on every directory are kept right by full
    /// syncs; before each, the missing watches are tried again.
    fn schedule_degraded_full_sync(&mut self) {
        let now = Instant::now();
        if now < self.degraded_full_sync {
            return;
        }
        self.degraded_full_sync = now + self.degraded_period();
        for id in self.degraded_ids() {
            self.watcher.retry_degraded(id);
            if let Some(watch) = self.watches.get_mut(&id) {
                tracing::info!(
                    "{}: full sync (not every directory is watched)",
                    watch.spec.path.display()
                );
                for pair in &mut watch.pairs {
                    pair.record_full(now, true);
                }
            }
        }
    }

    /// The pairs that may start a batch now or later, with their watch's delay.
    fn schedulable(&self) -> Vec<(u32, usize, Duration)> {
        let mut out = Vec::new();
        for (id, watch) in &self.watches {
            // A watch being removed syncs its last changes even if it was paused.
            if (watch.paused && watch.removing.is_none()) || watch.missing.is_some() {
                continue;
            }
            let delay = Duration::from_secs_f64(self.watch_delay(watch).0);
            for i in 0..watch.pairs.len() {
                out.push((*id, i, delay));
            }
        }
        out
    }

    /// Starts every batch whose time has come, oldest first, up to `max_parallel`.
    fn start_due_batches(&mut self) {
        let now = Instant::now();
        let mut due: Vec<(Instant, u32, usize)> = self
            .schedulable()
            .into_iter()
            .filter_map(|(id, i, delay)| {
                let at = self.watches[&id].pairs[i].due_at(delay)?;
                (at <= now).then_some((at, id, i))
            })
            .collect();
        due.sort();
        for (_, id, i) in due {
            if self.running >= self.config.max_parallel as usize {
                break;
            }
            self.start(id, i);
        }
    }

    fn start(&mut self, id: u32, i: usize) {
        // Never rsync from a root that is not the tree we watch.
        if !self.check_source(id) {
            return;
        }
        let Some(watch) = self.watches.get(&id) else {
            return;
        };
        let speed = self.watch_speed(watch).0;
        let rsh = watch.pairs.get(i).and_then(|p| self.reuse_rsh(&p.target));
        let (stop_tx, stop_rx) = oneshot::channel();
        let Some(watch) = self.watches.get_mut(&id) else {
            return;
        };
        let pair = &mut watch.pairs[i];
        let batch = pair.start(stop_tx);
        pair.speed_in_use = speed;
        // A full sync from an empty root deletes nothing: if the target has files,
        // rsync stops with exit 25 and the pair holds (an empty mount point must not
        // wipe the mirror).
        pair.guarded =
            batch.full && !pair.may_mirror_empty_source() && source::is_empty_dir(&watch.spec.path);
        let progress = std::sync::Arc::new(std::sync::Mutex::new(None));
        pair.transfer = Some((Instant::now(), progress.clone()));
        let job = Job {
            rsync: self.config.rsync.clone(),
            source: watch.spec.path.clone(),
            destination: pair.destination.clone(),
            speed,
            excludes: watch.excludes.patterns().to_vec(),
            extra: self.config.rsync_args.clone(),
            rsh,
            io_timeout: Duration::from_secs_f64(self.config.io_timeout),
            delete_nothing: pair.guarded,
            compare_contents: batch.full && pair.compare_contents,
            paths: (!batch.full).then(|| {
                crate::symlink_guard::without_symlinked_ancestors(&watch.spec.path, batch.paths)
            }),
        };
        let label = format!("{} -> {}", watch.spec.path.display(), pair.destination);
        let pair_id = pair.id;
        self.running += 1;
        let done = self.done_tx.clone();
        let pretend = self.pretend;
        // rsync starts here, synchronously; the task only supervises it.
        let running = rsync::run(job, pretend, label, stop_rx, progress);
        tokio::spawn(async move {
            let outcome = running.await;
            let _ = done.send(Done {
                watch: id,
                pair: pair_id,
                outcome,
            });
        });
    }

    /// The `--rsh` that shares one ssh connection per host, for `host:` targets
    /// (unless `ssh_reuse = false` or the remote shell is not ssh).
    fn reuse_rsh(&self, target: &str) -> Option<String> {
        if !self.config.ssh_reuse || !rsync::uses_remote_shell(target) {
            return None;
        }
        rsync::rsh_with_reuse(&self.config.rsync_args, self.ssh_dir.as_deref()?)
    }

    fn finish(&mut self, done: Done) {
        self.running = self.running.saturating_sub(1);
        let Some(watch) = self.watches.get_mut(&done.watch) else {
            return;
        };
        let Some(pair) = watch.pairs.iter_mut().find(|p| p.id == done.pair) else {
            return;
        };
        let label = format!("{} -> {}", watch.spec.path.display(), pair.destination);
        let outcome = &done.outcome;
        let what = outcome
            .files
            .map_or("the whole tree".to_string(), |n| format!("{n} path(s)"));
        let sent = outcome
            .bytes_sent
            .map_or("? bytes".to_string(), |b| format!("{b} bytes"));
        let exit = outcome
            .exit_code
            .map_or("none".to_string(), |c| c.to_string());
        match &outcome.error {
            _ if pair.guarded && outcome.exit_code == Some(25) => tracing::error!(
                "{label}: source missing: {} is empty while the target is not; the mirror is \
                 kept (an empty mount point?). `inosyncctl sync {} --force` mirrors the empty source",
                watch.spec.path.display(),
                watch.spec.path.display()
            ),
            _ if outcome.interrupted => tracing::info!(
                "{label}: rsync stopped after {:.3?} ({what}); restarting",
                outcome.elapsed
            ),
            None => tracing::info!(
                "{label}: synced in {:.3?}: {what}, {sent} sent, exit {exit}",
                outcome.elapsed
            ),
            Some(error) => tracing::error!(
                "{label}: sync failed after {:.3?} ({what}, exit {exit}): {error}; changes kept, retry #{} scheduled",
                outcome.elapsed,
                pair.failures + 1
            ),
        }
        pair.finish(&done.outcome, Instant::now());
    }

    /// Finishes removals whose last changes are synced, and answers `remove` calls
    /// that reached their deadline first.
    fn progress_removals(&mut self) {
        let now = Instant::now();
        // A watch whose source is missing has nothing it could sync.
        let finished: Vec<u32> = self
            .watches
            .iter()
            .filter(|(_, w)| w.removing.is_some() && (w.is_idle() || w.missing.is_some()))
            .map(|(id, _)| *id)
            .collect();
        for id in finished {
            self.drop_watch(id, "pending changes synced; watch removed");
        }
        for watch in self.watches.values_mut() {
            if let Some(waiting) = &mut watch.removing {
                let mut i = 0;
                while i < waiting.len() {
                    if waiting[i].0 <= now {
                        let (_, reply) = waiting.swap_remove(i);
                        let _ = reply.send(Ok(false));
                    } else {
                        i += 1;
                    }
                }
            }
        }
    }

    /// Drops a watch for good, records that in the state file, and answers the
    /// `remove` calls waiting for it.
    fn drop_watch(&mut self, id: u32, why: &str) {
        if let Some(watch) = self.watches.remove(&id) {
            tracing::info!("{}: {why}", watch.spec.path.display());
            self.forget(&watch);
            for (_, reply) in watch.removing.into_iter().flatten() {
                let _ = reply.send(Ok(true));
            }
        }
    }

    /// Records in the state file that a watch is gone.
    fn forget(&mut self, watch: &Watch) {
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
        self.persist();
    }

    fn is_idle(&self, scope: Option<u32>) -> bool {
        match scope {
            Some(id) => self.watches.get(&id).is_none_or(Watch::is_idle),
            None => self.running == 0 && self.watches.values().all(Watch::is_idle),
        }
    }

    /// Answers `wait` calls. Before saying "idle", reads whatever inotify has
    /// queued: a change made just before the call must count as pending.
    fn answer_waiters(&mut self, changes: &mut Vec<Change>) -> anyhow::Result<()> {
        if self.waiters.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.waiters.len() {
            let scope = self.waiters[i].scope;
            // Nothing will come of waiting for a source that is not there.
            if let Some(problem) = self.source_problem(scope) {
                let waiter = self.waiters.swap_remove(i);
                let _ = waiter.reply.send(Err(problem));
                continue;
            }
            let mut idle = self.is_idle(scope);
            while idle && self.read_events(changes)? {
                idle = self.is_idle(scope);
            }
            if idle || self.waiters[i].deadline <= now || self.waiters[i].reply.is_closed() {
                let waiter = self.waiters.swap_remove(i);
                let _ = waiter.reply.send(Ok(idle));
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// Why a watch in scope cannot sync, if one cannot.
    fn source_problem(&self, scope: Option<u32>) -> Option<String> {
        self.watches
            .iter()
            .filter(|(id, _)| scope.is_none_or(|s| s == **id))
            .find_map(|(_, w)| w.source_problem())
    }

    /// The next moment something is due: a batch, a deadline, a periodic sync, the
    /// next look at the watch roots.
    fn next_wakeup(&self) -> Instant {
        let mut wake = self.next_source_check;
        if self.running < self.config.max_parallel as usize {
            for (id, i, delay) in self.schedulable() {
                if let Some(at) = self.watches[&id].pairs[i].due_at(delay) {
                    wake = wake.min(at);
                }
            }
        }
        for waiter in &self.waiters {
            wake = wake.min(waiter.deadline);
        }
        for watch in self.watches.values() {
            for (deadline, _) in watch.removing.iter().flatten() {
                wake = wake.min(*deadline);
            }
        }
        if let Some((_, due)) = self.periodic_full_sync {
            wake = wake.min(due);
        }
        if !self.degraded_ids().is_empty() {
            wake = wake.min(self.degraded_full_sync);
        }
        wake
    }

    /// On the way out: stop rsyncs still running (SIGTERM, so `--partial` keeps
    /// their work) and wait for them, but not forever.
    async fn stop_running(&mut self, grace: Duration) {
        if self.running == 0 {
            return;
        }
        tracing::warn!(
            "{} rsync process(es) still running at exit; stopping them",
            self.running
        );
        for watch in self.watches.values_mut() {
            for pair in &mut watch.pairs {
                pair.interrupt();
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.running > 0 {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some(done)) => self.finish(done),
                _ => break,
            }
        }
    }
}

impl WatchConfig {
    /// Whether this config watch is the directory `path` (as shown in status).
    fn spec_path_is(&self, path: &str) -> bool {
        self.path.display().to_string() == path
    }
}
