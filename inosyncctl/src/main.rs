//! `inosyncctl`: steer a running inosyncd through its control socket.

#[macro_use]
mod output;
mod add;
mod cause;
mod cli;
mod client;
mod fit;
mod man_page;
mod paths;
mod progress;
mod status_table;
mod verify;
mod wait;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use inosync_proto::{AddWatch, Setting, Source};

use crate::cli::{Cli, Command};
use crate::client::{CallError, Connection};

/// Exit codes, as the README lists them.
pub(crate) const EXIT_REFUSED: u8 = 1;
const EXIT_UNREACHABLE: u8 = 3;
pub(crate) const EXIT_DRIFT: u8 = 4;

fn main() -> ExitCode {
    // Everything on stdout goes through `out!`/`outln!` (output.rs): a reader
    // that went away ends the program quietly.
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
    outln!("{json}");
    Ok(())
}

pub(crate) fn check_seconds(what: &str, value: f64) -> Result<Duration, CallError> {
    if value.is_finite() && value >= 0.0 {
        Ok(Duration::from_secs_f64(value.min(1e7)))
    } else {
        Err(CallError::Refused(format!(
            "{what} {value}: must be seconds >= 0"
        )))
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CallError> {
    if let Some(dir) = &cli.man_pages {
        return man_page::write(dir)
            .map(|path| {
                outln!("{}", path.display());
                ExitCode::SUCCESS
            })
            .map_err(|e| {
                CallError::Refused(format!(
                    "cannot write the manual page below {}: {e}",
                    dir.display()
                ))
            });
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingSubcommand,
                "a command is needed (inosyncctl --help lists them)",
            )
            .exit();
    };
    if let Command::Completions { shell } = command {
        use clap::CommandFactory;
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "inosyncctl", &mut script);
        out!("{}", String::from_utf8_lossy(&script));
        return Ok(ExitCode::SUCCESS);
    }
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(inosync_proto::default_socket);
    let connection = Connection::open(&socket).await?;
    let json = cli.json;
    match command {
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
                out!(
                    "{}",
                    status_table::render_watch(&status, &status.watches[0])
                );
            } else if wide {
                out!("{}", status_table::render_wide(&status));
            } else {
                out!("{}", status_table::render(&status));
            }
        }
        Command::Metrics => out!("{}", connection.metrics().await?),
        Command::Add {
            path,
            remote_path,
            targets,
            excludes,
            delay,
            speed,
        } => {
            let request = AddWatch {
                path: paths::existing_dir(&path)?,
                remote_path,
                targets: targets
                    .iter()
                    .map(|t| paths::target(t))
                    .collect::<Result<_, _>>()?,
                excludes,
                delay,
                speed,
            };
            add::run(&connection, request, json).await?;
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
                outln!("removed {path}");
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
                        "inosyncctl: full sync of {what} not done after {} s:",
                        timeout.as_secs_f64()
                    );
                    let status = connection.status().await?;
                    for line in wait::busy_lines(&status, path.as_deref()) {
                        eprintln!("  {line}");
                    }
                    return Ok(ExitCode::from(EXIT_REFUSED));
                }
                outln!("full sync of {what} done");
            } else {
                outln!("full sync of {what} scheduled");
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
            outln!(
                "paused {}: changes are recorded, not synced",
                path.as_deref().unwrap_or("all watches")
            );
        }
        Command::Resume { path } => {
            let path = path.as_deref().map(paths::resolve).transpose()?;
            connection.pause(path.clone(), false).await?;
            outln!("resumed {}", path.as_deref().unwrap_or("all watches"));
        }
        Command::Reload => {
            let summary = connection.reload().await?;
            outln!("{summary}");
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
            return verify::show(&report, json);
        }
        Command::Completions { .. } => {}
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
        Some(watch) => outln!("{watch}: {name} {} ({source})", format(setting.value)),
        None => outln!("{name} {} ({source})", format(setting.value)),
    }
    Ok(())
}
