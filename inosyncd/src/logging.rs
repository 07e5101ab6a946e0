//! Log set-up: `-v` raises the level, `RUST_LOG` overrides it, `log_file` replaces
//! stderr; colours only on a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init(verbose: u8, log_file: Option<&Path>) -> anyhow::Result<()> {
    // The RPC library's per-request lines would drown ours at -v.
    let level = match verbose {
        0 => "info",
        1 => "debug,tarpc=info",
        _ => "trace,tarpc=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log_file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .init();
        }
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}
