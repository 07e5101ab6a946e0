//! `inosyncctl verify` and `verify_interval`: each target compared with its
//! source by a dry run of a full sync, on a task of its own so the engine keeps
//! syncing meanwhile. Differences are reported (paths still pending are not
//! drift: they are on their way), recorded for `status`, and with `repair`
//! queued for a sync. A drift found is a bug: it is logged at WARN with paths.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{Engine, Reply};
use crate::rsync::{self, Difference, Job};

/// How many differing paths a report lists per pair.
const LISTED: usize = 20;

/// One pair to compare.
struct Comparison {
    watch: u32,
    pair: u64,
    job: Option<Job>,
    /// Why it cannot be compared (source missing).
    problem: Option<String>,
}

/// How one comparison ended, and how long it took.
type Compared = (u32, u64, Result<Vec<Difference>, String>, Duration);

/// Comparisons that finished, back to the engine.
pub(super) struct Verified {
    results: Vec<Compared>,
    repair: bool,
    reply: Option<Reply<inosync_proto::VerifyReport>>,
}

/// What `status` shows of a pair's last verify.
#[derive(Debug, Clone)]
pub struct LastVerify {
    /// When it finished.
    pub at: SystemTime,
    /// Paths that differed.
    pub drift: u64,
    /// Why it could not compare.
    pub error: Option<String>,
}

impl Engine {
    /// Starts comparing every pair in scope (one watch, or all).
    pub(super) fn start_verify(
        &mut self,
        scope: Option<u32>,
        repair: bool,
        checksum: bool,
        reply: Option<Reply<inosync_proto::VerifyReport>>,
    ) {
        let mut comparisons = Vec::new();
        for (id, watch) in self
            .watches
            .iter()
            .filter(|(id, _)| scope.is_none_or(|s| s == **id))
        {
            for (i, pair) in watch.pairs.iter().enumerate() {
                comparisons.push(Comparison {
                    watch: *id,
                    pair: pair.id,
                    job: watch
                        .missing
                        .is_none()
                        .then(|| self.full_job(*id, i))
                        .flatten(),
                    problem: watch
                        .missing
                        .clone()
                        .map(|why| format!("source missing: {why}")),
                });
            }
        }
        self.verifying += 1;
        let done = self.verify_tx.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            for c in comparisons {
                let started = Instant::now();
                let result = match (c.job, c.problem) {
                    (_, Some(problem)) => Err(problem),
                    (Some(job), None) => rsync::compare(&job, checksum).await,
                    (None, None) => Err("the pair went away".into()),
                };
                results.push((c.watch, c.pair, result, started.elapsed()));
            }
            let _ = done.send(Verified {
                results,
                repair,
                reply,
            });
        });
    }

    /// Takes in finished comparisons: records, logs, repairs, answers.
    pub(super) fn finish_verify(&mut self, verified: Verified) {
        self.verifying = self.verifying.saturating_sub(1);
        let now = Instant::now();
        let mut report = inosync_proto::VerifyReport {
            pairs: Vec::new(),
            repaired: verified.repair,
        };
        for (id, pair_id, result, took) in verified.results {
            let Some(watch) = self.watches.get_mut(&id) else {
                continue;
            };
            let path = watch.spec.path.display().to_string();
            let Some(pair) = watch.pairs.iter_mut().find(|p| p.id == pair_id) else {
                continue;
            };
            let (drift, error) = match result {
                // Changes still pending are on their way, not drift; nor is
                // the temp file of a transfer running now.
                Ok(found) => (
                    found
                        .into_iter()
                        .filter(|d| !pair.is_pending(&d.path))
                        .filter(|d| {
                            d.change != "*deleting"
                                || !rsync::file_of_temp(&d.path)
                                    .is_some_and(|f| pair.is_pending(&f))
                        })
                        .collect::<Vec<_>>(),
                    None,
                ),
                Err(e) => (Vec::new(), Some(e)),
            };
            pair.last_verify = Some(LastVerify {
                at: SystemTime::now(),
                drift: drift.len() as u64,
                error: error.clone(),
            });
            let listed: Vec<String> = drift
                .iter()
                .take(LISTED)
                .map(|d| format!("{} {}", d.change, String::from_utf8_lossy(&d.path)))
                .collect();
            // Every verify says what it found, and counts it.
            let result = match (&error, drift.len()) {
                (Some(e), _) => {
                    tracing::warn!(
                        "{path} -> {}: verify could not compare after {took:.3?}: {e}",
                        pair.destination
                    );
                    "failed"
                }
                (None, 0) => {
                    tracing::info!("{path} -> {}: verify: equal ({took:.3?})", pair.destination);
                    "equal"
                }
                (None, n) => {
                    tracing::warn!(
                        "{path} -> {}: verify found {n} differing path(s) in {took:.3?} (a bug to \
                         report){}: {}",
                        pair.destination,
                        if verified.repair { "; repairing" } else { "" },
                        listed.join(", ")
                    );
                    "drift"
                }
            };
            self.metrics
                .record_verify(&path, &pair.destination, result, drift.len() as u64);
            if verified.repair {
                for d in &drift {
                    pair.record(&d.path, now);
                }
                pair.hurry(now);
            }
            report.pairs.push(inosync_proto::PairDrift {
                watch: path,
                destination: pair.destination.clone(),
                count: drift.len() as u64,
                paths: listed,
                error,
            });
        }
        if let Some(reply) = verified.reply {
            let _ = reply.send(Ok(report));
        }
    }

    /// Every `verify_interval`, a comparison of everything, with repair.
    pub(super) fn schedule_periodic_verify(&mut self) {
        let Some(due) = self.next_verify else {
            return;
        };
        let now = Instant::now();
        if now < due || self.verifying > 0 {
            return;
        }
        self.next_verify = Some(now + Duration::from_secs_f64(self.config.verify_interval));
        tracing::info!("periodic verify of every watch (verify_interval)");
        self.start_verify(None, true, false, None);
    }
}
