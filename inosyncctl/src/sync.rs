//! `inosyncctl sync [PATH] [--wait]`: a full sync now; with `--wait`, until it
//! is done, naming what is still busy when the time runs out.

use std::process::ExitCode;

use crate::client::{CallError, Connection};
use crate::{EXIT_REFUSED, check_seconds, paths, wait};

/// Asks for the full sync and, with `wait`, waits for it.
pub async fn run(
    connection: &Connection,
    path: Option<&std::path::Path>,
    wait: bool,
    timeout: f64,
    force: bool,
) -> Result<ExitCode, CallError> {
    let path = path.map(paths::resolve).transpose()?;
    let timeout = check_seconds("--timeout", timeout)?;
    connection.sync(path.clone(), force).await?;
    let what = path.as_deref().unwrap_or("every watch");
    if !wait {
        outln!("full sync of {what} scheduled");
        return Ok(ExitCode::SUCCESS);
    }
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
    Ok(ExitCode::SUCCESS)
}
