//! `inosyncctl verify` and `verify_interval`: each target compared with its
//! source by a dry run of a full sync, on a task of its own so the engine keeps
//! syncing meanwhile. Differences are reported (changes on their way, see
//! `on_the_way.rs`, are counted apart: they are not drift), recorded for
//! `status`, and with `repair` queued for a sync. A drift is logged at WARN with
//! its paths, escaped as `ls -b` prints them, with what it may be (the target
//! changed by hand, or a change the daemon missed) and how to repair it.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::on_the_way::OnTheWay;
use super::{Engine, Refusal, Reply};
use crate::escaped::ls_b;
use crate::rsync::Difference;
use crate::watcher::Change;

/// How many differing paths a report lists per pair.
const LISTED: usize = 20;

/// Verifies running at once, at most: each runs an rsync dry run per target,
/// so a client asking again and again (pipelined on one connection, or from
/// many) must not start processes without end (found by a review).
const MAX_VERIFIES: usize = 4;

/// One pair to compare.
struct Comparison {
    watch: u32,
    pair: u64,
    /// The dry run through the runner (the real rsync, or a test's fake).
    comparing: Option<super::runner::Comparing>,
    /// Why it cannot be compared (source missing).
    problem: Option<String>,
    /// What was on its way when the comparison started.
    on_the_way: OnTheWay,
}

/// Why a pair was not compared. Its text goes into the pair's last verify
/// (shown by `status`) and the log: the only places it becomes a string.
#[derive(Debug, thiserror::Error)]
enum NotCompared {
    /// The source cannot be compared (missing).
    #[error("{0}")]
    Problem(String),
    /// rsync's dry run failed.
    #[error(transparent)]
    Compare(#[from] crate::rsync::CompareError),
    /// The comparison used up its share of the time the request allowed.
    #[error("no answer within {:.1} s (its share of the time allowed)", .0.as_secs_f64())]
    NoAnswer(Duration),
    /// The pair was removed (a reload) before its comparison started.
    #[error("the pair went away")]
    PairGone,
}

/// How one comparison ended, and how long it took.
struct Compared {
    watch: u32,
    pair: u64,
    result: Result<Vec<Difference>, NotCompared>,
    took: Duration,
    on_the_way: OnTheWay,
}

/// Comparisons that finished, back to the engine.
pub(super) struct Verified {
    results: Vec<Compared>,
    repair: bool,
    reply: Option<Reply<inosync_proto::VerifyReport>>,
}

/// The time one comparison may take: an equal share of what is left until
/// `deadline` among the `left` comparisons still to run (what a quick one
/// leaves over goes to the next); unbounded without a deadline (a periodic
/// verify: rsync's own `--timeout` ends a target that stopped answering).
fn share(deadline: Option<Instant>, left: usize, now: Instant) -> Option<Duration> {
    let rest = deadline?.saturating_duration_since(now);
    Some(rest / u32::try_from(left.max(1)).unwrap_or(u32::MAX))
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
    /// Starts comparing every pair in scope (one watch, or all), one after
    /// the other; with a reply, each within its share of the time until the
    /// reply is due, so that every pair reports its own result.
    pub(super) fn start_verify(
        &mut self,
        scope: Option<u32>,
        repair: bool,
        checksum: bool,
        reply: Option<(Instant, Reply<inosync_proto::VerifyReport>)>,
    ) {
        if self.verifying >= MAX_VERIFIES {
            match reply {
                Some((_, reply)) => {
                    let _ = reply.send(Err(Refusal::VerifyBusy(self.verifying)));
                }
                None => tracing::info!(
                    "periodic verify skipped: {} verifies are running already",
                    self.verifying
                ),
            }
            return;
        }
        let (deadline, reply) = reply.unzip();
        let mut comparisons = Vec::new();
        for (id, watch) in self
            .watches
            .iter()
            .filter(|(id, _)| scope.is_none_or(|s| s == **id))
        {
            for (i, pair) in watch.pairs.iter().enumerate() {
                comparisons.push(Comparison {
                    watch: *id,
                    pair: pair.id(),
                    comparing: watch
                        .missing
                        .is_none()
                        .then(|| self.full_job(*id, i))
                        .flatten()
                        .map(|job| self.runner.compare(job, checksum)),
                    problem: watch
                        .missing
                        .clone()
                        .map(|why| format!("source missing: {why}")),
                    on_the_way: pair.on_the_way(),
                });
            }
        }
        self.verifying += 1;
        let done = self.verify_tx.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            let count = comparisons.len();
            for (i, c) in comparisons.into_iter().enumerate() {
                let started = Instant::now();
                let result = match (c.comparing, c.problem) {
                    (_, Some(problem)) => Err(NotCompared::Problem(problem)),
                    (Some(comparing), None) => match share(deadline, count - i, started) {
                        // Dropping the comparison kills its rsync (kill_on_drop).
                        Some(limit) => match tokio::time::timeout(limit, comparing).await {
                            Ok(result) => result.map_err(NotCompared::from),
                            Err(_) => Err(NotCompared::NoAnswer(limit)),
                        },
                        None => comparing.await.map_err(NotCompared::from),
                    },
                    (None, None) => Err(NotCompared::PairGone),
                };
                results.push(Compared {
                    watch: c.watch,
                    pair: c.pair,
                    result,
                    took: started.elapsed(),
                    on_the_way: c.on_the_way,
                });
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
        for compared in verified.results {
            let Compared {
                watch: id,
                pair: pair_id,
                result,
                took,
                mut on_the_way,
            } = compared;
            let Some(watch) = self.watches.get_mut(&id) else {
                continue;
            };
            let path = watch.spec.path.display().to_string();
            let Some(pair) = watch.pairs.iter_mut().find(|p| p.id() == pair_id) else {
                continue;
            };
            // On its way when the dry run started or now that it ended (a
            // batch may have finished meanwhile), changed while it ran (made
            // and synced meanwhile: the dry run may have seen it), or still
            // being written: not drift.
            on_the_way.merge(pair.on_the_way());
            if let Some(seen) = self.seen_while_verifying.get(&id) {
                on_the_way.merge(seen.clone());
            }
            self.settling.paths(id).for_each(|p| on_the_way.add(p));
            let (drift, coming, error) = match result {
                Ok(found) => {
                    let (coming, drift): (Vec<_>, Vec<_>) = found
                        .into_iter()
                        .partition(|d| on_the_way.covers(&d.change, &d.path));
                    (drift, coming.len() as u64, None)
                }
                Err(e) => (Vec::new(), 0, Some(e.to_string())),
            };
            pair.verified(LastVerify {
                at: SystemTime::now(),
                drift: drift.len() as u64,
                error: error.clone(),
            });
            let listed: Vec<String> = drift
                .iter()
                .take(LISTED)
                .map(|d| format!("{:<11} {}", d.change, ls_b(&d.path)))
                .collect();
            // Every verify says what it found, and counts it.
            let result = match (&error, drift.len()) {
                (Some(e), _) => {
                    tracing::warn!(
                        "{path} -> {}: verify could not compare after {took:.3?}: {e}",
                        pair.destination()
                    );
                    "failed"
                }
                (None, 0) if coming == 0 => {
                    tracing::info!(
                        "{path} -> {}: verify: equal ({took:.3?})",
                        pair.destination()
                    );
                    "equal"
                }
                (None, 0) => {
                    tracing::info!(
                        "{path} -> {}: verify: no drift; {coming} differing path(s) are on their \
                         way ({took:.3?})",
                        pair.destination()
                    );
                    "equal"
                }
                (None, n) => {
                    let repair = if verified.repair {
                        "repairing: the differing paths are queued for a sync".to_string()
                    } else {
                        format!(
                            "`inosyncctl verify {path} --repair` makes the target equal to the \
                             source again"
                        )
                    };
                    tracing::warn!(
                        "{path} -> {}: verify found {n} differing path(s) in {took:.3?}: {}; \
                         changed on the target by hand (or by another program), or a change the \
                         daemon missed (worth reporting if nobody touched the target); {repair}",
                        pair.destination(),
                        listed.join(", ")
                    );
                    "drift"
                }
            };
            self.metrics
                .record_verify(&path, pair.destination(), result, drift.len() as u64);
            // Only drift is repaired, and only drift hurries the pair: a
            // verify that found nothing leaves the delay of pending changes
            // and a failing target's backoff as they were.
            if verified.repair && !drift.is_empty() {
                use std::os::unix::ffi::OsStrExt;
                let root = watch.spec.path.as_os_str().as_bytes();
                for d in &drift {
                    pair.record(&d.path, now);
                    // Kept for the next start, as every change is (a
                    // same-size drift is what a full sync cannot see).
                    if let Some(journal) = self.journal.as_mut() {
                        journal.note(root, crate::pending_journal::Kind::Path, &d.path);
                    }
                }
                if let Some(journal) = self.journal.as_mut() {
                    journal.flush();
                }
                pair.expedite(now);
            }
            report.pairs.push(inosync_proto::PairDrift {
                watch: path,
                destination: pair.destination().to_string(),
                count: drift.len() as u64,
                on_the_way: coming,
                paths: listed,
                error,
            });
        }
        if self.verifying == 0 {
            self.seen_while_verifying.clear();
        }
        if let Some(reply) = verified.reply {
            let _ = reply.send(Ok(report));
        }
    }

    /// Keeps what changes while comparisons run. A change made after a
    /// comparison took what is on its way, seen by its dry run, and synced
    /// before it ended is in neither look: without this it would be drift.
    pub(super) fn note_for_verify(&mut self, change: &Change) {
        let watch = match change {
            Change::Path { watch, .. }
            | Change::Made { watch, .. }
            | Change::Written { watch, .. }
            | Change::Tree { watch, .. }
            | Change::Unmounted { watch, .. }
            | Change::Everything { watch }
            | Change::Linked { watch, .. }
            | Change::LinkedInode { watch, .. }
            | Change::Kept { watch, .. }
            | Change::ChangedSince { watch, .. }
            | Change::RootGone { watch }
            | Change::Move { watch, .. }
            | Change::Renamed { watch, .. } => *watch,
        };
        let seen = self.seen_while_verifying.entry(watch).or_default();
        match change {
            Change::Path { rel, .. } | Change::Made { rel, .. } | Change::Written { rel, .. } => {
                seen.add(rel)
            }
            Change::Tree { rel, .. } | Change::Unmounted { rel, .. } => seen.add_tree(rel),
            Change::Move { from, to, .. } | Change::Renamed { from, to, .. } => {
                seen.add(from);
                seen.add(to);
            }
            Change::Everything { .. }
            | Change::Linked { .. }
            | Change::LinkedInode { .. }
            | Change::RootGone { .. } => seen.merge(OnTheWay::everything()),
            // No full sync: the paths its search finds come as changes of
            // their own (a difference found before them is one).
            Change::ChangedSince { .. } | Change::Kept { .. } => {}
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
