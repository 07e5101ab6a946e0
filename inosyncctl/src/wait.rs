//! `inosyncctl wait [PATH]`: return once nothing is pending or running (in one
//! tree, or anywhere), and on timeout say what is still busy and why, so the
//! administrator does not have to read `status` to learn which watch, which
//! target, and what it is waiting for.

use std::process::ExitCode;
use std::time::Duration;

use inosync_proto::{Status, TargetState, TargetStatus, WatchStatus};

use crate::client::{CallError, Connection};
use crate::{EXIT_REFUSED, print_json, progress};

/// Runs `wait`: exit 0 when idle, 1 on timeout with each busy watch and target
/// named on stderr (and in `--json`, as `busy`).
pub async fn run(
    connection: &Connection,
    path: Option<String>,
    timeout: Duration,
    show_progress: bool,
    json: bool,
) -> Result<ExitCode, CallError> {
    let waiting = connection.wait(path.clone(), timeout);
    let idle = if show_progress {
        progress::show_while(connection, waiting).await?
    } else {
        waiting.await?
    };
    if idle {
        if json {
            print_json(&serde_json::json!({ "idle": true }))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = connection.status().await?;
    let busy = busy_lines(&status, path.as_deref());
    if json {
        print_json(&serde_json::json!({ "idle": false, "busy": busy }))?;
    }
    eprintln!("inosyncctl: still busy after {} s:", timeout.as_secs_f64());
    for line in &busy {
        eprintln!("  {line}");
    }
    Ok(ExitCode::from(EXIT_REFUSED))
}

/// One line per busy (watch, target) of the watches in scope: the watch, the
/// destination, and its state with what it waits for.
pub fn busy_lines(status: &Status, scope: Option<&str>) -> Vec<String> {
    let mut lines = Vec::new();
    for watch in status
        .watches
        .iter()
        .filter(|w| scope.is_none_or(|p| p == w.path))
    {
        for target in &watch.targets {
            if let Some(why) = why_busy(watch, target) {
                lines.push(format!("{} -> {}: {why}", watch.path, target.destination));
            }
        }
    }
    if lines.is_empty() {
        // Busy in a way no target shows (a file still being written, a
        // running verify): say so rather than nothing.
        lines.push("changes are being read or settled; no target is behind yet".into());
    }
    lines
}

/// What a target waits for, or `None` when it is idle with nothing held.
fn why_busy(watch: &WatchStatus, target: &TargetStatus) -> Option<String> {
    let pending = match target.pending {
        0 => String::new(),
        n => format!(", {n} pending"),
    };
    let held = match target.held.len() {
        0 => String::new(),
        n => format!(", {n} path(s) held apart and retried"),
    };
    let error = target
        .last_error
        .as_deref()
        .map(|e| format!(": {}", crate::cause::cause_first(e)))
        .unwrap_or_default();
    let state = match target.state {
        TargetState::Idle if target.pending == 0 && target.held.is_empty() => return None,
        TargetState::Idle => "idle".to_string(),
        TargetState::Paused => format!("paused (inosyncctl resume {} lets it go)", watch.path),
        TargetState::Retrying => {
            let when = match target.next_retry_in {
                Some(secs) if secs > 0.0 => format!(" in {}", crate::status_table::seconds(secs)),
                Some(_) => " now".to_string(),
                None => String::new(),
            };
            match target.held.iter().map(|h| h.failures).max() {
                // The target is fine; its held paths are what is retried.
                Some(most) if target.failures == 0 => {
                    let reason = target
                        .held
                        .iter()
                        .find(|h| h.failures == most)
                        .map(|h| format!(": {}", crate::cause::cause_first(&h.reason)))
                        .unwrap_or_default();
                    format!("retrying{when} its held paths after {most} failure(s){reason}")
                }
                _ => format!("retrying{when} after {} failure(s){error}", target.failures),
            }
        }
        TargetState::Syncing => {
            let syncing = match &target.progress {
                Some(p) => format!("syncing, {}% ({}, {} left)", p.percent, p.rate, p.eta),
                None => "syncing".to_string(),
            };
            // A failing target caught during one of its retries still says
            // why it fails.
            match target.failures {
                0 => syncing,
                n => format!("{syncing} (retrying after {n} failure(s){error})"),
            }
        }
        TargetState::Waiting => "waiting for its delay or a free rsync slot".to_string(),
        TargetState::SourceMissing => format!(
            "source missing: {}",
            watch
                .source_missing
                .as_deref()
                .unwrap_or("see inosyncctl status")
        ),
    };
    Some(format!("{state}{pending}{held}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(state: TargetState, failures: u32) -> TargetStatus {
        TargetStatus {
            target: "rsync://h/m/".into(),
            destination: "rsync://h/m/".into(),
            state,
            pending: 0,
            last_sync: None,
            last_error: (failures > 0).then(|| {
                "rsync exit 10 (error in socket I/O): rsync: failed to connect to h: \
                 Connection refused (111)"
                    .into()
            }),
            failures,
            next_retry_in: Some(4.0),
            progress: None,
            held: Vec::new(),
            last_verify: None,
        }
    }

    fn news() -> WatchStatus {
        WatchStatus {
            path: "/srv/news".into(),
            remote_path: String::new(),
            paused: false,
            pending: 0,
            watched_dirs: 1,
            backend: "inotify".into(),
            backend_reason: None,
            excludes: Vec::new(),
            delay: 0.0,
            speed: 0,
            delay_source: inosync_proto::Source::Default,
            speed_source: inosync_proto::Source::Default,
            origin: inosync_proto::Source::Config,
            removing: false,
            degraded: None,
            source_missing: None,
            targets: Vec::new(),
        }
    }

    #[test]
    fn a_failing_target_caught_mid_retry_still_says_why_it_fails() {
        let watch = news();
        let retrying = why_busy(&watch, &target(TargetState::Retrying, 2)).unwrap();
        let syncing = why_busy(&watch, &target(TargetState::Syncing, 2)).unwrap();
        for line in [&retrying, &syncing] {
            assert!(line.contains("after 2 failure(s)"), "{line}");
            assert!(line.contains("Connection refused"), "{line}");
        }
        assert!(syncing.starts_with("syncing (retrying"), "{syncing}");
        let healthy = why_busy(&watch, &target(TargetState::Syncing, 0)).unwrap();
        assert_eq!(healthy, "syncing");
    }

    /// A target whose runs succeed but for paths held apart is retried for
    /// them: it said "after 0 failure(s)" while each held path had failed 5
    /// times (found by two black-box attacks).
    #[test]
    fn a_target_retried_for_its_held_paths_counts_their_failures() {
        let watch = news();
        let mut held = target(TargetState::Retrying, 0);
        held.held = vec![inosync_proto::HeldPath {
            path: "deep/f".into(),
            reason: "the path is 4266 bytes long".into(),
            failures: 5,
            retry_in: 11.0,
        }];
        let line = why_busy(&watch, &held).unwrap();
        assert!(
            line.contains("held paths after 5 failure(s): the path is 4266 bytes long"),
            "{line}"
        );
        assert!(!line.contains("0 failure"), "{line}");
    }
}
