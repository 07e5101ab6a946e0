//! The one task that owns the daemon's state: the watcher, every watch with its
//! (watch, target) pairs, the rsync slots and the runtime settings. Everything else
//! talks to it through [`Command`]s carrying their reply channel, and every
//! decision is made here. (The one thing written from elsewhere is a running
//! transfer's progress, which its runner publishes on a watch channel.)
//!
//! The pipeline, one question per file: the watcher (`crate::watcher`) turns
//! inotify events into changed paths; `source.rs` says whether a watch root is
//! still the tree we mirror; `pair.rs` keeps each (watch, target) batch;
//! `schedule.rs` decides what is due and when; `dispatch.rs` starts and finishes
//! batches through the [`runner::Runner`] seam; `waiters.rs` answers `wait` and
//! `remove`; `watches.rs` is the registry; `commands.rs` and `reload.rs` are the
//! control requests; `status.rs` is the only place that speaks the protocol's
//! types.

mod backoff;
mod batch;
mod changes;
mod commands;
mod dispatch;
mod held;
mod journal;
pub(super) mod lanes;
mod leftovers;
mod metrics;
mod on_the_way;
mod pair;
mod refusal;
mod reload;
mod requests;
pub mod runner;
mod schedule;
mod settle;
mod source;
mod status;
#[cfg(test)]
mod tests;
mod unsynced;
mod verify;
mod waiters;
mod watches;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use inosync_proto::Source;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::config::Config;
use crate::rsync::Policy;
use crate::state_file::{RuntimeState, StateFile};
use crate::watcher::{Change, Watcher};
use dispatch::Done;
use runner::Runner;
use waiters::Waiter;
use watches::Watch;

/// How long events of other files on a fanotify-marked filesystem may gather
/// before the next read: one wake-up per batch, not per event, costs a change in
/// a tree at most this much latency while the filesystem is busy elsewhere.
const FOREIGN_EVENTS_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// A read of this many changes or more is a burst (`cp -r`, an unpacked
/// archive, a deploy): the next read waits [`BUSY_EVENTS_PAUSE`].
const BUSY_READ_CHANGES: usize = 64;
/// How long a burst's events gather before the next read: fewer wake-ups of
/// the daemon beside the writer, which shares its CPUs; a burst's batch
/// waits for it to pause anyway (`pair::BURST_QUIET`).
const BUSY_EVENTS_PAUSE: std::time::Duration = std::time::Duration::from_millis(3);

pub use refusal::Refusal;

pub use requests::{Command, Reply};

/// What the engine starts from.
pub struct Setup {
    /// The config (file or quick start).
    pub config: Config,
    /// `--delay` from the command line: wins over the config, also after a reload.
    pub cli_delay: Option<f64>,
    /// `--backend` from the command line: wins over the config, also after a
    /// reload (which then has no backend change to report).
    pub cli_backend: Option<crate::config::Backend>,
    /// Where runtime changes are kept; `None` in a quick start without `--state`.
    pub state_file: Option<StateFile>,
    /// The runtime changes read from it.
    pub runtime: RuntimeState,
    /// A private directory for ssh's shared connections, if one could be had.
    pub ssh_dir: Option<PathBuf>,
    /// The control socket's path, put in every child's environment so that a
    /// restart finds what a killed daemon left running (`left_running`).
    pub owner: Option<std::ffi::OsString>,
    /// What runs the jobs.
    pub runner: Box<dyn Runner>,
    /// `--pretend`: children are logged, never started.
    pub pretend: bool,
}

/// The daemon's state and its event loop.
pub struct Engine {
    config: Config,
    /// `--delay` from the command line: wins over the config, also after a reload.
    cli_delay: Option<f64>,
    /// `--backend` from the command line (see [`Setup::cli_backend`]).
    cli_backend: Option<crate::config::Backend>,
    runtime: RuntimeState,
    /// Where runtime changes are kept; `None` in a quick start without `--state`.
    state_file: Option<StateFile>,
    /// Why the last write of the state file failed, until one succeeds
    /// (`status` shows it, and `inosyncctl` says it after a runtime change).
    state_file_error: Option<String>,
    /// Why the running mark (`<state>.running`) could not be made, until it
    /// is (retried at every write of the journal): without it a kill is not
    /// known at the next start.
    running_mark_error: Option<String>,
    /// When the running mark's time was last moved on (see
    /// `Engine::mark_read_up_to`).
    marked_read_at: Option<Instant>,
    /// When this daemon started: a running mark made late (see
    /// `Engine::retry_running_mark`) takes this time, the changes seen
    /// before it may not be in the journal.
    started_at: std::time::SystemTime,
    /// Where ssh keeps its shared connections (ControlPath); `None` when no safe
    /// directory could be had (no connection reuse then).
    ssh_dir: Option<PathBuf>,
    /// Runs the jobs: rsync, or a test's fake.
    runner: Box<dyn Runner>,
    watcher: Watcher,
    watches: BTreeMap<u32, Watch>,
    next_watch_id: u32,
    next_pair_id: u64,
    /// rsync processes running now, and how many of them are large transfers
    /// (see `lanes.rs`).
    running: usize,
    running_large: usize,
    /// The large runs holding a large slot, by pair (see `lanes.rs`).
    large_runs: lanes::LargeRuns,
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
    /// Comparisons (`verify`) finished on their task.
    verify_tx: mpsc::UnboundedSender<verify::Verified>,
    verify_rx: mpsc::UnboundedReceiver<verify::Verified>,
    /// Comparisons running now.
    verifying: usize,
    /// What changed, per watch, while comparisons ran: on its way for them
    /// (see `verify::Engine::note_for_verify`).
    seen_while_verifying: std::collections::BTreeMap<u32, on_the_way::OnTheWay>,
    /// When the next periodic verify is due (`verify_interval`), if enabled.
    next_verify: Option<Instant>,
    metrics: metrics::Metrics,
    /// How every child is started: `--pretend`, the sandbox, `required`.
    policy: Arc<Policy>,
    /// Every watched tree, for the layout check before each child starts: made
    /// when a job needs it after watches came or went (not once per watch
    /// opened, which made a start with n watches cost n² copies).
    roots: std::cell::RefCell<Option<Arc<[PathBuf]>>>,
    /// Files written and not closed, until they are quiet (see `settle.rs`).
    settling: settle::Settling,
    /// The changes seen and not yet synced, kept for the next start (see
    /// `pending_journal.rs`); `None` without a state file.
    journal: Option<crate::pending_journal::PendingJournal>,
    /// The mount table the root checks read places from (`source.rs`).
    places: source::Places,
}

impl Engine {
    /// Sets up the watches of the config and of the state file and schedules the
    /// initial syncs. Watches come first, so nothing changed during the initial
    /// sync is missed. A config watch that cannot be set up stops the start; a
    /// runtime one (the directory may be gone) is reported and skipped.
    pub fn new(setup: Setup) -> anyhow::Result<Engine> {
        let Setup {
            config,
            cli_delay,
            cli_backend,
            state_file,
            mut runtime,
            ssh_dir,
            owner,
            runner,
            pretend,
        } = setup;
        source::forget_devices_of_another_boot(&mut runtime);
        let watcher = Watcher::new(config.events, config.backend)
            .map_err(|e| anyhow::anyhow!("cannot start watching: {e}"))?;
        let policy =
            Arc::new(Policy::decide(config.sandbox, pretend, ssh_dir.clone())?.owned_by(owner));
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (verify_tx, verify_rx) = mpsc::unbounded_channel();
        let (journal, left) = match &state_file {
            Some(file) => {
                let mut path = file.path().as_os_str().to_owned();
                path.push(".pending");
                let (journal, left) = crate::pending_journal::PendingJournal::open(path.into());
                (Some(journal), left)
            }
            None => (None, Default::default()),
        };
        let mut engine = Engine {
            config,
            cli_delay,
            cli_backend,
            runtime,
            state_file,
            state_file_error: None,
            running_mark_error: None,
            marked_read_at: None,
            started_at: std::time::SystemTime::now(),
            ssh_dir,
            runner,
            watcher,
            watches: BTreeMap::new(),
            next_watch_id: 0,
            next_pair_id: 0,
            running: 0,
            running_large: 0,
            large_runs: lanes::LargeRuns::default(),
            waiters: Vec::new(),
            done_tx,
            done_rx,
            periodic_full_sync: None,
            degraded_full_sync: Instant::now(),
            next_source_check: Instant::now() + source::CHECK_EVERY,
            verify_tx,
            verify_rx,
            verifying: 0,
            seen_while_verifying: std::collections::BTreeMap::new(),
            next_verify: None,
            metrics: metrics::Metrics::default(),
            policy,
            roots: Default::default(),
            settling: settle::Settling::default(),
            journal,
            places: source::Places::default(),
        };
        engine.reset_periodic_full_sync();
        let initial = engine.config.initial_sync;
        let recorded = engine.runtime.clone();
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
        engine.restore_runtime_watches(initial);
        engine.resume_removals();
        let had_unsynced = !engine.runtime.unsynced.is_empty();
        engine.sync_unsynced();
        engine.sync_after_a_crash();
        if engine.journal.is_some() {
            engine.take_up_journal(left);
        }
        // Any record new or changed (a place, a device), not only new ones.
        if engine.runtime != recorded || had_unsynced {
            // The filesystems and places of new roots, recorded.
            engine.persist();
        }
        Ok(engine)
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
        // The mount table: EPOLLPRI when a mount comes or goes.
        let mount_table = match self.watcher.mount_table_fd() {
            // SAFETY: the watcher owns the mount table's descriptor and lives in
            // `self`, which outlives `mount_table` (dropped at the end of this
            // function).
            Some(fd) => Some(
                unsafe { AsyncFd::register_with_interest(fd, Interest::PRIORITY) }
                    .map_err(|e| anyhow::anyhow!("cannot poll the mount table: {e}"))?,
            ),
            None => None,
        };
        let mounts_changed = async |table: &Option<AsyncFd<std::os::fd::RawFd>>| match table {
            Some(table) => table
                .ready(Interest::PRIORITY)
                .await
                .map(|mut g| g.clear_ready()),
            None => std::future::pending().await,
        };
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
            self.watcher
                .poll_background(stopping.is_none(), &mut changes);
            self.take_changes(changes.drain(..));
            self.settle_due();
            self.schedule_periodic_full_sync();
            self.schedule_periodic_verify();
            self.start_due_batches();
            self.progress_removals();
            self.answer_waiters(&mut changes)?;
            self.forget_synced_in_journal(stopping.is_none())?;
            let wake = stopping.map_or(self.next_wakeup(), |d| d.min(self.next_wakeup()));
            tokio::select! {
                ready = inotify_fd.readable(), if stopping.is_none() => {
                    let mut guard = ready?;
                    let read_from = std::time::SystemTime::now();
                    self.watcher.read_queued(&mut changes)?;
                    let read = changes.len();
                    self.take_changes(changes.drain(..));
                    guard.clear_ready();
                    self.mark_read_up_to(read_from);
                    // A busy filesystem elsewhere: read its events in batches.
                    if self.watcher.read_only_foreign_events() {
                        self.watcher.listen_to_fanotify(false);
                        tokio::time::sleep(FOREIGN_EVENTS_PAUSE).await;
                        self.watcher.listen_to_fanotify(true);
                    } else if read >= BUSY_READ_CHANGES {
                        // A burst in a tree: its next events gather for a
                        // moment rather than wake the loop one by one.
                        tokio::time::sleep(BUSY_EVENTS_PAUSE).await;
                    }
                }
                changed = mounts_changed(&mount_table), if stopping.is_none() => {
                    changed?;
                    self.watcher.mounts_changed(&mut changes);
                    self.take_changes(changes.drain(..));
                }
                Some(done) = self.done_rx.recv() => self.finish(done),
                Some(verified) = self.verify_rx.recv() => self.finish_verify(verified),
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                _ = sleep_until(wake) => {}
                changed = stop.changed() => {
                    let signals = *stop.borrow();
                    if changed.is_err() || signals >= 2 || stopping.is_some() {
                        tracing::info!("stopping now; pending changes are left to the next start's full sync");
                        break;
                    }
                    stopping = Some(Instant::now() + grace);
                    // What happened before the signal may still be queued,
                    // unread: it is among the changes synced on the way out.
                    self.read_events(&mut changes)?;
                    let (pending, left) = self.hurry_all();
                    tracing::info!(
                        "stopping: no more events read; syncing {pending} pending change(s) first \
                         (at most {grace:?}; signal again to stop at once)"
                    );
                    if left > 0 {
                        tracing::warn!(
                            "stopping: {left} change(s) for targets in retry backoff (or held \
                             paths waiting for their retry) are not waited for; the next \
                             start's full sync sends them"
                        );
                    }
                }
            }
        }
        self.stop_running(Duration::from_secs(10)).await;
        self.forget_synced_in_journal(false)?;
        self.write_journal();
        self.record_unsynced();
        Ok(())
    }

    /// Reads what inotify has queued and records it; `Ok(false)` when there was
    /// nothing to read.
    pub(super) fn read_events(&mut self, changes: &mut Vec<Change>) -> anyhow::Result<bool> {
        let read = self.watcher.read_queued(changes)?;
        self.take_changes(changes.drain(..));
        Ok(read)
    }
}
