//! Prometheus metrics (`inosyncctl metrics`, `metrics_listen`, `metrics_file`):
//! counters kept as syncs finish, gauges read from the engine's state when the
//! text is asked for, encoded by the `prometheus` crate in the text format
//! Prometheus and node_exporter's textfile collector read.
//!
//! Labels: `watch` is the watch's path, `target` the destination rsync writes to.
//! What administrators alert on is `inosync_oldest_pending_seconds`: how long the
//! oldest change not yet on a target has waited (replication lag).

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, exponential_buckets,
};
use tokio::time::Instant;

use super::Engine;
use super::batch::FullReason;
use crate::rsync::Outcome;

const PAIR: &[&str] = &["watch", "target"];

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    syncs: IntCounterVec,
    duration: HistogramVec,
    bytes_sent: IntCounterVec,
    failures: IntCounterVec,
    full_syncs: IntCounterVec,
    verifies: IntCounterVec,
    verify_paths: IntCounterVec,
    overflows: IntCounter,
    overflows_seen: u64,
    pending: IntGaugeVec,
    oldest_pending: GaugeVec,
    consecutive_failures: IntGaugeVec,
    held: IntGaugeVec,
    watched_dirs: IntGaugeVec,
    rsync_running: IntGauge,
}

/// Registers `metric` (names are fixed and valid: a failure is a bug found by
/// the unit test).
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        tracing::error!("metric not registered: {e}");
    }
    metric
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("inosync_{name}"), help)
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let counters = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(opts(name, help), labels).expect("valid metric"),
            )
        };
        let int_gauges = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntGaugeVec::new(opts(name, help), labels).expect("valid metric"),
            )
        };
        let build = register(
            &registry,
            IntGaugeVec::new(
                opts("build_info", "The daemon's version; always 1 while it runs"),
                &["version"],
            )
            .expect("valid metric"),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Metrics {
            syncs: counters(
                "syncs_total",
                "rsync runs finished, by result (synced, failed, interrupted)",
                &["watch", "target", "result"],
            ),
            duration: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::from(opts("sync_duration_seconds", "How long each rsync run took"))
                        // 10 ms .. ~22 min.
                        .buckets(exponential_buckets(0.01, 2.0, 18).expect("valid buckets")),
                    PAIR,
                )
                .expect("valid metric"),
            ),
            bytes_sent: counters("bytes_sent_total", "Bytes rsync reported sending", PAIR),
            failures: counters("failures_total", "Failed rsync runs", PAIR),
            full_syncs: counters(
                "full_syncs_total",
                "Full syncs started, by reason",
                &["reason"],
            ),
            verifies: counters(
                "verifies_total",
                "Comparisons of a target with its source (verify, verify_interval), by \
                 result: equal, drift, failed",
                &["watch", "target", "result"],
            ),
            verify_paths: counters(
                "verify_differing_paths_total",
                "Paths verify found different on a target (changes the daemon missed)",
                PAIR,
            ),
            overflows: register(
                &registry,
                IntCounter::with_opts(opts(
                    "overflows_total",
                    "Kernel event queue overflows (each costs full syncs)",
                ))
                .expect("valid metric"),
            ),
            overflows_seen: 0,
            pending: int_gauges(
                "pending_paths",
                "Changed paths waiting for a sync (a pending full sync counts 1)",
                PAIR,
            ),
            oldest_pending: register(
                &registry,
                GaugeVec::new(
                    opts(
                        "oldest_pending_seconds",
                        "Age of the oldest change not yet on the target (replication lag; 0 when none)",
                    ),
                    PAIR,
                )
                .expect("valid metric"),
            ),
            held: int_gauges(
                "held_paths",
                "Paths rsync cannot sync (refused, too long), held apart and retried on their own",
                PAIR,
            ),
            consecutive_failures: int_gauges(
                "consecutive_failures",
                "Failed runs since the last success",
                PAIR,
            ),
            watched_dirs: int_gauges(
                "watched_directories",
                "Directories with an inotify watch (0 under fanotify, which needs none)",
                &["watch"],
            ),
            rsync_running: register(
                &registry,
                IntGauge::with_opts(opts("rsync_running", "rsync processes running now"))
                    .expect("valid metric"),
            ),
            registry,
        }
    }
}

impl Metrics {
    /// One rsync run ended.
    pub fn record_run(&self, watch: &str, target: &str, outcome: &Outcome) {
        let result = outcome.result.label();
        self.syncs.with_label_values(&[watch, target, result]).inc();
        self.duration
            .with_label_values(&[watch, target])
            .observe(outcome.elapsed.as_secs_f64());
        self.bytes_sent
            .with_label_values(&[watch, target])
            .inc_by(outcome.bytes_sent.unwrap_or(0));
        // Present from the first run on, so a rate can be taken before any failure.
        let failures = self.failures.with_label_values(&[watch, target]);
        if result == "failed" {
            failures.inc();
        }
    }

    /// A full sync started.
    pub fn record_full_sync(&self, reason: FullReason) {
        self.full_syncs.with_label_values(&[reason.label()]).inc();
    }

    /// A verify of one target ended: `result` is `equal`, `drift` or `failed`,
    /// `differing` the paths it found.
    pub fn record_verify(&self, watch: &str, target: &str, result: &str, differing: u64) {
        self.verifies
            .with_label_values(&[watch, target, result])
            .inc();
        self.verify_paths
            .with_label_values(&[watch, target])
            .inc_by(differing);
    }
}

impl Engine {
    /// The Prometheus text exposition (format 0.0.4) of everything now.
    pub(super) fn metrics_text(&mut self) -> String {
        let now = Instant::now();
        let m = &mut self.metrics;
        m.rsync_running.set(self.running as i64);
        let overflows = self.watcher.overflows();
        m.overflows
            .inc_by(overflows.saturating_sub(m.overflows_seen));
        m.overflows_seen = overflows;
        // Gauges describe what exists now: a removed watch leaves no series.
        m.pending.reset();
        m.oldest_pending.reset();
        m.consecutive_failures.reset();
        m.held.reset();
        m.watched_dirs.reset();
        for (id, watch) in &self.watches {
            let path = watch.spec.path.display().to_string();
            m.watched_dirs
                .with_label_values(&[path.as_str()])
                .set(self.watcher.watched_dirs(*id) as i64);
            for pair in &watch.pairs {
                let labels = [path.as_str(), pair.destination()];
                m.pending
                    .with_label_values(&labels)
                    .set(pair.pending_count() as i64);
                m.oldest_pending.with_label_values(&labels).set(
                    pair.oldest_pending()
                        .map_or(0.0, |t| now.duration_since(t).as_secs_f64()),
                );
                m.consecutive_failures
                    .with_label_values(&labels)
                    .set(i64::from(pair.failures()));
                m.held
                    .with_label_values(&labels)
                    .set(pair.held().shown_count() as i64);
            }
        }
        let mut text = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut text) {
            tracing::error!("cannot encode the metrics: {e}");
        }
        String::from_utf8_lossy(&text).into_owned()
    }
}
