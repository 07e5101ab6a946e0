//! `inosyncctl`: steer a running inosyncd through its control socket.

mod client;
mod status_table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::client::{CallError, Connection};

/// Control a running inosyncd: status, wait.
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

    /// Print machine-readable JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Daemon, watches, targets: state, pending changes, last sync, errors.
    Status {
        /// Show only the watch of this directory.
        path: Option<PathBuf>,
    },
    /// Return when nothing is pending or running (exit 0), or on timeout (exit 1).
    Wait {
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600.0)]
        timeout: f64,
    },
}

/// Exit codes of SPEC §4.
const EXIT_REFUSED: u8 = 1;
const EXIT_UNREACHABLE: u8 = 3;

fn main() -> ExitCode {
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

async fn run(cli: Cli) -> Result<ExitCode, CallError> {
    let socket = cli.socket.clone().unwrap_or_else(client::default_socket);
    let connection = Connection::open(&socket).await?;
    match cli.command {
        Command::Status { path } => {
            let mut status = connection.status().await?;
            if let Some(path) = path {
                let wanted = std::path::absolute(&path)
                    .map_err(|e| CallError::Refused(format!("{}: {e}", path.display())))?;
                let wanted = wanted.canonicalize().unwrap_or(wanted);
                status
                    .watches
                    .retain(|w| std::path::Path::new(&w.path) == wanted);
                if status.watches.is_empty() {
                    return Err(CallError::Refused(format!(
                        "{} is not watched",
                        path.display()
                    )));
                }
            }
            if cli.json {
                let json = serde_json::to_string_pretty(&status)
                    .map_err(|e| CallError::Refused(format!("cannot encode status: {e}")))?;
                println!("{json}");
            } else {
                print!("{}", status_table::render(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Wait { timeout } => {
            if !(timeout.is_finite() && timeout >= 0.0) {
                return Err(CallError::Refused(format!(
                    "--timeout {timeout}: must be seconds >= 0"
                )));
            }
            let idle = connection
                .wait(Duration::from_secs_f64(timeout.min(1e7)))
                .await?;
            if cli.json {
                println!("{}", serde_json::json!({ "idle": idle }));
            }
            if idle {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("inosyncctl: still busy after {timeout} s");
                Ok(ExitCode::from(EXIT_REFUSED))
            }
        }
    }
}
