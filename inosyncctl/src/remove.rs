//! `inosyncctl remove PATH`: stop watching a tree once its pending changes are
//! synced (or at once with `--discard`).

use std::process::ExitCode;

use crate::client::{CallError, Connection};
use crate::{EXIT_REFUSED, check_seconds, paths, print_json};

/// Asks for the removal; exit 1 when the changes are not synced in time.
pub async fn run(
    connection: &Connection,
    path: &std::path::Path,
    discard: bool,
    timeout: f64,
    json: bool,
) -> Result<ExitCode, CallError> {
    let path = paths::resolve(path)?;
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
        outln!("removed {}", crate::status_table::shown(&path));
    }
    Ok(ExitCode::SUCCESS)
}
