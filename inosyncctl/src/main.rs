//! `inosyncctl`: steer a running inosyncd through its control socket.

#[macro_use]
mod output;
mod add;
mod cause;
mod cli;
mod client;
mod fit;
mod knobs;
mod man_page;
mod paths;
mod pause;
mod progress;
mod remove;
mod status;
mod status_table;
mod sync;
mod verify;
mod wait;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use inosync_proto::AddWatch;

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
    if let Some(why) = client::socket_path_too_long(&socket) {
        use clap::CommandFactory;
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, why)
            .exit();
    }
    let connection = Connection::open(&socket).await?;
    let json = cli.json;
    let changes_state = command.changes_runtime_state();
    let code = dispatch(&connection, command, json).await?;
    if changes_state {
        warn_if_unsaved(&connection).await;
    }
    Ok(code)
}

/// A runtime change was made: if the daemon could not keep it in its state
/// file, the administrator hears it now (on stderr; the change is in force,
/// so the exit code stays that of the command).
async fn warn_if_unsaved(connection: &Connection) {
    if let Ok(status) = connection.status().await
        && let Some(why) = &status.state_file_error
    {
        eprintln!("inosyncctl: {}", status_table::unsaved(why));
    }
}

/// Runs one command against the daemon.
async fn dispatch(
    connection: &Connection,
    command: Command,
    json: bool,
) -> Result<ExitCode, CallError> {
    match command {
        Command::Status { path, wide } => status::run(connection, path, wide, json).await?,
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
            add::run(connection, request, json).await?;
        }
        Command::Remove {
            path,
            discard,
            timeout,
        } => return remove::run(connection, &path, discard, timeout, json).await,
        Command::Speed { kbps, reset, watch } => {
            knobs::speed(connection, kbps, reset, watch.as_deref(), json).await?
        }
        Command::Delay {
            seconds,
            reset,
            watch,
        } => knobs::delay(connection, seconds, reset, watch.as_deref(), json).await?,
        Command::Sync {
            path,
            wait,
            timeout,
            force,
        } => return sync::run(connection, path.as_deref(), wait, timeout, force).await,
        Command::Wait {
            path,
            timeout,
            progress,
        } => {
            let path = path.as_deref().map(paths::resolve).transpose()?;
            let timeout = check_seconds("--timeout", timeout)?;
            return wait::run(connection, path, timeout, progress, json).await;
        }
        Command::Pause { path } => pause::run(connection, path.as_deref(), true).await?,
        Command::Resume { path } => pause::run(connection, path.as_deref(), false).await?,
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
