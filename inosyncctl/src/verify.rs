//! `inosyncctl verify`: what the comparison found, per (watch, target), and
//! the exit code a script acts on (4 drift, 1 a pair not compared).

use std::process::ExitCode;

use inosync_proto::VerifyReport;

use crate::client::CallError;
use crate::{EXIT_DRIFT, EXIT_REFUSED, print_json};

/// Prints the report (text or `--json`) and returns the exit code.
pub fn show(report: &VerifyReport, json: bool) -> Result<ExitCode, CallError> {
    let drift: u64 = report.pairs.iter().map(|p| p.count).sum();
    if json {
        print_json(report)?;
    } else {
        for pair in &report.pairs {
            // Escaped as `status` shows them.
            let watch = crate::status_table::shown(&pair.watch);
            let destination = crate::status_table::shown(&pair.destination);
            match (&pair.error, pair.count) {
                (Some(error), _) => {
                    outln!("{watch} -> {destination}: not compared: {error}")
                }
                (None, 0) if pair.on_the_way == 0 => {
                    outln!("{watch} -> {destination}: equal")
                }
                (None, 0) => outln!(
                    "{watch} -> {destination}: no drift; {} differing path(s) are on their way",
                    pair.on_the_way
                ),
                (None, n) => {
                    outln!("{watch} -> {destination}: {n} path(s) differ");
                    for line in &pair.paths {
                        outln!("  {line}");
                    }
                    if n > pair.paths.len() as u64 {
                        outln!("  ... and {} more", n - pair.paths.len() as u64);
                    }
                }
            }
        }
        if report.repaired && drift > 0 {
            outln!("the differing paths are queued for a sync");
        }
    }
    if drift > 0 {
        return Ok(ExitCode::from(EXIT_DRIFT));
    }
    if report.pairs.iter().any(|p| p.error.is_some()) {
        return Ok(ExitCode::from(EXIT_REFUSED));
    }
    Ok(ExitCode::SUCCESS)
}
