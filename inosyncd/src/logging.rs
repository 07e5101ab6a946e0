//! Log set-up: `-v` raises the level, `RUST_LOG` overrides it, `log_file` replaces
//! stderr and is reopened on SIGUSR1 (for logrotate); under systemd (journald on
//! stderr) lines carry no timestamp and no colour, since the journal adds its own.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// The log file, shared by every writer so that SIGUSR1 can swap it.
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

static LOG_FILE: OnceLock<LogFile> = OnceLock::new();

/// Appends to the log file: created 0600 whatever the umask, never through a
/// symlink, never a FIFO or a device.
fn open(path: &Path) -> std::io::Result<File> {
    // (O_NONBLOCK, which keeps the open from hanging on a FIFO, means nothing for
    // the regular file it lets through.)
    crate::own_files::open_regular(path, true)
}

/// Writes into whatever file [`LOG_FILE`] holds now.
struct LogFileWriter;

impl Write for LogFileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LOG_FILE.get() {
            Some(log) => log.file.lock().map_or(Ok(buf.len()), |mut f| f.write(buf)),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match LOG_FILE.get() {
            Some(log) => log.file.lock().map_or(Ok(()), |mut f| f.flush()),
            None => Ok(()),
        }
    }
}

/// Installs the global subscriber.
pub fn init(verbose: u8, log_file: Option<&Path>) -> anyhow::Result<()> {
    // The RPC library's per-request lines and spans would drown ours: its
    // `RPC{rpc.trace_id=... otel.kind=...}` span prefixed every control
    // command's line. Control commands are logged by `control.rs`, once, as
    // who did what; the library's own view is there at -vv.
    let level = match verbose {
        0 => "info,tarpc=warn",
        1 => "debug,tarpc=warn",
        _ => "trace,tarpc=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match log_file {
        Some(path) => {
            let file =
                open(path).with_context(|| format!("cannot open log_file {}", path.display()))?;
            let _ = LOG_FILE.set(LogFile {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            });
            builder
                .with_ansi(false)
                .with_writer(|| LogFileWriter)
                .init();
        }
        // journald stamps each line itself and shows no colours.
        None if std::env::var_os("JOURNAL_STREAM").is_some() => builder
            .with_ansi(false)
            .without_time()
            .with_writer(std::io::stderr)
            .init(),
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

/// SIGUSR1: reopen `log_file` (logrotate has moved the old one away).
pub fn reopen() {
    let Some(log) = LOG_FILE.get() else {
        return;
    };
    match open(&log.path) {
        Ok(new) => {
            if let Ok(mut file) = log.file.lock() {
                *file = new;
            }
            tracing::info!("SIGUSR1: log file {} reopened", log.path.display());
        }
        Err(e) => tracing::error!(
            "SIGUSR1: cannot reopen {}: {e}; still writing to the old file",
            log.path.display()
        ),
    }
}
