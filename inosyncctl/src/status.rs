//! `inosyncctl status [PATH] [--wide]`: the table, one watch in full, or JSON.

use crate::client::{CallError, Connection};
use crate::{paths, print_json, status_table};

/// Asks for the status and prints it as asked.
pub async fn run(
    connection: &Connection,
    path: Option<std::path::PathBuf>,
    wide: bool,
    json: bool,
) -> Result<(), CallError> {
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
    Ok(())
}
