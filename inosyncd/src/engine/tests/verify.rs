//! `verify` in the engine, its dry runs answered by the fake runner: drift is
//! reported and, with repair, queued; what is on its way is not drift; a
//! comparison that fails is that pair's error.

use std::time::Duration;

use inosync_proto::VerifyReport;
use tokio::time::Instant;

use super::super::Command;
use super::{Harness, Spec, paths};
use crate::rsync::Difference;

fn differs(path: &str) -> Difference {
    Difference {
        change: ">f+++++++++".into(),
        path: path.as_bytes().to_vec(),
    }
}

async fn verify(h: &Harness, repair: bool) -> VerifyReport {
    let report = h
        .ask(|reply| Command::Verify {
            path: None,
            repair,
            checksum: false,
            deadline: Instant::now() + Duration::from_secs(30),
            reply,
        })
        .await
        .expect("verify answered");
    h.settle().await;
    report
}

fn destination(h: &Harness) -> String {
    format!("{}/", h.dir.path().join("dst0-0").display())
}

#[tokio::test(start_paused = true)]
async fn drift_is_reported_and_repair_queues_it() {
    let h = Harness::start(Spec::default()).await;
    h.comparisons
        .answer(&destination(&h), Ok(vec![differs("lost")]));
    let report = verify(&h, false).await;
    assert_eq!(report.pairs.len(), 1);
    assert_eq!(report.pairs[0].count, 1, "{:?}", report.pairs[0]);
    assert_eq!(h.started(), 0, "a verify without repair synced");
    let report = verify(&h, true).await;
    assert_eq!(report.pairs[0].count, 1);
    assert_eq!(h.started(), 1);
    assert_eq!(paths(&h.job(0)), Some(vec!["lost".to_string()]));
    assert_eq!(h.comparisons.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_change_on_its_way_is_not_drift() {
    let h = Harness::start(Spec {
        delay: 10.0,
        ..Spec::default()
    })
    .await;
    h.change(0, "a").await;
    h.comparisons
        .answer(&destination(&h), Ok(vec![differs("a"), differs("b")]));
    let report = verify(&h, false).await;
    assert_eq!(report.pairs[0].count, 1, "{:?}", report.pairs[0]);
    assert_eq!(report.pairs[0].on_the_way, 1);
}

#[tokio::test(start_paused = true)]
async fn a_comparison_that_fails_is_its_pairs_error_and_repairs_nothing() {
    let h = Harness::start(Spec {
        targets: 2,
        ..Spec::default()
    })
    .await;
    h.comparisons
        .answer(&destination(&h), Err("connection refused".into()));
    let other = format!("{}/", h.dir.path().join("dst0-1").display());
    h.comparisons.answer(&other, Ok(vec![differs("lost")]));
    let report = verify(&h, true).await;
    assert_eq!(report.pairs.len(), 2);
    assert_eq!(report.pairs[0].error.as_deref(), Some("connection refused"));
    assert_eq!(report.pairs[1].count, 1);
    assert_eq!(h.started(), 1, "only the pair with drift is repaired");
    assert!(h.job(0).destination.ends_with("dst0-1/"));
}
