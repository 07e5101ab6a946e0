//! The one task that owns the daemon's state: the watcher, every (watch, target)
//! pair and the rsync slots. Everything else talks to it through channels, so no
//! state is shared behind a lock and every decision is made in one place.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use inosync_proto::{Status, TargetStatus, WatchStatus};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::sleep_until;

use crate::config::{Config, destination};
use crate::exclude::ExcludeSet;
use crate::pair::Pair;
use crate::rsync::{self, Job, Outcome};
use crate::time_format::rfc3339;
use crate::watcher::{Change, Watcher};

/// Requests from the control socket, each with the channel for its answer.
pub enum Command {
    /// Report the state of everything.
    Status(oneshot::Sender<Status>),
    /// Answer `true` when nothing is pending or running, `false` at the deadline.
    Wait {
        deadline: Instant,
        reply: oneshot::Sender<bool>,
    },
}

/// A watched tree and its targets.
struct Watch {
    path: PathBuf,
    remote_path: String,
    excludes: ExcludeSet,
    delay: f64,
    speed: u32,
    paused: bool,
    pairs: Vec<Pair>,
}

struct Done {
    watch: u32,
    pair: usize,
    outcome: Outcome,
}

/// The daemon's state and its event loop.
pub struct Engine {
    config: Config,
    pretend: bool,
    watcher: Watcher,
    watches: BTreeMap<u32, Watch>,
    running: usize,
    waiters: Vec<(Instant, oneshot::Sender<bool>)>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    /// The safety-net full sync (`full_sync_interval`), when enabled: its period and
    /// when it is next due.
    periodic_full_sync: Option<(Duration, Instant)>,
}

impl Engine {
    /// Sets up the watches of every configured tree and schedules the initial
    /// syncs. Watches come first, so nothing changed during the initial sync is
    /// missed.
    pub fn new(config: Config, pretend: bool) -> anyhow::Result<Engine> {
        let watcher = Watcher::new(config.events)
            .map_err(|e| anyhow::anyhow!("cannot initialise inotify: {e}"))?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let mut engine = Engine {
            config,
            pretend,
            watcher,
            watches: BTreeMap::new(),
            running: 0,
            waiters: Vec::new(),
            done_tx,
            done_rx,
            periodic_full_sync: None,
        };
        if engine.config.full_sync_interval > 0.0 {
            let every = Duration::from_secs_f64(engine.config.full_sync_interval);
            engine.periodic_full_sync = Some((every, Instant::now() + every));
        }
        let watches = engine.config.watches.clone();
        for (id, spec) in watches.iter().enumerate() {
            let mut patterns = engine.config.excludes.clone();
            patterns.extend(spec.excludes.iter().cloned());
            let excludes = ExcludeSet::new(&patterns).map_err(anyhow::Error::msg)?;
            let started = Instant::now();
            engine
                .watcher
                .add_root(id as u32, &spec.path, excludes.clone())
                .map_err(|e| anyhow::anyhow!("cannot watch {}: {e}", spec.path.display()))?;
            tracing::info!(
                "watching {} ({} directories in {:.2?})",
                spec.path.display(),
                engine.watcher.watched_dirs(id as u32),
                started.elapsed()
            );
            let pairs = spec
                .effective_targets(&engine.config)
                .iter()
                .map(|t| Pair::new(t.clone(), destination(t, &spec.remote_path)))
                .collect();
            let mut watch = Watch {
                path: spec.path.clone(),
                remote_path: spec.remote_path.clone(),
                excludes,
                delay: spec.delay.unwrap_or(engine.config.delay),
                speed: spec.speed.unwrap_or(engine.config.speed),
                paused: false,
                pairs,
            };
            if engine.config.initial_sync {
                let now = Instant::now();
                for pair in &mut watch.pairs {
                    pair.record_full(now, true);
                }
            }
            engine.watches.insert(id as u32, watch);
        }
        Ok(engine)
    }

    /// Runs until `shutdown` turns true, then lets running rsyncs finish (for at
    /// most `grace`).
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        // SAFETY: the watcher owns the inotify descriptor and lives in `self`, which
        // outlives `inotify_fd` (dropped at the end of this function).
        let inotify_fd =
            unsafe { AsyncFd::register_with_interest(self.watcher.raw_fd(), Interest::READABLE) }
                .map_err(|e| anyhow::anyhow!("cannot poll the inotify descriptor: {e}"))?;
        let mut changes = Vec::new();
        loop {
            self.schedule_periodic_full_sync();
            self.start_due_batches();
            self.answer_waiters(&mut changes)?;
            let wake = self.next_wakeup();
            tokio::select! {
                ready = inotify_fd.readable() => {
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
                _ = shutdown.changed() => break,
            }
        }
        self.drain_running(grace).await;
        Ok(())
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
            }
        }
        Ok(read)
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Wait { deadline, reply } => self.waiters.push((deadline, reply)),
        }
    }

    /// Every `full_sync_interval`, a full sync of every pair: a safety net for
    /// anything inotify could not tell us (e.g. changes made by another host on a
    /// shared file system).
    fn schedule_periodic_full_sync(&mut self) {
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

    /// Starts every batch whose time has come, oldest first, up to `max_parallel`.
    fn start_due_batches(&mut self) {
        let now = Instant::now();
        let mut due: Vec<(Instant, u32, usize)> = Vec::new();
        for (id, watch) in &self.watches {
            if watch.paused {
                continue;
            }
            let delay = Duration::from_secs_f64(watch.delay);
            for (i, pair) in watch.pairs.iter().enumerate() {
                if let Some(at) = pair.due_at(delay)
                    && at <= now
                {
                    due.push((at, *id, i));
                }
            }
        }
        due.sort();
        for (_, id, i) in due {
            if self.running >= self.config.max_parallel as usize {
                break;
            }
            self.start(id, i);
        }
    }

    fn start(&mut self, id: u32, i: usize) {
        let Some(watch) = self.watches.get_mut(&id) else {
            return;
        };
        let pair = &mut watch.pairs[i];
        let batch = pair.start();
        let job = Job {
            rsync: self.config.rsync.clone(),
            source: watch.path.clone(),
            destination: pair.destination.clone(),
            speed: watch.speed,
            excludes: watch.excludes.patterns().to_vec(),
            extra: self.config.rsync_args.clone(),
            paths: (!batch.full).then_some(batch.paths),
        };
        let label = format!("{} -> {}", watch.path.display(), pair.destination);
        self.running += 1;
        let done = self.done_tx.clone();
        let pretend = self.pretend;
        tokio::spawn(async move {
            let outcome = rsync::run(job, pretend, label).await;
            let _ = done.send(Done {
                watch: id,
                pair: i,
                outcome,
            });
        });
    }

    fn finish(&mut self, done: Done) {
        self.running = self.running.saturating_sub(1);
        let Some(watch) = self.watches.get_mut(&done.watch) else {
            return;
        };
        let Some(pair) = watch.pairs.get_mut(done.pair) else {
            return;
        };
        let label = format!("{} -> {}", watch.path.display(), pair.destination);
        match &done.outcome.error {
            None => tracing::info!("{label}: synced in {:.3?}", done.outcome.elapsed),
            Some(error) => tracing::error!(
                "{label}: sync failed after {:.3?}: {error}; changes kept, retry #{} scheduled",
                done.outcome.elapsed,
                pair.failures + 1
            ),
        }
        pair.finish(done.outcome.error, Instant::now());
    }

    fn is_idle(&self) -> bool {
        self.running == 0
            && self
                .watches
                .values()
                .all(|w| w.pairs.iter().all(|p| !p.has_pending() && !p.is_running()))
    }

    /// Answers `wait` calls. Before saying "idle", reads whatever inotify has
    /// queued: a change made just before the call must count as pending.
    fn answer_waiters(&mut self, changes: &mut Vec<Change>) -> anyhow::Result<()> {
        if self.waiters.is_empty() {
            return Ok(());
        }
        while self.is_idle() {
            if !self.read_events(changes)? {
                for (_, reply) in self.waiters.drain(..) {
                    let _ = reply.send(true);
                }
                return Ok(());
            }
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].0 <= now || self.waiters[i].1.is_closed() {
                let (_, reply) = self.waiters.swap_remove(i);
                let _ = reply.send(false);
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// The next moment something is due: a batch or a `wait` deadline.
    fn next_wakeup(&self) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        if self.running < self.config.max_parallel as usize {
            for watch in self.watches.values().filter(|w| !w.paused) {
                let delay = Duration::from_secs_f64(watch.delay);
                for pair in &watch.pairs {
                    if let Some(at) = pair.due_at(delay) {
                        wake = wake.min(at);
                    }
                }
            }
        }
        for (deadline, _) in &self.waiters {
            wake = wake.min(*deadline);
        }
        if let Some((_, due)) = self.periodic_full_sync {
            wake = wake.min(due);
        }
        wake
    }

    /// On shutdown: let running rsyncs end, but not forever.
    async fn drain_running(&mut self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.running > 0 {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some(done)) => self.finish(done),
                _ => {
                    tracing::warn!(
                        "{} rsync process(es) still running at exit; stopping them",
                        self.running
                    );
                    break;
                }
            }
        }
    }

    fn status(&self) -> Status {
        let now = Instant::now();
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            speed: self.config.speed,
            delay: self.config.delay,
            max_parallel: self.config.max_parallel,
            running: self.running as u32,
            watches: self
                .watches
                .iter()
                .map(|(id, w)| WatchStatus {
                    path: w.path.display().to_string(),
                    remote_path: w.remote_path.clone(),
                    paused: w.paused,
                    pending: w.pairs.iter().map(Pair::pending_count).max().unwrap_or(0),
                    watched_dirs: self.watcher.watched_dirs(*id),
                    excludes: w.excludes.patterns().to_vec(),
                    delay: w.delay,
                    speed: w.speed,
                    targets: w
                        .pairs
                        .iter()
                        .map(|p| TargetStatus {
                            target: p.target.clone(),
                            destination: p.destination.clone(),
                            state: p.state(w.paused),
                            pending: p.pending_count(),
                            last_sync: p.last_sync.map(rfc3339),
                            last_error: p.last_error.clone(),
                            failures: p.failures,
                            next_retry_in: p.retry_in(now).map(|d| d.as_secs_f64()),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
