//! The engine's state as `inosyncctl status` shows it.

use tokio::time::Instant;

use inosync_proto::{HeldPath, Progress, Status, TargetState, TargetStatus, WatchStatus};

use super::Engine;
use super::pair::Pair;
use crate::time_format::rfc3339;

impl Engine {
    /// How many trees are watched now (config and runtime ones): 0 means the
    /// daemon is idle, and the start says how to add one.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    pub(super) fn status(&self) -> Status {
        let (speed, speed_source) = self.global_speed();
        let (delay, delay_source) = self.global_delay();
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            speed,
            speed_source,
            delay,
            delay_source,
            max_parallel: self.config.max_parallel,
            config_file: self.config.source.as_ref().map(|p| p.display().to_string()),
            running: self.running as u32,
            sandbox_abi: self.policy.sandbox_abi(),
            // The first of what a restart would not know: runtime changes,
            // that this daemon was killed, the changes it has not synced.
            state_file_error: self
                .state_file_error
                .clone()
                .or_else(|| self.running_mark_error.clone())
                .or_else(|| {
                    self.journal
                        .as_ref()
                        .and_then(|j| j.error().map(String::from))
                }),
            watches: self
                .watches
                .keys()
                .map(|id| self.watch_status(*id))
                .collect(),
        }
    }

    pub(super) fn watch_status(&self, id: u32) -> WatchStatus {
        let w = &self.watches[&id];
        let now = Instant::now();
        let (speed, speed_source) = self.watch_speed(w);
        let (delay, delay_source) = self.watch_delay(w);
        WatchStatus {
            path: w.spec.path.display().to_string(),
            remote_path: w.spec.remote_path.clone(),
            paused: w.paused,
            // Files still being written count: they are changes on their way.
            pending: w.pairs.iter().map(Pair::pending_count).max().unwrap_or(0)
                + self.settling.count(id) as u64,
            watched_dirs: self.watcher.watched_dirs(id),
            backend: self
                .watcher
                .backend(id)
                .map_or("none", |b| b.name)
                .to_string(),
            backend_reason: self.watcher.backend(id).and_then(|b| b.reason.clone()),
            excludes: w.excludes.patterns().to_vec(),
            delay,
            speed,
            delay_source,
            speed_source,
            origin: w.origin,
            removing: w.removing.is_some(),
            degraded: self.watcher.degraded(id).map(str::to_string),
            source_missing: w.missing.clone(),
            targets: w
                .pairs
                .iter()
                .map(|p| TargetStatus {
                    target: p.target().to_string(),
                    destination: p.destination().to_string(),
                    state: target_state(p, w.missing.is_some(), w.holds_syncs()),
                    pending: p.pending_count(),
                    last_sync: p.last_sync().map(rfc3339),
                    last_error: w
                        .missing
                        .as_ref()
                        .map(|why| format!("source missing: {why}"))
                        .or_else(|| p.last_error().map(str::to_string)),
                    failures: p.failures(),
                    next_retry_in: p.retry_in(now).map(|d| d.as_secs_f64()),
                    last_verify: p.last_verify().map(|v| inosync_proto::LastVerify {
                        at: rfc3339(v.at),
                        drift: v.drift,
                        error: v.error.clone(),
                    }),
                    // At most SHOWN_HELD, each name cut at SHOWN_NAME: the
                    // answer must fit the control socket's frames (700 held
                    // paths of 130 KB each made `status` fail; an attack).
                    held: p
                        .held()
                        .shown()
                        .take(SHOWN_HELD)
                        .map(|(path, held, retrying_now)| HeldPath {
                            // Escaped as verify escapes names: a name with a
                            // newline must not print a line of its own.
                            path: shown_name(path),
                            reason: held.reason.clone(),
                            failures: held.failures,
                            retry_in: if retrying_now {
                                0.0
                            } else {
                                held.retry_at.saturating_duration_since(now).as_secs_f64()
                            },
                        })
                        .collect(),
                    progress: p.progress(now).map(|p| Progress {
                        bytes_done: p.bytes_done,
                        percent: p.percent,
                        rate: p.rate,
                        eta: p.eta,
                    }),
                })
                .collect(),
        }
    }
}

/// The state `status` shows for one pair, most telling first.
fn target_state(pair: &Pair, source_missing: bool, paused: bool) -> TargetState {
    if pair.is_running() {
        TargetState::Syncing
    } else if source_missing || pair.is_held_empty() {
        TargetState::SourceMissing
    } else if paused {
        TargetState::Paused
    } else if (pair.last_error().is_some() && pair.has_pending()) || !pair.held().is_empty() {
        TargetState::Retrying
    } else if pair.has_pending() {
        TargetState::Waiting
    } else {
        TargetState::Idle
    }
}

/// The most held paths `status` lists per target (`pending` counts them all).
const SHOWN_HELD: usize = 1_000;
/// The longest held path `status` shows whole, in bytes.
const SHOWN_NAME: usize = 1_024;

/// A held path as `status` shows it: escaped, and cut (its length said)
/// past [`SHOWN_NAME`] bytes.
fn shown_name(path: &[u8]) -> String {
    if path.len() <= SHOWN_NAME {
        return crate::escaped::ls_b(path);
    }
    format!(
        "{}... ({} bytes)",
        crate::escaped::ls_b(&path[..SHOWN_NAME]),
        path.len()
    )
}

#[cfg(test)]
mod shown_name_tests {
    use super::*;

    #[test]
    fn a_long_held_path_is_cut_and_its_length_said() {
        let long = vec![b'd'; 130_000];
        let shown = shown_name(&long);
        assert!(shown.len() < 1_100, "{}", shown.len());
        assert!(shown.ends_with("... (130000 bytes)"), "{shown}");
        assert_eq!(shown_name(b"a\nb"), crate::escaped::ls_b(b"a\nb"));
    }
}
