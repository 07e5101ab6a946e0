//! Deterministic tests of the engine: the real engine loop on a paused tokio
//! clock, real (empty) watch roots, and a scripted fake runner in place of rsync.
//! Every scheduling rule is checked in virtual time: a "60 s backoff" test takes
//! milliseconds.

mod bursts;
mod control;
mod deletes;
mod fake;
mod lanes;
mod lifecycle;
mod moves;
mod retries;
mod scheduling;
mod verify;
mod written;

use std::path::PathBuf;
use std::time::Duration;

use inosync_proto::{Status, TargetState};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{Command, Engine, Setup};
use crate::config::{Config, WatchConfig};
use crate::rsync::{Job, Outcome};
use crate::state_file::RuntimeState;
use crate::watcher::Change;
use fake::{FakeRunner, Runs};

/// How the engine under test is set up.
#[derive(Clone)]
struct Spec {
    watches: usize,
    targets: usize,
    delay: f64,
    max_parallel: u32,
    max_parallel_large: u32,
    /// Targets that do not exist yet (a first sync), instead of mirrors
    /// holding a file.
    empty_targets: bool,
    /// The settings also written to `inosync.toml` in the test's directory,
    /// which the engine then has as its config file (for `reload`).
    config_file: bool,
    initial_sync: bool,
    full_sync_interval: f64,
    /// The global `delete`.
    delete: crate::config::DeleteMode,
    /// Files (with their directories) in the root of watch 0 before the start.
    files: &'static [&'static str],
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            watches: 1,
            targets: 1,
            delay: 0.0,
            max_parallel: 4,
            max_parallel_large: 4,
            empty_targets: false,
            config_file: false,
            initial_sync: false,
            full_sync_interval: 0.0,
            delete: crate::config::DeleteMode::Always,
            files: &[],
        }
    }
}

/// The harness's settings as a config file says them (what `reload` reads).
fn toml_of(config: &Config) -> String {
    let mut text = format!(
        "delay = {:?}\nmax_parallel = {}\nmax_parallel_large = {}\ninitial_sync = {}\n\
         full_sync_interval = {:?}\nverify_interval = 0\nbackend = \"inotify\"\n",
        config.delay,
        config.max_parallel,
        config.max_parallel_large,
        config.initial_sync,
        config.full_sync_interval
    );
    for watch in &config.watches {
        text.push_str(&watch_toml(
            &watch.path,
            watch.targets.as_deref().unwrap_or_default(),
        ));
    }
    text
}

/// One `[[watch]]` table mirroring `path` to `targets` (each the destination
/// itself).
fn watch_toml(path: &std::path::Path, targets: &[String]) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "\n[[watch]]\npath = {:?}\nremote_path = \"\"\ntargets = [{}]\n",
        path.display().to_string(),
        targets.join(", ")
    )
}

/// The engine running on its own task, with handles to steer and observe it.
struct Harness {
    dir: tempfile::TempDir,
    commands: mpsc::Sender<Command>,
    stop: watch::Sender<u32>,
    runs: Runs,
    /// What `verify`'s dry runs find.
    comparisons: fake::Comparisons,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Harness {
    async fn start(spec: Spec) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            delay: spec.delay,
            max_parallel: spec.max_parallel,
            max_parallel_large: spec.max_parallel_large,
            initial_sync: spec.initial_sync,
            full_sync_interval: spec.full_sync_interval,
            delete: spec.delete,
            // No periodic verify: the tests that verify ask for it.
            verify_interval: 0.0,
            // Changes are injected: no need to mark the whole filesystem (and a
            // fanotify listener would hold directories of other tests open).
            backend: crate::config::Backend::Inotify,
            ..Config::default()
        };
        for w in 0..spec.watches {
            let root = dir.path().join(format!("src{w}"));
            std::fs::create_dir(&root).expect("mkdir root");
            std::fs::write(root.join("file"), "x").expect("write file");
            for file in spec.files.iter().filter(|_| w == 0) {
                let path = root.join(file);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).expect("mkdir");
                }
                std::fs::write(path, "x").expect("write");
            }
            let targets = (0..spec.targets)
                .map(|t| {
                    let target = dir.path().join(format!("dst{w}-{t}"));
                    // A mirror from before, unless the test wants a first sync.
                    if !spec.empty_targets {
                        std::fs::create_dir(&target).expect("mkdir target");
                        std::fs::write(target.join("old"), "x").expect("write target");
                    }
                    format!("{}/", target.display())
                })
                .collect();
            config.watches.push(WatchConfig {
                targets: Some(targets),
                ..WatchConfig::new(root.canonicalize().expect("canonical root"), String::new())
            });
        }
        if spec.config_file {
            let file = dir.path().join("inosync.toml");
            std::fs::write(&file, toml_of(&config)).expect("write config");
            config.source = Some(file);
        }
        let runner = FakeRunner::default();
        let runs = runner.runs.clone();
        let comparisons = runner.comparisons.clone();
        let engine = Engine::new(Setup {
            config,
            cli_delay: None,
            cli_backend: None,
            state_file: None,
            runtime: RuntimeState::default(),
            ssh_dir: None,
            owner: None,
            runner: Box::new(runner),
            pretend: false,
        })
        .expect("engine starts");
        let (commands, command_rx) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(0);
        let task = tokio::spawn(engine.run(command_rx, stop_rx, Duration::from_secs(30)));
        let harness = Harness {
            dir,
            commands,
            stop,
            runs,
            comparisons,
            task: Some(task),
        };
        harness.settle().await;
        harness
    }

    /// The root of watch `w`.
    fn root(&self, w: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("src{w}"))
            .canonicalize()
            .expect("root")
    }

    /// Lets the engine take in everything sent so far: after two round trips it
    /// has been through its loop (due batches started) since the first was sent.
    async fn settle(&self) {
        for _ in 0..2 {
            let _ = self.status().await;
        }
    }

    async fn status(&self) -> Status {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Status(tx))
            .await
            .expect("engine alive");
        rx.await.expect("status answered")
    }

    /// `rel` changed in watch `w` (as if inotify said so).
    async fn change(&self, w: u32, rel: &str) {
        self.inject(vec![Change::Path {
            watch: w,
            rel: rel.as_bytes().to_vec(),
        }])
        .await;
    }

    async fn inject(&self, changes: Vec<Change>) {
        self.commands
            .send(Command::Inject(changes))
            .await
            .expect("engine alive");
        self.settle().await;
    }

    /// Moves the virtual clock on and lets the engine act on it.
    async fn advance(&self, by: Duration) {
        tokio::time::advance(by).await;
        self.settle().await;
    }

    /// How many runs were started so far.
    fn started(&self) -> usize {
        self.runs.count()
    }

    /// The job of run `i`.
    fn job(&self, i: usize) -> Job {
        self.runs.job(i)
    }

    /// Ends run `i` with `outcome` and lets the engine take it in.
    async fn finish(&self, i: usize, outcome: Outcome) {
        self.runs.finish(i, outcome);
        // The run's task must deliver the outcome before the engine's next turn.
        tokio::task::yield_now().await;
        self.settle().await;
    }

    /// The state of target `t` of watch `w`.
    async fn state(&self, w: usize, t: usize) -> TargetState {
        self.status().await.watches[w].targets[t].state
    }

    /// Sends a command; a refusal comes back in the words the socket sends.
    async fn ask<T>(&self, make: impl FnOnce(super::Reply<T>) -> Command) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.expect("engine alive");
        rx.await
            .expect("answered")
            .map_err(|refusal| refusal.to_string())
    }

    /// `pause` (or `resume`) every watch.
    async fn pause(&self, paused: bool) {
        self.ask(|reply| Command::Pause {
            path: None,
            paused,
            reply,
        })
        .await
        .expect("pause answered");
        self.settle().await;
    }

    /// `sync` (a full sync now) of every watch.
    async fn sync_now(&self) {
        self.ask(|reply| Command::Sync {
            path: None,
            force: false,
            reply,
        })
        .await
        .expect("sync answered");
        self.settle().await;
    }

    /// `delay SECONDS [--watch W]`.
    async fn set_delay(&self, watch: Option<usize>, seconds: f64) {
        let path = watch.map(|w| self.root(w).display().to_string());
        self.ask(|reply| Command::Delay {
            seconds: Some(seconds),
            reset: false,
            path,
            reply,
        })
        .await
        .expect("delay set");
        self.settle().await;
    }

    /// `speed --reset` and `delay --reset` (`--watch W`).
    async fn reset_knobs(&self, watch: Option<usize>) {
        let path = watch.map(|w| self.root(w).display().to_string());
        let p = path.clone();
        self.ask(|reply| Command::Speed {
            kbps: None,
            reset: true,
            path: p,
            reply,
        })
        .await
        .expect("speed reset");
        self.ask(|reply| Command::Delay {
            seconds: None,
            reset: true,
            path,
            reply,
        })
        .await
        .expect("delay reset");
        self.settle().await;
    }

    /// `speed KBPS [--watch W]`.
    async fn set_speed(&self, watch: Option<usize>, kbps: u32) {
        let path = watch.map(|w| self.root(w).display().to_string());
        self.ask(|reply| Command::Speed {
            kbps: Some(kbps),
            reset: false,
            path,
            reply,
        })
        .await
        .expect("speed set");
        self.settle().await;
    }

    /// Sends SIGTERM's worth of stop (`n` signals in all so far).
    fn signal(&self, n: u32) {
        self.stop.send_replace(n);
    }

    /// Whether the engine loop has ended.
    fn stopped(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

/// Paths of a run's job, as strings.
fn paths(job: &Job) -> Option<Vec<String>> {
    job.paths.as_ref().map(|paths| {
        paths
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    })
}
