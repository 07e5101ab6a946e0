//! `inosyncd`: owns the inotify watches and the rsync scheduling, and serves the
//! control socket that `inosyncctl` talks to.

mod cli;
mod config;
mod control;
mod control_codec;
mod daemonize;
mod deep_paths;
mod engine;
mod escaped;
mod exclude;
mod fd_limit;
mod fsid;
#[cfg(test)]
mod hostile_input;
mod kernel_filesystems;
mod left_running;
mod listed_paths;
mod logging;
mod man;
mod man_config;
mod metrics_export;
mod notify;
mod own_files;
mod pending_journal;
mod rsync;
mod sandbox;
mod settings;
mod signals;
mod socket;
mod state_file;
mod time_format;
mod watcher;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tokio::sync::{mpsc, watch};

use crate::cli::Cli;
use crate::config::{Config, resolve_rsync};
use crate::daemonize::Readiness;
use crate::engine::runner::RsyncRunner;
use crate::engine::{Engine, Setup};
use crate::socket::{Access, ControlSocket};
use crate::state_file::{RuntimeState, StateFile};

/// How long running rsyncs may go on after SIGTERM before they are stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    signals::note_early_signals();
    let cli = Cli::parse();
    if let Some(dir) = &cli.man_pages {
        return match man::write(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("inosyncd: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(file) = &cli.convert {
        return match config::convert_file(file) {
            Ok((toml, warnings)) => {
                for warning in warnings {
                    eprintln!("inosyncd: warning: {warning}");
                }
                print!("{toml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("inosyncd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("inosyncd: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check {
        settings::print_check(&config);
        return ExitCode::SUCCESS;
    }
    if let Err(e) = logging::init(cli.verbose, config.log_file.as_deref()) {
        eprintln!("inosyncd: {e:#}");
        return ExitCode::FAILURE;
    }
    let readiness = if cli.daemon {
        match daemonize::fork() {
            Ok(readiness) => Some(readiness),
            Err(e) => {
                eprintln!("inosyncd: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("inosyncd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config, readiness)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("inosyncd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match (&cli.source, &cli.config) {
        (Some(_), Some(_)) => bail!("give either --config or SOURCE TARGET..., not both"),
        (Some(source), None) => Config::quick_start(source, &cli.targets)?,
        (None, Some(path)) => Config::load(path)?,
        (None, None) => Config::load(Path::new("/etc/inosync/inosync.toml"))?,
    };
    if let Some(delay) = cli.delay {
        config::checks::seconds(delay).map_err(|e| anyhow::anyhow!("--delay: {e}"))?;
        config.delay = delay;
        for watch in &mut config.watches {
            watch.delay = None;
        }
    }
    if let Some(backend) = cli.backend {
        config.backend = backend;
    }
    if !cli.pretend {
        config.rsync = resolve_rsync(&config.rsync).map_err(anyhow::Error::msg)?;
    }
    Ok(config)
}

async fn run(cli: Cli, config: Config, readiness: Option<Readiness>) -> anyhow::Result<()> {
    // Before anything else: a signal sent during the start-up waits for it.
    let signals = signals::Signals::install();
    let result = start(&cli, config).await;
    match (result, readiness) {
        (Ok(started), readiness) => {
            if let Some(readiness) = readiness {
                readiness.ready();
            }
            notify::notify(&format!("READY=1\nMAINPID={}", std::process::id()));
            started.serve(signals).await
        }
        (Err(e), Some(readiness)) => {
            readiness.failed(&format!("{e:#}"));
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// Everything set up and listening, not yet serving.
struct Started {
    engine: Engine,
    socket: ControlSocket,
    access: Access,
    pid_file: Option<PidFile>,
    metrics_listener: Option<tokio::net::TcpListener>,
    metrics_file: Option<PathBuf>,
}

/// A locked pid file, removed when the daemon exits.
struct PidFile {
    path: PathBuf,
    _lock: own_files::Lock,
}

impl PidFile {
    /// Writes our pid into `path` (0600, never through a symlink), holding a lock
    /// on it so that a second daemon given the same file is refused.
    fn create(path: &Path) -> anyhow::Result<PidFile> {
        use std::io::Write;
        let lock = own_files::Lock::try_acquire(path)
            .with_context(|| format!("cannot write pid file {}", path.display()))?
            .with_context(|| {
                format!(
                    "pid file {} is locked by another running inosyncd",
                    path.display()
                )
            })?;
        let mut file = lock.file();
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sets everything up in the order that makes a refused start harmless: first
/// the socket (a second daemon stops here), then the state file's lock, the pid
/// file, and only then the watches and their initial syncs.
async fn start(cli: &Cli, config: Config) -> anyhow::Result<Started> {
    let socket_path = cli
        .socket
        .clone()
        .unwrap_or_else(inosync_proto::default_socket);
    // Before any descriptor is spent: the sync path must not run out of them.
    match fd_limit::raise() {
        Ok((before, after)) if after > before => {
            tracing::info!("descriptor limit raised from {before} to {after} (the hard limit)")
        }
        Ok((_, limit)) => tracing::debug!("descriptor limit {limit}"),
        Err(e) => tracing::warn!("descriptor limit not raised: {e}"),
    }
    let access = Access::new(config.socket_group.as_deref())?;
    let socket = ControlSocket::bind(&socket_path, &access)?;
    // The socket is ours: what a killed daemon on it left running goes first.
    let owner = std::path::absolute(&socket_path).unwrap_or_else(|_| socket_path.clone());
    if !cli.pretend {
        left_running::stop_left_running(owner.as_os_str());
    }
    // A quick start keeps no state unless asked to: it must never read or change
    // the service's runtime settings.
    let state_path = match (&cli.state, &cli.source) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(StateFile::default_path()),
    };
    let state_file = state_path
        .map(|path| StateFile::open(path, config.source.as_deref()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let runtime = match &state_file {
        Some(file) => file.load().map_err(anyhow::Error::msg)?,
        None => RuntimeState::default(),
    };
    let pid_file = cli.pid_file.as_deref().map(PidFile::create).transpose()?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(metrics_export::bind(addr).await?),
        None => None,
    };
    let metrics_file = config.metrics_file.clone();
    let ssh_dir = ssh_control_dir(&socket_path, &config);
    let engine = Engine::new(Setup {
        config,
        cli_delay: cli.delay,
        cli_backend: cli.backend,
        state_file,
        runtime,
        ssh_dir,
        owner: Some(owner.into_os_string()),
        runner: Box::new(RsyncRunner),
        pretend: cli.pretend,
    })?;
    let watches = engine.watch_count();
    tracing::info!(
        "inosyncd {} ready: {watches} watch(es), control socket {}",
        env!("CARGO_PKG_VERSION"),
        socket_path.display()
    );
    if watches == 0 {
        tracing::info!(
            "no watch yet: add one with `inosyncctl add PATH --target DEST` (DEST is the \
             mirror itself), or with a [[watch]] in the config and `inosyncctl reload`"
        );
    }
    Ok(Started {
        engine,
        socket,
        access,
        pid_file,
        metrics_listener,
        metrics_file,
    })
}

/// Where ssh keeps its shared connections: a private directory beside the control
/// socket, created 0700 or verified to be ours and 0700. Anything else (another
/// user's directory could hijack root's connections) turns reuse off for this run.
fn ssh_control_dir(socket_path: &Path, config: &Config) -> Option<PathBuf> {
    let dir = own_files::parent_dir(socket_path).join("ssh");
    match own_files::private_dir(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            if config.ssh_reuse {
                tracing::warn!("no ssh connection reuse for this run: {e}");
            }
            None
        }
    }
}

impl Started {
    async fn serve(mut self, signals: std::io::Result<signals::Signals>) -> anyhow::Result<()> {
        let (command_tx, command_rx) = mpsc::channel(64);
        let (shutdown_tx, shutdown_rx) = watch::channel(0u32);
        let listener = self
            .socket
            .listener
            .take()
            .context("control socket already taken")?;
        let server = tokio::spawn(control::serve(
            listener,
            self.access.clone(),
            command_tx.clone(),
        ));
        if let Some(listener) = self.metrics_listener.take() {
            tokio::spawn(metrics_export::serve(listener, command_tx.clone()));
        }
        if let Some(path) = self.metrics_file.take() {
            tokio::spawn(metrics_export::write_file(path, command_tx.clone()));
        }
        // Without handlers the stop channel stays open (a closed one stops
        // the engine at once); the daemon then stops by SIGKILL or the socket.
        let _without_handlers = match signals {
            Ok(signals) => {
                tokio::spawn(signals.handle(command_tx, shutdown_tx));
                None
            }
            Err(e) => {
                tracing::error!("cannot install signal handlers: {e}");
                Some(shutdown_tx)
            }
        };
        let result = self
            .engine
            .run(command_rx, shutdown_rx, SHUTDOWN_GRACE)
            .await;
        server.abort();
        drop(self.pid_file);
        drop(self.socket);
        tracing::info!("inosyncd stopped");
        result
    }
}
