//! `inosyncctl add`: start watching a tree, and say where its mirror is (each
//! destination as the daemon resolved it) and how it is watched.

use inosync_proto::AddWatch;

use crate::client::{CallError, Connection};
use crate::{check_seconds, print_json};

/// Sends the request and prints the reply.
pub async fn run(connection: &Connection, request: AddWatch, json: bool) -> Result<(), CallError> {
    if let Some(delay) = request.delay {
        check_seconds("--delay", delay)?;
    }
    let watch = connection.add(request).await?;
    if json {
        return print_json(&watch);
    }
    // Escaped as `status` shows them: a control character in a name never
    // reaches the terminal.
    let destinations: Vec<String> = watch
        .targets
        .iter()
        .map(|t| crate::status_table::shown(&t.destination))
        .collect();
    let watched = if watch.backend == "fanotify" {
        "every directory, by fanotify".to_string()
    } else {
        format!("{} directories", watch.watched_dirs)
    };
    outln!(
        "watching {} ({watched}); full sync to {} started",
        crate::status_table::shown(&watch.path),
        destinations.join(", ")
    );
    Ok(())
}
