//! `inosyncctl pause [PATH]` and `resume [PATH]`: hold or release syncs.

use crate::client::{CallError, Connection};
use crate::paths;

/// Pauses (`paused`) or resumes one watch or all.
pub async fn run(
    connection: &Connection,
    path: Option<&std::path::Path>,
    paused: bool,
) -> Result<(), CallError> {
    let path = path.map(paths::resolve).transpose()?;
    connection.pause(path.clone(), paused).await?;
    let what = path.as_deref().unwrap_or("all watches");
    if paused {
        outln!("paused {what}: changes are recorded, not synced");
    } else {
        outln!("resumed {what}");
    }
    Ok(())
}
