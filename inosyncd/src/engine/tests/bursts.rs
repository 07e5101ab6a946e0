//! A burst goes out in a few large runs: a batch whose first change came while
//! the last run ran waits for the changes to pause (`BURST_QUIET`), at most
//! twice as long as that run took; a change after a quiet moment goes at once.

use std::time::Duration;

use super::fake::synced;
use super::{Harness, Spec};
use crate::engine::pair::BURST_QUIET;

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn a_burst_waits_for_its_changes_to_pause() {
    let h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    assert_eq!(h.started(), 1);
    h.advance(MS * 50).await;
    h.change(0, "b").await;
    h.advance(MS * 50).await;
    h.change(0, "c").await;
    h.finish(0, synced()).await;
    assert_eq!(h.started(), 1, "went while changes were still pouring in");
    h.advance(BURST_QUIET - MS).await;
    assert_eq!(h.started(), 1);
    h.advance(MS * 2).await;
    assert_eq!(h.started(), 2, "did not go once the changes paused");
}

#[tokio::test(start_paused = true)]
async fn a_steady_stream_goes_out_within_twice_the_last_run() {
    let h = Harness::start(Spec::default()).await;
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
        if h.started() == 2 {
            break;
        }
        h.change(0, &format!("b{i}")).await;
        h.advance(MS * 10).await;
    }
    assert_eq!(h.started(), 2, "a steady stream held its batch back");
    // Due 200 ms (twice the run) after its first change, at 10 ms.
    let at = t0.elapsed();
    assert!(
        at >= MS * 210 && at <= MS * 220,
        "went at {at:?}, not 210 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn a_change_after_a_quiet_moment_goes_at_once() {
    let h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    h.advance(MS * 100).await;
    h.finish(0, synced()).await;
    h.advance(MS * 500).await;
    h.change(0, "b").await;
    assert_eq!(h.started(), 2);
}
