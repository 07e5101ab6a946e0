//! A burst goes out in a few large runs while other runs keep every CPU busy:
//! a batch whose first change came while the last run ran waits for the
//! changes to pause (`BURST_QUIET`), at most twice as long as that run took. A
//! target whose runs have CPUs free chases the burst instead, so little is
//! left when it ends. A change after a quiet moment goes at once.

use std::time::Duration;

use super::fake::synced;
use super::{Harness, Spec};
use crate::engine::lanes::cpus;
use crate::engine::pair::BURST_QUIET;

const MS: Duration = Duration::from_millis(1);

/// One target more than there are CPUs, all running at once: when the first
/// one's run ends, the others' still keep every CPU busy.
fn crowded() -> Spec {
    let targets = cpus() + 1;
    Spec {
        targets,
        max_parallel: u32::try_from(targets).expect("a few targets"),
        ..Spec::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_waits_for_its_changes_to_pause_while_the_cpus_are_busy() {
    let h = Harness::start(crowded()).await;
    let others = cpus();
    h.change(0, "a").await;
    assert_eq!(h.started(), others + 1);
    h.advance(MS * 50).await;
    h.change(0, "b").await;
    h.advance(MS * 50).await;
    h.change(0, "c").await;
    h.finish(0, synced()).await;
    assert_eq!(
        h.started(),
        others + 1,
        "went while changes were still pouring in"
    );
    h.advance(BURST_QUIET - MS).await;
    assert_eq!(h.started(), others + 1);
    h.advance(MS * 2).await;
    assert_eq!(
        h.started(),
        others + 2,
        "did not go once the changes paused"
    );
}

#[tokio::test(start_paused = true)]
async fn a_steady_stream_goes_out_within_twice_the_last_run() {
    let h = Harness::start(crowded()).await;
    let others = cpus();
    let t0 = tokio::time::Instant::now();
    h.change(0, "a").await;
    // A change every 10 ms from 10 ms on, while the first run (100 ms) runs
    // and after: never a pause.
    for i in 1..10 {
        h.advance(MS * 10).await;
        h.change(0, &format!("during{i}")).await;
    }
    h.advance(MS * 10).await;
    h.finish(0, synced()).await;
    for i in 1..=30 {
        if h.started() == others + 2 {
            break;
        }
        h.change(0, &format!("b{i}")).await;
        h.advance(MS * 10).await;
    }
    assert_eq!(
        h.started(),
        others + 2,
        "a steady stream held its batch back"
    );
    // Due 200 ms (twice the run) after its first change, at 10 ms.
    let at = t0.elapsed();
    assert!(
        at >= MS * 210 && at <= MS * 220,
        "went at {at:?}, not 210 ms"
    );
}

/// `contrib/bench/run`'s 10,000-file burst to one target: waiting for the
/// pause left most of the burst to send after its last write.
#[tokio::test(start_paused = true)]
async fn a_target_with_cpus_free_chases_a_burst() {
    let h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    assert_eq!(h.started(), 1);
    h.advance(MS * 50).await;
    h.change(0, "b").await;
    h.advance(MS * 50).await;
    h.change(0, "c").await;
    h.finish(0, synced()).await;
    assert_eq!(h.started(), 2, "waited for a pause with the CPUs free");
    let paths = h.job(1).paths.expect("listed");
    assert_eq!(paths.len(), 2, "{paths:?}");
}

#[tokio::test(start_paused = true)]
async fn a_change_after_a_quiet_moment_goes_at_once() {
    let h = Harness::start(crowded()).await;
    h.change(0, "a").await;
    h.advance(MS * 100).await;
    h.finish(0, synced()).await;
    h.advance(MS * 500).await;
    let before = h.started();
    h.change(0, "b").await;
    assert_eq!(h.started(), before + 1);
}
