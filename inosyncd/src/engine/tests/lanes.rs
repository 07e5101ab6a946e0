//! `max_parallel` and `max_parallel_large`: small batches to many targets run
//! side by side; full syncs, trees compared whole and batches of many bytes
//! count against the large cap; the total cap holds for everything.

use super::fake::synced;
use super::{Harness, Spec};
use crate::engine::lanes::{BRIEF_MAX_BYTES, SMALL_MAX_BYTES};
use crate::watcher::Change;

fn tree(watch: u32, rel: &str) -> Change {
    Change::Tree {
        watch,
        rel: rel.as_bytes().to_vec(),
    }
}

/// One watch mirrored to sixteen targets, `max_parallel` and
/// `max_parallel_large` as shipped.
async fn sixteen_targets_with_the_default_caps() -> Harness {
    let defaults = crate::config::Config::default();
    Harness::start(Spec {
        targets: 16,
        max_parallel: defaults.max_parallel,
        max_parallel_large: defaults.max_parallel_large,
        ..Spec::default()
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn with_the_default_caps_a_one_file_change_goes_to_sixteen_targets_at_once() {
    let h = sixteen_targets_with_the_default_caps().await;
    h.change(0, "file").await;
    assert_eq!(
        h.started(),
        16,
        "small transfers waited behind the large cap"
    );
    assert_eq!(h.status().await.running, 16);
}

#[tokio::test(start_paused = true)]
async fn full_syncs_to_sixteen_targets_run_at_most_max_parallel_large_at_once() {
    let h = Harness::start(Spec {
        targets: 16,
        max_parallel: 32,
        max_parallel_large: 4,
        initial_sync: true,
        ..Spec::default()
    })
    .await;
    assert_eq!(h.started(), 4);
    h.finish(0, synced()).await;
    assert_eq!(h.started(), 5, "a freed large slot was not used");
    assert_eq!(h.status().await.running, 4);
}

#[tokio::test(start_paused = true)]
async fn a_large_batch_waiting_for_a_slot_holds_back_no_small_one() {
    let h = Harness::start(Spec {
        watches: 3,
        max_parallel: 8,
        max_parallel_large: 1,
        ..Spec::default()
    })
    .await;
    h.inject(vec![tree(0, "")]).await;
    h.inject(vec![tree(1, "")]).await;
    assert_eq!(h.started(), 1, "two trees compared whole at once");
    h.change(2, "file").await;
    assert_eq!(h.started(), 2, "the small change waited behind a large one");
    assert!(h.job(1).source.ends_with("src2"), "{:?}", h.job(1).source);
    h.finish(0, synced()).await;
    assert_eq!(h.started(), 3);
    assert!(h.job(2).source.ends_with("src1"), "{:?}", h.job(2).source);
}

#[tokio::test(start_paused = true)]
async fn a_change_of_many_bytes_counts_as_large() {
    let h = Harness::start(Spec {
        watches: 2,
        max_parallel: 8,
        max_parallel_large: 1,
        ..Spec::default()
    })
    .await;
    for w in 0..2 {
        let big = std::fs::File::create(h.root(w).join("big")).expect("create");
        big.set_len(SMALL_MAX_BYTES + 1).expect("sparse file");
        h.change(w as u32, "big").await;
    }
    assert_eq!(h.started(), 1, "two large transfers at once");
    h.finish(0, synced()).await;
    assert_eq!(h.started(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_parallel_caps_small_transfers_too() {
    let h = Harness::start(Spec {
        targets: 16,
        max_parallel: 3,
        max_parallel_large: 4,
        ..Spec::default()
    })
    .await;
    h.change(0, "file").await;
    assert_eq!(h.started(), 3);
    h.finish(1, synced()).await;
    assert_eq!(h.started(), 4, "a freed slot was not used");
    assert_eq!(h.status().await.running, 3);
}

#[tokio::test(start_paused = true)]
async fn a_large_run_that_moves_no_data_gives_its_slot_to_the_next() {
    let h = Harness::start(Spec {
        targets: 3,
        max_parallel: 8,
        max_parallel_large: 1,
        initial_sync: true,
        ..Spec::default()
    })
    .await;
    assert_eq!(h.started(), 1);
    h.advance(crate::engine::lanes::STALLED_AFTER - std::time::Duration::from_millis(1))
        .await;
    assert_eq!(h.started(), 1, "a slot given up before the run stalled");
    h.advance(std::time::Duration::from_millis(2)).await;
    assert_eq!(h.started(), 2, "a silent target kept the only large slot");
    assert_eq!(
        h.status().await.running,
        2,
        "the stalled run still counts in all"
    );
    // It ends: the slot it gave up is not given back twice.
    h.finish(0, synced()).await;
    assert_eq!(h.started(), 2);
    h.finish(1, synced()).await;
    assert_eq!(h.started(), 3);
}

/// A change to a target whose full sync waits for a large slot goes at once,
/// listed, in the small lane: the paths pending with a full sync go before
/// it anyway (see `Pair::start`). It waited for the large slot (20 s behind
/// hung runs, under inotify, whose start-up made a second full sync; a
/// black-box attack).
#[tokio::test(start_paused = true)]
async fn a_change_goes_before_its_targets_full_sync_waiting_for_a_large_slot() {
    let h = Harness::start(Spec {
        targets: 2,
        max_parallel: 8,
        max_parallel_large: 1,
        initial_sync: true,
        ..Spec::default()
    })
    .await;
    assert_eq!(h.started(), 1, "one full sync at a time");
    h.change(0, "file").await;
    assert_eq!(
        h.started(),
        2,
        "the change waited behind the full sync's slot"
    );
    assert!(last(&h).paths.is_some(), "it goes listed");
}

/// `count` changed paths in twenty directories of `watch` (made, so that the
/// paths are listed as they are, not cut to a missing ancestor).
fn many(h: &Harness, watch: u32, count: usize) -> Vec<Change> {
    for d in 0..20 {
        std::fs::create_dir_all(h.root(watch as usize).join(format!("b{d:02}"))).expect("mkdir");
    }
    (0..count)
        .map(|n| Change::Path {
            watch,
            rel: format!("b{:02}/f{n:05}", n % 20).into_bytes(),
        })
        .collect()
}

/// A burst of 2,000 small files is no large transfer: a few hundred
/// milliseconds of CPU, little data. To sixteen targets it goes out side by
/// side, not four at a time (before: the path count alone made it large, and
/// sixteen targets took four rounds or more).
#[tokio::test(start_paused = true)]
async fn a_burst_of_small_files_goes_to_sixteen_targets_at_once() {
    let h = sixteen_targets_with_the_default_caps().await;
    h.inject(many(&h, 0, 2004)).await;
    assert_eq!(
        h.started(),
        16,
        "a burst of small files waited for large slots"
    );
}

/// A large batch split over free slots leaves the slots other targets wait
/// for: four targets due at once each get one, instead of the first one
/// taking all four and the others waiting in turn.
#[tokio::test(start_paused = true)]
async fn a_split_batch_leaves_the_slots_other_targets_wait_for() {
    let h = Harness::start(Spec {
        targets: 4,
        max_parallel: 32,
        max_parallel_large: 4,
        ..Spec::default()
    })
    .await;
    h.inject(many(&h, 0, crate::engine::lanes::LARGE_MIN_PATHS + 10))
        .await;
    assert_eq!(h.started(), 4, "one target's split took the others' slots");
    for i in 0..4 {
        assert_eq!(h.job(i).split, 1, "target {i}");
    }
}

/// A root replaced (another directory put at the watch's path) is found when
/// the first target's batch starts: every target then needs a full
/// comparison, which is large, also for the targets whose one-file batch was
/// small when the pass began (before: all three started at once, beside
/// `max_parallel_large = 1`).
#[tokio::test(start_paused = true)]
async fn full_syncs_found_as_a_batch_starts_keep_to_the_large_cap() {
    let h = Harness::start(Spec {
        targets: 3,
        max_parallel: 8,
        max_parallel_large: 1,
        ..Spec::default()
    })
    .await;
    let root = h.root(0);
    std::fs::rename(&root, root.with_extension("old")).expect("move the root away");
    std::fs::create_dir(&root).expect("another root");
    std::fs::write(root.join("file"), "x").expect("write");
    h.change(0, "file").await;
    assert!(
        h.job(0).paths.is_none(),
        "not a full sync: {:?}",
        h.job(0).paths
    );
    assert_eq!(h.started(), 1, "full syncs beside the large cap");
}

#[tokio::test(start_paused = true)]
async fn only_a_few_small_files_neither_moved_nor_brought_in_make_a_brief_run() {
    let h = Harness::start(Spec {
        max_parallel: 8,
        ..Spec::default()
    })
    .await;
    std::fs::write(h.root(0).join("small"), vec![0u8; 1000]).expect("write");
    h.change(0, "small").await;
    assert!(last(&h).brief, "a 1,000-byte change was not brief");
    finish_all(&h).await;

    // Over a megabyte: an interrupted run would send it again.
    let two = std::fs::File::create(h.root(0).join("two")).expect("create");
    two.set_len(BRIEF_MAX_BYTES + 1).expect("sparse file");
    h.change(0, "two").await;
    assert!(
        !last(&h).brief,
        "{} bytes were brief: {:?}",
        BRIEF_MAX_BYTES + 1,
        last(&h).paths
    );
    finish_all(&h).await;

    // Five seconds at the speed limit: progress shows after one.
    h.set_speed(None, 100).await;
    std::fs::write(h.root(0).join("half"), vec![0u8; 512 << 10]).expect("write");
    h.change(0, "half").await;
    assert!(!last(&h).brief, "512 KiB at 100 KB/s was brief");
    finish_all(&h).await;
    h.set_speed(None, 0).await;

    // A tree from outside and a move: their bytes are not known.
    h.inject(vec![tree(0, "from-outside")]).await;
    assert!(!last(&h).brief, "a tree brought in was brief");
    finish_all(&h).await;
    h.inject(vec![Change::Move {
        watch: 0,
        from: b"small".to_vec(),
        to: b"moved".to_vec(),
        implied: Vec::new(),
    }])
    .await;
    assert!(!last(&h).brief, "a move was brief");
}

/// The job started last.
fn last(h: &Harness) -> crate::rsync::Job {
    h.job(h.started() - 1)
}

/// Every run ends synced, and any run that follows (an ended one is left
/// as it ended), until none is left.
async fn finish_all(h: &Harness) {
    let mut done = 0;
    while done < h.started() {
        done = h.started();
        for i in 0..done {
            h.finish(i, synced()).await;
        }
    }
}

/// The last targets of a burst to sixteen start while the others' runs keep
/// every CPU busy: split, they would only add processes.
#[tokio::test(start_paused = true)]
async fn no_batch_is_split_while_the_cpus_have_other_runs() {
    let names: Vec<&'static str> = (0..2500)
        .map(|i| &*Box::leak(format!("d{}/f{i}", i % 50).into_boxed_str()))
        .collect();
    let h = Harness::start(Spec {
        targets: 16,
        max_parallel: 64,
        files: Box::leak(names.clone().into_boxed_slice()),
        ..Spec::default()
    })
    .await;
    h.pause(true).await;
    h.inject(
        names
            .iter()
            .map(|n| Change::Path {
                watch: 0,
                rel: n.as_bytes().to_vec(),
            })
            .collect(),
    )
    .await;
    h.pause(false).await;
    assert_eq!(h.started(), 16);
    let split: Vec<usize> = (0..16).map(|i| h.job(i).split).collect();
    assert_eq!(split, vec![1; 16], "split while the CPUs were busy");
}
