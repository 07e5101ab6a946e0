//! `inosyncctl wait --progress`: while waiting, show how far the running transfers
//! have got — a bar on a terminal, plain lines otherwise (logs, scripts).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use inosync_proto::Status;

use crate::client::{CallError, Connection};

/// One line about where the daemon stands, and the average percent of the
/// transfers that report progress.
fn summarize(status: &Status) -> (String, Option<u64>) {
    let pending: u64 = status
        .watches
        .iter()
        .flat_map(|w| &w.targets)
        .map(|t| t.pending)
        .sum();
    let transfers: Vec<String> = status
        .watches
        .iter()
        .flat_map(|w| &w.targets)
        .filter_map(|t| {
            let p = t.progress.as_ref()?;
            Some(format!(
                "{} {}% {} ETA {}",
                t.destination, p.percent, p.rate, p.eta
            ))
        })
        .collect();
    let percents: Vec<u64> = status
        .watches
        .iter()
        .flat_map(|w| &w.targets)
        .filter_map(|t| t.progress.as_ref().map(|p| u64::from(p.percent)))
        .collect();
    let average =
        (!percents.is_empty()).then(|| percents.iter().sum::<u64>() / percents.len() as u64);
    let line = format!(
        "{} rsync running, {pending} change(s) pending{}{}",
        status.running,
        if transfers.is_empty() { "" } else { "; " },
        transfers.join("; ")
    );
    (line, average)
}

/// Polls `status` every half second until `waiting` answers.
pub async fn show_while(
    connection: &Connection,
    waiting: impl Future<Output = Result<bool, CallError>>,
) -> Result<bool, CallError> {
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = ProgressBar::new(100);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos:>3}% {wide_msg}") {
            bar.set_style(style);
        }
        bar
    });
    tokio::pin!(waiting);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last = String::new();
    loop {
        tokio::select! {
            result = &mut waiting => {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                return result;
            }
            _ = tick.tick() => {
                let (line, percent) = summarize(&connection.status().await?);
                match &bar {
                    Some(bar) => {
                        bar.set_position(percent.unwrap_or(0));
                        bar.set_message(line);
                    }
                    None if line != last => {
                        outln!("{line}");
                        last = line;
                    }
                    None => {}
                }
            }
        }
    }
}
