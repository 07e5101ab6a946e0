//! `inosyncctl`: steer a running inosyncd through its control socket.

mod cause;
mod client;
mod fit;
mod man_page;
mod paths;
mod progress;
mod status_table;
mod wait;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use inosync_proto::{AddWatch, Setting, Source};

use crate::client::{CallError, Connection};

/// Control a running inosyncd: add and remove watches, change the bandwidth limit
/// and the event delay, trigger syncs, pause, and see what it is doing.
#[derive(Debug, Parser)]
#[command(name = "inosyncctl", version, about)]
struct Cli {
    /// Control socket of the daemon (default as for inosyncd).
    #[arg(
        short,
        long,
        value_name = "PATH",
        env = "INOSYNC_SOCKET",
        global = true
    )]
    socket: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Daemon, watches, targets: state, pending changes, last sync, errors.
    Status {
        /// Show only the watch of this directory, every field, errors whole.
        path: Option<PathBuf>,
        /// Every column, nothing cut, however wide.
        #[arg(long)]
        wide: bool,
    },
    /// Prometheus metrics (text format): syncs, failures, bytes, replication lag.
    Metrics,
    /// Start watching a directory; it gets a full sync first.
    Add {
        /// The directory (relative paths are taken from the current directory).
        path: PathBuf,
        /// Appended to each target (default: nothing with --target, each target is
        /// the destination itself; PATH with the config's default targets).
        #[arg(long, value_name = "P")]
        remote_path: Option<String>,
        /// A destination in rsync syntax (the mirror of PATH itself, unless
        /// --remote-path is given); repeat for more (default: the config's targets).
        #[arg(long = "target", value_name = "T")]
        targets: Vec<String>,
        /// An rsync-style exclude pattern; repeat for more.
        #[arg(long = "exclude", value_name = "PAT")]
        excludes: Vec<String>,
        /// Event delay for this watch, in seconds.
        #[arg(long, value_name = "S", value_parser = seconds)]
        delay: Option<f64>,
        /// Bandwidth limit for this watch, in KB/s (0 = unlimited).
        #[arg(long, value_name = "KBPS")]
        speed: Option<u32>,
    },
    /// Stop watching a directory; its pending changes are synced first.
    Remove {
        /// The watched directory.
        path: PathBuf,
        /// Drop pending changes instead of syncing them.
        #[arg(long)]
        discard: bool,
        /// Give up waiting for the pending changes after this many seconds (the
        /// watch is still removed once they are synced).
        #[arg(long, value_name = "SECONDS", default_value_t = 600.0, value_parser = seconds)]
        timeout: f64,
    },
    /// Show or set the bandwidth limit in KB/s (0 = unlimited); a running transfer
    /// is restarted with the new limit.
    Speed {
        /// The new limit; without it, the current one is shown.
        #[arg(conflicts_with = "reset")]
        kbps: Option<u32>,
        /// Drop the runtime limit: the config's applies again.
        #[arg(long)]
        reset: bool,
        /// Only this watch.
        #[arg(long, value_name = "PATH")]
        watch: Option<PathBuf>,
    },
    /// Show or set the event delay in seconds; pending batches are re-timed.
    Delay {
        /// The new delay; without it, the current one is shown.
        #[arg(allow_negative_numbers = true, value_parser = seconds, conflicts_with = "reset")]
        seconds: Option<f64>,
        /// Drop the runtime delay: the config's applies again.
        #[arg(long)]
        reset: bool,
        /// Only this watch.
        #[arg(long, value_name = "PATH")]
        watch: Option<PathBuf>,
    },
    /// Full sync now, of all watches or of one.
    Sync {
        /// Only this watch.
        path: Option<PathBuf>,
        /// Return only when the sync is done (exit 1 on timeout).
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600.0, value_parser = seconds)]
        timeout: f64,
        /// Accept the source as it is now, even when it is empty while its
        /// targets are not, or on another filesystem than recorded: the mirror is
        /// made equal to it, deletions included. Needs PATH.
        #[arg(long, requires = "path")]
        force: bool,
    },
    /// Return when nothing is pending or running (exit 0), or on timeout (exit 1,
    /// naming each busy watch and target and why).
    Wait {
        /// Only this watch.
        path: Option<PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600.0, value_parser = seconds)]
        timeout: f64,
        /// Show the running transfers meanwhile: a bar on a terminal, lines otherwise.
        #[arg(long)]
        progress: bool,
    },
    /// Hold syncs (of all watches, or one) while still recording changes.
    Pause {
        /// Only this watch.
        path: Option<PathBuf>,
    },
    /// Let held syncs go.
    Resume {
        /// Only this watch.
        path: Option<PathBuf>,
    },
    /// Re-read the config file (as SIGHUP does).
    Reload,
    /// Compare each target with its source by a dry run; list the paths that
    /// differ (exit 4 when some do).
    Verify {
        /// Only this watch.
        path: Option<PathBuf>,
        /// Queue the differing paths for a sync.
        #[arg(long)]
        repair: bool,
        /// Compare contents, not size and mtime (reads every file on both sides).
        #[arg(long)]
        checksum: bool,
        /// Answer within this many seconds. The pairs share them (what a quick
        /// one leaves goes to the next); one that does not answer within its
        /// share is reported as not compared, the others with their results.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600.0, value_parser = seconds)]
        timeout: f64,
    },
    /// Write the manual page inosyncctl.8 into DIR.
    #[command(hide = true)]
    ManPage {
        /// Where to write it.
        dir: PathBuf,
    },
    /// Print a shell completion script, e.g. `inosyncctl completions bash >
    /// /etc/bash_completion.d/inosyncctl`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Exit codes, as the README lists them.
pub(crate) const EXIT_REFUSED: u8 = 1;
const EXIT_UNREACHABLE: u8 = 3;
const EXIT_DRIFT: u8 = 4;

fn main() -> ExitCode {
    // Output piped into `head` and the like: end quietly when the reader has gone,
    // as other command-line tools do (exit 141, as a shell reports SIGPIPE). Not
    // by SIGPIPE itself: a daemon that refuses the connection must be an error
    // message, not a silent death on the socket.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("inosyncctl: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(CallError::Unreachable(message)) => {
            eprintln!("{message}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        Err(CallError::Refused(message)) => {
            eprintln!("inosyncctl: {message}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CallError> {
    let json = serde_json::to_string_pretty(value)
        .map_err(|e| CallError::Refused(format!("cannot encode JSON: {e}")))?;
    println!("{json}");
    Ok(())
}

/// Seconds on the command line: a usage error (exit 2, before the daemon is
/// asked) unless a finite number >= 0.
fn seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        Ok(_) => Err("must be a number of seconds >= 0".into()),
        Err(_) => Err("not a number of seconds".into()),
    }
}

fn check_seconds(what: &str, value: f64) -> Result<Duration, CallError> {
    if value.is_finite() && value >= 0.0 {
        Ok(Duration::from_secs_f64(value.min(1e7)))
    } else {
        Err(CallError::Refused(format!(
            "{what} {value}: must be seconds >= 0"
        )))
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CallError> {
    if let Command::ManPage { dir } = &cli.command {
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| man_page::render())
            .and_then(|page| std::fs::write(dir.join("inosyncctl.8"), page));
        return match written {
            Ok(()) => {
                println!("{}", dir.join("inosyncctl.8").display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(CallError::Refused(format!(
                "cannot write the manual page into {}: {e}",
                dir.display()
            ))),
        };
    }
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "inosyncctl",
            &mut std::io::stdout(),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(inosync_proto::default_socket);
    let connection = Connection::open(&socket).await?;
    let json = cli.json;
    match cli.command {
        Command::Status { path, wide } => {
            let mut status = connection.status().await?;
            let one = path.is_some();
            if let Some(path) = path {
                let wanted = paths::resolve(&path)?;
                status.watches.retain(|w| w.path == wanted);
                if status.watches.is_empty() {
                    return Err(CallError::Refused(format!("{wanted} is not watched")));
                }
            }
            if json {
                print_json(&status)?;
            } else if one && !wide {
                print!(
                    "{}",
                    status_table::render_watch(&status, &status.watches[0])
                );
            } else if wide {
                print!("{}", status_table::render_wide(&status));
            } else {
                print!("{}", status_table::render(&status));
            }
        }
        Command::Metrics => print!("{}", connection.metrics().await?),
        Command::Add {
            path,
            remote_path,
            targets,
            excludes,
            delay,
            speed,
        } => {
            let path = paths::existing_dir(&path)?;
            if let Some(delay) = delay {
                check_seconds("--delay", delay)?;
            }
            let watch = connection
                .add(AddWatch {
                    path,
                    remote_path,
                    targets,
                    excludes,
                    delay,
                    speed,
                })
                .await?;
            if json {
                print_json(&watch)?;
            } else {
                let destinations: Vec<&str> = watch
                    .targets
                    .iter()
                    .map(|t| t.destination.as_str())
                    .collect();
                let watched = if watch.backend == "fanotify" {
                    "every directory, by fanotify".to_string()
                } else {
                    format!("{} directories", watch.watched_dirs)
                };
                println!(
                    "watching {} ({watched}); full sync to {} started",
                    watch.path,
                    destinations.join(", ")
                );
            }
        }
        Command::Remove {
            path,
            discard,
            timeout,
        } => {
            let path = paths::resolve(&path)?;
            let timeout = check_seconds("--timeout", timeout)?;
            if !connection.remove(&path, discard, timeout).await? {
                eprintln!(
                    "inosyncctl: {path} is no longer watched, but its pending changes are not synced yet \
                     (see `inosyncctl status`); it goes once they are, or now with --discard"
                );
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
            if json {
                print_json(&serde_json::json!({ "removed": path }))?;
            } else {
                println!("removed {path}");
            }
        }
        Command::Speed { kbps, reset, watch } => {
            let watch = watch.as_deref().map(paths::resolve).transpose()?;
            let setting = connection.speed(kbps, reset, watch).await?;
            show_setting(json, "speed", &setting, |v| {
                if v == 0.0 {
                    "unlimited".into()
                } else {
                    format!("{v} KB/s")
                }
            })?;
        }
        Command::Delay {
            seconds,
            reset,
            watch,
        } => {
            if let Some(seconds) = seconds {
                check_seconds("delay", seconds)?;
            }
            let watch = watch.as_deref().map(paths::resolve).transpose()?;
            let setting = connection.delay(seconds, reset, watch).await?;
            show_setting(json, "delay", &setting, |v| format!("{v} s"))?;
        }
        Command::Sync {
            path,
            wait,
            timeout,
            force,
        } => {
            let path = path.as_deref().map(paths::resolve).transpose()?;
            let timeout = check_seconds("--timeout", timeout)?;
            connection.sync(path.clone(), force).await?;
            let what = path.as_deref().unwrap_or("every watch");
            if wait {
                if !connection.wait(path.clone(), timeout).await? {
                    eprintln!(
                        "inosyncctl: full sync of {what} not done after {} s",
                        timeout.as_secs_f64()
                    );
                    return Ok(ExitCode::from(EXIT_REFUSED));
                }
                println!("full sync of {what} done");
            } else {
                println!("full sync of {what} scheduled");
            }
        }
        Command::Wait {
            path,
            timeout,
            progress,
        } => {
            let path = path.as_deref().map(paths::resolve).transpose()?;
            let timeout = check_seconds("--timeout", timeout)?;
            return wait::run(&connection, path, timeout, progress, json).await;
        }
        Command::Pause { path } => {
            let path = path.as_deref().map(paths::resolve).transpose()?;
            connection.pause(path.clone(), true).await?;
            println!(
                "paused {}: changes are recorded, not synced",
                path.as_deref().unwrap_or("all watches")
            );
        }
        Command::Resume { path } => {
            let path = path.as_deref().map(paths::resolve).transpose()?;
            connection.pause(path.clone(), false).await?;
            println!("resumed {}", path.as_deref().unwrap_or("all watches"));
        }
        Command::Reload => {
            let summary = connection.reload().await?;
            println!("{summary}");
        }
        Command::Verify {
            path,
            repair,
            checksum,
            timeout,
        } => {
            let path = path.as_deref().map(paths::resolve).transpose()?;
            let timeout = check_seconds("--timeout", timeout)?;
            let report = connection.verify(path, repair, checksum, timeout).await?;
            let drift: u64 = report.pairs.iter().map(|p| p.count).sum();
            if json {
                print_json(&report)?;
            } else {
                for pair in &report.pairs {
                    match (&pair.error, pair.count) {
                        (Some(error), _) => {
                            println!(
                                "{} -> {}: not compared: {error}",
                                pair.watch, pair.destination
                            )
                        }
                        (None, 0) if pair.on_the_way == 0 => {
                            println!("{} -> {}: equal", pair.watch, pair.destination)
                        }
                        (None, 0) => println!(
                            "{} -> {}: no drift; {} differing path(s) are on their way",
                            pair.watch, pair.destination, pair.on_the_way
                        ),
                        (None, n) => {
                            println!("{} -> {}: {n} path(s) differ", pair.watch, pair.destination);
                            for line in &pair.paths {
                                println!("  {line}");
                            }
                            if n > pair.paths.len() as u64 {
                                println!("  ... and {} more", n - pair.paths.len() as u64);
                            }
                        }
                    }
                }
                if report.repaired && drift > 0 {
                    println!("the differing paths are queued for a sync");
                }
            }
            if drift > 0 {
                return Ok(ExitCode::from(EXIT_DRIFT));
            }
            if report.pairs.iter().any(|p| p.error.is_some()) {
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
        }
        Command::Completions { .. } | Command::ManPage { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn show_setting(
    json: bool,
    name: &str,
    setting: &Setting,
    format: impl Fn(f64) -> String,
) -> Result<(), CallError> {
    if json {
        return print_json(setting);
    }
    let source = match setting.source {
        Source::Default => "default",
        Source::Config => "from the config",
        Source::Runtime => "set at runtime",
        Source::Global => "the global value",
        Source::CommandLine => "from inosyncd's command line",
    };
    match &setting.watch {
        Some(watch) => println!("{watch}: {name} {} ({source})", format(setting.value)),
        None => println!("{name} {} ({source})", format(setting.value)),
    }
    Ok(())
}
