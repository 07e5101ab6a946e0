//! When batches start: the delay and its re-timing, one batch per pair,
//! `max_parallel`, pause and resume, independent targets, full syncs.

use std::time::Duration;

use inosync_proto::TargetState;

use super::fake::synced;
use super::{Harness, Spec, paths};
use crate::watcher::Change;

const MS: Duration = Duration::from_millis(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn a_batch_starts_when_the_delay_from_its_first_change_is_up() {
    let h = Harness::start(Spec {
        delay: 10.0,
        ..Spec::default()
    })
    .await;
    h.change(0, "a").await;
    h.advance(secs(5)).await;
    h.change(0, "b").await;
    h.advance(secs(5) - MS).await;
    assert_eq!(h.started(), 0, "started before the delay was up");
    h.advance(MS * 2).await;
    assert_eq!(
        h.started(),
        1,
        "the later change did not push the batch back"
    );
    assert_eq!(paths(&h.job(0)), Some(vec!["a".into(), "b".into()]));
}

#[tokio::test(start_paused = true)]
async fn changes_during_a_run_wait_for_it_and_form_one_next_batch() {
    let h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    assert_eq!(h.started(), 1);
    for name in ["b", "c", "b"] {
        h.change(0, name).await;
    }
    h.advance(secs(60)).await;
    assert_eq!(h.started(), 1, "a second batch ran beside the first");
    assert_eq!(h.state(0, 0).await, TargetState::Syncing);
    h.finish(0, synced()).await;
    assert_eq!(h.started(), 2);
    assert_eq!(paths(&h.job(1)), Some(vec!["b".into(), "c".into()]));
}

#[tokio::test(start_paused = true)]
async fn no_more_than_max_parallel_runs_at_once() {
    let h = Harness::start(Spec {
        watches: 3,
        targets: 2,
        max_parallel: 2,
        ..Spec::default()
    })
    .await;
    for w in 0..3 {
        h.change(w, "f").await;
    }
    assert_eq!(h.started(), 2);
    assert_eq!(h.status().await.running, 2);
    h.finish(0, synced()).await;
    assert_eq!(h.started(), 3, "a freed slot was not used");
    assert_eq!(h.status().await.running, 2);
    for i in 1..6 {
        h.finish(i, synced()).await;
    }
    assert_eq!(h.started(), 6, "every pair got its run, two at a time");
    assert_eq!(h.status().await.running, 0);
}

#[tokio::test(start_paused = true)]
async fn the_oldest_due_batch_gets_the_free_slot() {
    let h = Harness::start(Spec {
        watches: 3,
        max_parallel: 1,
        ..Spec::default()
    })
    .await;
    h.change(0, "first").await;
    h.change(2, "second").await;
    h.advance(secs(1)).await;
    h.change(1, "third").await;
    h.finish(0, synced()).await;
    assert!(h.job(1).source.ends_with("src2"), "{:?}", h.job(1).source);
    h.finish(1, synced()).await;
    assert!(h.job(2).source.ends_with("src1"));
}

#[tokio::test(start_paused = true)]
async fn a_shorter_delay_re_times_pending_batches() {
    let h = Harness::start(Spec {
        delay: 3600.0,
        ..Spec::default()
    })
    .await;
    h.change(0, "a").await;
    h.advance(secs(10)).await;
    assert_eq!(h.started(), 0);
    h.set_delay(None, 5.0).await;
    assert_eq!(h.started(), 1, "due 5 s after a change made 10 s ago");
}

#[tokio::test(start_paused = true)]
async fn a_longer_delay_for_one_watch_holds_its_batch_longer() {
    let h = Harness::start(Spec {
        watches: 2,
        delay: 1.0,
        ..Spec::default()
    })
    .await;
    h.set_delay(Some(1), 30.0).await;
    h.change(0, "a").await;
    h.change(1, "b").await;
    h.advance(secs(2)).await;
    assert_eq!(h.started(), 1);
    h.advance(secs(28)).await;
    assert_eq!(h.started(), 2);
}

#[tokio::test(start_paused = true)]
async fn pause_holds_batches_and_resume_lets_them_go() {
    let h = Harness::start(Spec::default()).await;
    h.pause(true).await;
    h.change(0, "a").await;
    h.advance(secs(600)).await;
    assert_eq!(h.started(), 0);
    assert_eq!(h.state(0, 0).await, TargetState::Paused);
    assert_eq!(h.status().await.watches[0].pending, 1);
    h.pause(false).await;
    h.settle().await;
    assert_eq!(h.started(), 1);
}

#[tokio::test(start_paused = true)]
async fn each_target_has_its_own_batch() {
    let h = Harness::start(Spec {
        targets: 2,
        ..Spec::default()
    })
    .await;
    h.change(0, "a").await;
    assert_eq!(h.started(), 2);
    h.finish(0, synced()).await;
    h.change(0, "b").await;
    // Target 0 is free and goes; target 1 still runs its first batch.
    assert_eq!(h.started(), 3);
    assert_eq!(h.job(2).destination, h.job(0).destination);
    assert_eq!(h.state(0, 1).await, TargetState::Syncing);
}

#[tokio::test(start_paused = true)]
async fn the_initial_sync_is_full_and_skips_the_delay() {
    let h = Harness::start(Spec {
        delay: 3600.0,
        initial_sync: true,
        ..Spec::default()
    })
    .await;
    assert!(h.started() >= 1);
    assert_eq!(paths(&h.job(0)), None, "not a full sync");
}

#[tokio::test(start_paused = true)]
async fn overflow_turns_the_next_batch_into_a_full_sync() {
    let h = Harness::start(Spec {
        delay: 1.0,
        ..Spec::default()
    })
    .await;
    h.change(0, "a").await;
    h.inject(vec![Change::Everything { watch: 0 }]).await;
    h.advance(secs(1)).await;
    // The path pending with it goes first, listed (compared whatever its size
    // and mtime, which a full sync would not do), then the full sync, at once.
    assert_eq!(h.started(), 1);
    assert_eq!(paths(&h.job(0)), Some(vec!["a".to_string()]));
    h.finish(0, synced()).await;
    assert_eq!(h.started(), 2);
    assert_eq!(paths(&h.job(1)), None);
}

#[tokio::test(start_paused = true)]
async fn the_periodic_full_sync_comes_every_interval() {
    let h = Harness::start(Spec {
        full_sync_interval: 60.0,
        ..Spec::default()
    })
    .await;
    h.advance(secs(59)).await;
    assert_eq!(h.started(), 0);
    h.advance(secs(2)).await;
    assert_eq!(h.started(), 1);
    assert_eq!(paths(&h.job(0)), None);
    h.finish(0, synced()).await;
    h.advance(secs(60)).await;
    assert_eq!(h.started(), 2);
}

#[tokio::test(start_paused = true)]
async fn sync_now_is_a_full_sync_without_waiting_for_the_delay() {
    let h = Harness::start(Spec {
        delay: 3600.0,
        ..Spec::default()
    })
    .await;
    h.sync_now().await;
    assert_eq!(h.started(), 1);
    assert_eq!(paths(&h.job(0)), None);
}

#[tokio::test(start_paused = true)]
async fn a_large_batch_uses_the_free_slots_and_counts_them() {
    let h = Harness::start(Spec {
        watches: 2,
        max_parallel: 4,
        ..Spec::default()
    })
    .await;
    h.pause(true).await;
    let many: Vec<Change> = (0..2500)
        .map(|i| Change::Path {
            watch: 0,
            rel: format!("f{i}").into_bytes(),
        })
        .collect();
    h.inject(many).await;
    h.change(1, "small").await;
    h.pause(false).await;
    let split: Vec<usize> = (0..h.started()).map(|i| h.job(i).split).collect();
    // One slot for the small batch; the 2,500 paths (one per 1,000) would take
    // three, but they lie in one directory: one process.
    assert_eq!(split.iter().sum::<usize>(), 2, "{split:?}");
    assert_eq!(h.status().await.running, 2);
    for i in 0..h.started() {
        h.finish(i, synced()).await;
    }
    assert_eq!(h.status().await.running, 0);
}

#[tokio::test(start_paused = true)]
async fn a_large_batch_over_many_directories_is_split_and_counted_once_per_process() {
    let names: Vec<&'static str> = (0..2500)
        .map(|i| &*Box::leak(format!("d{}/f{i}", i % 50).into_boxed_str()))
        .collect();
    let h = Harness::start(Spec {
        max_parallel: 4,
        files: Box::leak(names.clone().into_boxed_slice()),
        ..Spec::default()
    })
    .await;
    h.pause(true).await;
    let changes: Vec<Change> = names
        .iter()
        .map(|n| Change::Path {
            watch: 0,
            rel: n.as_bytes().to_vec(),
        })
        .collect();
    h.inject(changes).await;
    h.pause(false).await;
    assert_eq!(h.started(), 1, "one batch");
    assert_eq!(h.job(0).split, 3, "2,500 paths: three processes");
    assert_eq!(h.status().await.running, 3);
    h.finish(0, synced()).await;
    assert_eq!(h.status().await.running, 0);
}
