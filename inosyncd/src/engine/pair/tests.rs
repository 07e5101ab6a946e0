//! The pair's batch state, step by step.

use std::time::Duration;

use super::*;
use crate::rsync::{Outcome, RunResult};

#[test]
fn changes_during_a_run_go_to_the_next_batch() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"a", now);
    let batch = pair.start(run(), || false, now);
    assert_eq!(batch.paths, vec![b"a".to_vec()]);
    pair.record(b"b", now);
    assert_eq!(
        pair.due_at(Duration::ZERO, Cpus::Busy),
        None,
        "one batch runs at a time"
    );
    pair.finish(&ok(), now);
    assert_eq!(pair.due_at(Duration::ZERO, Cpus::Busy), Some(now));
    assert_eq!(pair.start(run(), || false, now).paths, vec![b"b".to_vec()]);
}

#[test]
fn failed_batch_is_kept_and_merged() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"a", now);
    pair.start(run(), || false, now);
    pair.record(b"b", now);
    pair.finish(&failed(), now);
    assert_eq!(pair.pending_count(), 2);
    assert_eq!(pair.failures, 1);
    assert!(pair.due_at(Duration::ZERO, Cpus::Busy).unwrap() >= now + Duration::from_secs(1));
    assert!(pair.retry_in(now).is_some(), "retrying");
}

/// A full sync that keeps failing while files change: the listed run of the
/// paths that go before each retry arrives, and the full sync keeps its
/// backoff, which grows (found by a review: each listed run reset it).
#[test]
fn a_failing_full_sync_keeps_its_backoff_through_the_listed_runs_before_it() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_full(now, false, FullReason::LostEvents);
    for round in 1..=3u32 {
        let batch = pair.start(run(), || false, now);
        assert!(batch.full, "round {round}");
        pair.finish(&failed(), now);
        assert_eq!(pair.failures, round);
        pair.record(format!("changed{round}").as_bytes(), now);
        let listed = pair.start(run(), || false, now);
        assert!(!listed.full, "round {round}: the paths go first");
        pair.finish(&ok(), now);
        assert_eq!(pair.failures, round, "round {round}: backoff reset");
        assert!(pair.last_error.is_some());
    }
}

#[test]
fn interrupted_batch_is_due_again_without_a_failure() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"a", now);
    let (stop, stopped) = oneshot::channel();
    pair.start(Run { stop, ..run() }, || false, now);
    assert!(pair.interrupt());
    drop(stopped);
    pair.finish(
        &Outcome {
            result: RunResult::Interrupted,
            ..ok()
        },
        now,
    );
    assert_eq!(pair.failures, 0);
    assert_eq!(pair.due_at(Duration::from_secs(60), Cpus::Busy), Some(now));
    assert_eq!(pair.start(run(), || false, now).paths, vec![b"a".to_vec()]);
}

#[test]
fn delay_counts_from_the_first_change() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"a", now);
    pair.record(b"b", now + Duration::from_secs(5));
    assert_eq!(
        pair.due_at(Duration::from_secs(10), Cpus::Busy),
        Some(now + Duration::from_secs(10))
    );
}

fn ok() -> Outcome {
    Outcome::bare(RunResult::Synced, Some(1))
}

fn failed() -> Outcome {
    Outcome {
        result: RunResult::Failed {
            class: crate::rsync::FailureClass::Transient,
            cause: "rsync exited with 10".into(),
        },
        ..ok()
    }
}

#[test]
fn a_target_down_for_long_keeps_memory_bounded() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    for i in 0..(MAX_PENDING_PATHS + 10) {
        pair.record(format!("dir{}/file{i}", i % 100).as_bytes(), now);
    }
    assert_eq!(pair.pending_count(), 1, "collapsed into one full sync");
    assert!(pair.start(run(), || false, now).full);
}

/// The replication lag counts from the change, through failed runs (issue 26).
#[test]
fn a_failed_batch_keeps_the_time_of_its_first_change() {
    let start = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"a", start);
    for i in 1..=3 {
        let at = start + Duration::from_secs(i * 10);
        pair.start(run(), || false, at);
        pair.finish(&failed(), at);
        assert_eq!(pair.oldest_pending(), Some(start), "after failure {i}");
    }
    // The delay has passed since the change: the backoff alone decides.
    let after = start + Duration::from_secs(30);
    let due = pair.due_at(Duration::from_secs(20), Cpus::Busy).unwrap();
    assert!(
        due > after && due < after + Duration::from_secs(6),
        "{:?}",
        due - after
    );
}

/// A held path is a change not yet on the target, as old as its batch's
/// first change, through every retry.
#[test]
fn a_held_path_keeps_the_time_of_its_change() {
    let start = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"stuck", start);
    let refused = || held("stuck", "denied");
    let mut at = start + Duration::from_secs(1);
    pair.start(run(), || false, at);
    pair.finish(&refused(), at);
    assert_eq!(pair.oldest_pending(), Some(start));
    // Its retry, and a failure of that: still as old.
    at += Duration::from_secs(5);
    let batch = pair.start(run(), || false, at);
    assert_eq!(batch.paths, vec![b"stuck".to_vec()]);
    assert_eq!(pair.oldest_pending(), Some(start));
    pair.finish(&refused(), at);
    assert_eq!(pair.oldest_pending(), Some(start));
}

/// A held path stays listed (and counted) while its retry runs: it is not
/// on the target until that retry succeeds, and `status` or the
/// `inosync_held_paths` gauge must not show it gone meanwhile.
#[test]
fn a_held_path_stays_listed_while_its_retry_runs() {
    let start = Instant::now();
    let mut pair = holding_stuck(start);
    let listed = |pair: &Pair| -> Vec<(Vec<u8>, bool)> {
        pair.held()
            .shown()
            .map(|(p, _, retrying_now)| (p.clone(), retrying_now))
            .collect()
    };
    assert_eq!(listed(&pair), [(b"stuck".to_vec(), false)]);
    let at = start + Duration::from_secs(5);
    pair.start(run(), || false, at);
    assert_eq!(listed(&pair), [(b"stuck".to_vec(), true)]);
    assert_eq!(pair.held().shown_count(), 1);
    // The retry succeeds: gone.
    pair.finish(&Outcome::bare(RunResult::Synced, Some(1)), at);
    assert!(listed(&pair).is_empty());
}

/// A retry that fails as a whole (the target unreachable) or is stopped (a
/// change of speed) puts its held paths back as held, with their reasons and
/// failure counts, not among the ordinary pending paths: `status` and the
/// gauge go on showing them until a retry of them succeeds.
#[test]
fn a_held_path_stays_held_when_its_retry_fails_or_is_stopped() {
    let start = Instant::now();
    let mut pair = holding_stuck(start);
    let shown = |pair: &Pair| -> Vec<(Vec<u8>, String, u32)> {
        pair.held()
            .shown()
            .map(|(p, h, _)| (p.clone(), h.reason.clone(), h.failures))
            .collect()
    };
    let expected = vec![(b"stuck".to_vec(), "denied".to_string(), 1)];
    let failed = Outcome::bare(
        RunResult::Failed {
            class: crate::rsync::FailureClass::Transient,
            cause: "connection refused".into(),
        },
        None,
    );
    let mut at = start + Duration::from_secs(5);
    for outcome in [failed, Outcome::bare(RunResult::Interrupted, None)] {
        let batch = pair.start(run(), || false, at);
        assert_eq!(batch.paths, vec![b"stuck".to_vec()]);
        pair.finish(&outcome, at);
        assert_eq!(shown(&pair), expected, "after {:?}", outcome.result);
        assert_eq!(pair.pending_count(), 1, "counted once");
        assert_eq!(pair.oldest_pending(), Some(start));
        at += Duration::from_secs(600);
    }
    // Its next retry carries it again, and a success ends it.
    let batch = pair.start(run(), || false, at);
    assert_eq!(batch.paths, vec![b"stuck".to_vec()]);
    pair.finish(&Outcome::bare(RunResult::Synced, Some(1)), at);
    assert!(shown(&pair).is_empty());
    assert!(!pair.has_pending());
}

/// A full sync while a path is held leaves it held: the full sync compares
/// sizes and mtimes (a same-size rewrite with its mtime kept is not seen)
/// and, under `delete = "running"`, deletes nothing, so the held change is
/// still owed after it, listed, when its retry is due (found by a black-box
/// attack: `chattr +i` on a target file, a same-size rewrite or a deletion
/// in the source, `inosyncctl sync`; the full sync "took" the held path, and
/// the target kept the old bytes while `wait` and `verify` said equal).
#[test]
fn a_full_sync_while_a_path_is_held_leaves_it_held_to_go_listed() {
    let start = Instant::now();
    let mut pair = holding_stuck(start);
    pair.record_full(start, true, FullReason::Interval);
    let full = pair.start(run(), || false, start);
    assert!(full.full);
    assert!(full.held_failures.is_empty(), "{:?}", full.held_failures);
    pair.finish(&ok(), start);
    assert_eq!(
        pair.held().shown_count(),
        1,
        "still held after the full sync"
    );
    let due = pair.due_at(Duration::ZERO, Cpus::Free);
    assert!(due.is_some_and(|at| at > start), "{due:?}");
    let retry = pair.start(run(), || false, start + Duration::from_secs(5));
    assert!(!retry.full);
    assert_eq!(retry.paths, vec![b"stuck".to_vec()]);
    pair.finish(&ok(), start + Duration::from_secs(5));
    assert_eq!(pair.held().shown_count(), 0);
    assert!(!pair.has_pending());
}

/// A full sync that fails (the target down) while a held path is due waits
/// its backoff like any failed run: the held path, which the full sync does
/// not take, must not make the pair due again at once (a review: a full
/// sync failing in milliseconds was started again in a loop).
#[test]
fn a_failed_full_sync_waits_its_backoff_whatever_is_held() {
    let start = Instant::now();
    let mut pair = holding_stuck(start);
    let at = start + Duration::from_secs(10);
    pair.record_full(at, true, FullReason::Requested);
    let full = pair.start(run(), || false, at);
    assert!(full.full);
    pair.finish(&failed(), at);
    let due = pair.due_at(Duration::ZERO, Cpus::Free);
    assert!(
        due.is_some_and(|due| due > at),
        "due again at once: {due:?}"
    );
    assert_eq!(pair.held().shown_count(), 1);
}

/// `inosyncctl sync` makes the held paths due at once, after the full sync:
/// the administrator fixed the target, most likely, and `wait` should not
/// wait out a backoff of minutes.
#[test]
fn a_sync_asked_for_makes_the_held_paths_due_after_it() {
    let start = Instant::now();
    let mut pair = holding_stuck(start);
    let at = start + Duration::from_millis(100);
    pair.record_full(at, true, FullReason::Requested);
    pair.start(run(), || false, at);
    pair.finish(&ok(), at);
    assert_eq!(pair.due_at(Duration::ZERO, Cpus::Free), Some(at));
    let retry = pair.start(run(), || false, at);
    assert_eq!(retry.paths, vec![b"stuck".to_vec()]);
}

/// A directory held for good (the target refuses its times) is retried as
/// listed, without what lies below it: drift below it is drift, for verify,
/// whether the retry waits or runs. It was on its way with all below it, so
/// a file edited on the target inside it was never reported.
#[test]
fn a_held_directory_hides_no_drift_below_it() {
    let start = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"dir", start);
    let refused = held("dir", "failed to set times");
    pair.start(run(), || false, start);
    pair.finish(&refused, start);
    let waiting = pair.on_the_way();
    assert!(waiting.covers(".d..t......", b"dir"));
    assert!(!waiting.covers(">f.st......", b"dir/file"));
    pair.start(run(), || false, start + Duration::from_secs(5));
    let retrying = pair.on_the_way();
    assert!(retrying.covers(".d..t......", b"dir"));
    assert!(!retrying.covers(">f.st......", b"dir/file"));
}

/// A run that synced all but `path`, which rsync refused with `cause`.
fn held(path: &str, cause: &str) -> Outcome {
    Outcome {
        result: RunResult::Partial {
            held: vec![path.as_bytes().to_vec()],
            cause: cause.into(),
        },
        ..Outcome::bare(RunResult::Synced, Some(1))
    }
}

/// A pair whose first run, at `start`, had `stuck` refused (held once).
fn holding_stuck(start: Instant) -> Pair {
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"stuck", start);
    pair.start(run(), || false, start);
    pair.finish(&held("stuck", "denied"), start);
    pair
}

/// A run of the batch nobody stops or watches.
fn run() -> Run {
    Run {
        stop: oneshot::channel().0,
        speed: 0,
        progress: watch::channel(None).1,
    }
}

#[test]
fn a_directory_made_goes_as_a_tree_with_what_came_into_it() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_made(b"new", now);
    pair.record_made(b"new/sub", now);
    pair.record(b"new/sub/f", now);
    pair.record(b"elsewhere", now);
    let quiet = now + BURST_QUIET;
    let batch = pair.start(run(), || false, quiet);
    assert_eq!(batch.made, vec![b"new".to_vec()], "the topmost only");
    assert_eq!(
        batch.paths.len(),
        4,
        "still listed: lanes and status count them"
    );
    pair.record(b"new/late", quiet);
    pair.finish(&ok(), quiet);
    assert!(
        pair.start(run(), || false, quiet + BURST_QUIET)
            .made
            .is_empty(),
        "made in an earlier batch: listed"
    );
}

#[test]
fn a_directory_still_being_filled_is_listed_not_walked() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_made(b"new", now);
    pair.record(b"new/f", now + MADE_MAX_WAIT - Duration::from_millis(1));
    let batch = pair.start(run(), || false, now + MADE_MAX_WAIT);
    assert!(batch.made.is_empty(), "the writes had not paused");
    assert_eq!(batch.paths.len(), 2);
}

#[test]
fn what_a_walk_had_below_a_held_directory_goes_again_listed() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_made(b"new", now);
    for path in [
        &b"new/sub"[..],
        b"new/sub/a",
        b"new/sub/b",
        b"new/c",
        b"old",
    ] {
        pair.record(path, now);
    }
    let quiet = now + BURST_QUIET;
    let batch = pair.start(run(), || false, quiet);
    assert_eq!(batch.made, vec![b"new".to_vec()]);
    pair.finish(
        &Outcome {
            result: RunResult::Partial {
                held: vec![b"new/sub".to_vec()],
                cause: "mkdir failed".into(),
            },
            ..ok()
        },
        quiet,
    );
    let again = pair.start(run(), || false, quiet + BURST_QUIET);
    assert!(again.made.is_empty());
    let listed: Vec<&[u8]> = again.paths.iter().map(Vec::as_slice).collect();
    assert!(
        listed.contains(&&b"new/sub/a"[..]) && listed.contains(&&b"new/sub/b"[..]),
        "{listed:?}"
    );
    assert!(!listed.contains(&&b"new/c"[..]), "arrived: {listed:?}");
}

#[test]
fn a_move_into_out_of_or_of_a_made_directory_lists_it() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    for made in [&b"into"[..], b"outof", b"moved", b"kept"] {
        pair.record_made(made, now);
    }
    pair.record_move(b"old/file", b"into/file", Vec::new(), now);
    pair.record_move(b"outof/x", b"y", Vec::new(), now);
    pair.record_move(b"moved", b"there", Vec::new(), now);
    let batch = pair.start(run(), || false, now + BURST_QUIET);
    assert_eq!(
        batch.made,
        vec![b"kept".to_vec()],
        "renamed on the target, a tree sent whole would send its files again"
    );
}

#[test]
fn a_directory_made_waits_for_the_writes_into_it_to_pause() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"file", now);
    assert_eq!(
        pair.due_at(Duration::ZERO, Cpus::Busy),
        Some(now),
        "a file goes at once"
    );
    pair.record_made(b"new", now);
    assert_eq!(
        pair.due_at(Duration::ZERO, Cpus::Busy),
        Some(now + BURST_QUIET)
    );
    let later = now + Duration::from_millis(15);
    pair.record(b"new/f", later);
    assert_eq!(
        pair.due_at(Duration::ZERO, Cpus::Busy),
        Some(later + BURST_QUIET)
    );
    pair.record(b"new/g", now + Duration::from_millis(95));
    assert_eq!(
        pair.due_at(Duration::ZERO, Cpus::Busy),
        Some(now + MADE_MAX_WAIT),
        "never longer than MADE_MAX_WAIT after the first change"
    );
    assert_eq!(
        pair.due_at(Duration::from_secs(2), Cpus::Busy),
        Some(now + Duration::from_secs(2)),
        "the delay decides when it is longer"
    );
}

fn partly(held: &[&[u8]]) -> Outcome {
    Outcome {
        result: RunResult::Partial {
            held: held.iter().map(|p| p.to_vec()).collect(),
            cause: "mkdir failed".into(),
        },
        ..ok()
    }
}

#[test]
fn a_tree_moved_into_a_walked_one_is_compared_again_when_a_path_in_it_is_held() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_made(b"new", now);
    pair.record_tree(b"new/t", now);
    let quiet = now + BURST_QUIET;
    pair.start(run(), || false, quiet);
    pair.finish(&partly(&[b"new/t/sub"]), quiet);
    let again = pair.start(run(), || false, quiet + BURST_QUIET);
    assert_eq!(
        again.trees,
        vec![b"new/t".to_vec()],
        "its files were never listed: only a comparison of it sends them"
    );
}

#[test]
fn a_listed_file_below_a_held_directory_goes_again_and_a_held_one_waits() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_made(b"new", now);
    for path in [&b"d/f"[..], b"new/sub/a", b"new/sub/b"] {
        pair.record(path, now);
    }
    let quiet = now + BURST_QUIET;
    pair.start(run(), || false, quiet);
    pair.finish(&partly(&[b"d", b"new/sub", b"new/sub/a"]), quiet);
    let again = pair.start(run(), || false, quiet + BURST_QUIET);
    let listed: Vec<&[u8]> = again.paths.iter().map(Vec::as_slice).collect();
    assert!(listed.contains(&&b"d/f"[..]), "{listed:?}");
    assert!(listed.contains(&&b"new/sub/b"[..]), "{listed:?}");
    assert!(
        !listed.contains(&&b"new/sub/a"[..]),
        "held: retried on its own backoff, {listed:?}"
    );
}

#[test]
fn a_directory_made_where_a_pending_move_goes_is_listed() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_move(b"a", b"b", Vec::new(), now);
    pair.record_made(b"b/new", now);
    pair.record_made(b"elsewhere", now);
    let batch = pair.start(run(), || false, now + BURST_QUIET);
    assert_eq!(batch.made, vec![b"elsewhere".to_vec()]);
}

#[test]
fn a_directory_made_after_a_quick_run_still_waits_for_quiet() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"x", now);
    pair.start(run(), || false, now);
    let during = now + Duration::from_millis(1);
    pair.record_made(b"new", during);
    pair.finish(&ok(), now + Duration::from_millis(2));
    assert_eq!(
        pair.due_at(Duration::ZERO, Cpus::Busy),
        Some(during + BURST_QUIET),
        "a 2 ms run would have let it go 4 ms after its first change"
    );
}

/// A burst into a target whose run has the CPUs to itself: its next batch goes
/// as soon as the run ends, while the writes still pour in, so what is left
/// when they stop is one run's worth (found by `contrib/bench/run`'s 10,000-file
/// burst: waiting for the pause left most of the burst for after it). With
/// other runs on every CPU it waits for the pause, as before.
#[test]
fn a_burst_is_chased_only_while_the_cpus_are_free() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record(b"a", t0);
    pair.start(run(), || false, t0);
    pair.record(b"b", t0 + ms(10));
    pair.record(b"c", t0 + ms(99));
    pair.finish(&ok(), t0 + ms(100));
    assert_eq!(
        pair.due_at(Duration::ZERO, Cpus::Free),
        Some(t0 + ms(10)),
        "a lone target waited for the burst to pause"
    );
    assert_eq!(
        pair.due_at(Duration::ZERO, Cpus::Busy),
        Some(t0 + ms(99) + BURST_QUIET),
        "with every CPU busy, a burst's batch waits for the writes to pause"
    );
    assert_eq!(
        pair.due_at(Duration::from_secs(1), Cpus::Free),
        Some(t0 + ms(10) + Duration::from_secs(1)),
        "the delay still holds"
    );
}

/// A directory moved while a full sync runs or waits, its old name then made
/// again (`mv x y; mkdir x`): the old name is compared as a whole tree, so
/// what the target still holds below it goes, even when full syncs delete
/// nothing (`delete = "running"`). Listed alone, a directory's own entry
/// was sent and the old tree's files stayed (found by a black-box attack).
#[test]
fn a_move_beside_a_full_sync_compares_its_old_name_whole() {
    let now = Instant::now();
    // While one runs.
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_full(now, false, FullReason::Interval);
    assert!(pair.start(run(), || false, now).full);
    pair.record_move(b"x", b"y", Vec::new(), now);
    pair.finish(&ok(), now);
    let batch = pair.start(run(), || false, now);
    assert!(!batch.full);
    assert!(batch.trees.contains(&b"x".to_vec()), "{:?}", batch.trees);
    assert!(batch.trees.contains(&b"y".to_vec()), "{:?}", batch.trees);
    // While one waits: listed before it.
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_full(now, false, FullReason::Interval);
    pair.record_move(b"x", b"y", Vec::new(), now);
    let batch = pair.start(run(), || false, now);
    assert!(!batch.full, "the listed paths go first");
    assert!(batch.trees.contains(&b"x".to_vec()), "{:?}", batch.trees);
}

/// A move in a batch that failed (the target down, read-only, full), its old
/// name then made again (`mv g g_mv; mkdir g`): the move comes back as a
/// transfer, and the old name must be compared whole, or the target keeps the
/// old tree's files below it once the new `g` is walked as a made directory
/// (found by a black-box attack: `wait` said idle, `verify` found 20 stale
/// files, 5 of 5 with a fault, 0 of 2 without).
#[test]
fn a_move_in_a_failed_batch_compares_its_old_name_whole() {
    let now = Instant::now();
    let mut pair = Pair::new(1, "t".into(), "t".into());
    pair.record_move(b"g", b"g_mv", Vec::new(), now);
    assert_eq!(pair.start(run(), || false, now).moves.len(), 1);
    pair.finish(&failed(), now);
    pair.record_made(b"g", now);
    pair.record(b"g/fnew", now);
    let later = now + Duration::from_secs(60);
    let batch = pair.start(run(), || false, later);
    assert!(batch.trees.contains(&b"g".to_vec()), "{:?}", batch.trees);
    assert!(batch.trees.contains(&b"g_mv".to_vec()), "{:?}", batch.trees);
}

/// A root replaced again while the full sync of the last replacement (or
/// any full sync) runs: the next full sync still compares contents (a
/// black-box attack: two atomic deploys back to back, the new tree's files
/// of the old sizes and mtimes; the second full sync ran without
/// `--checksum`, and the mirror kept the first tree's bytes, 12 of 20).
#[test]
fn a_source_replaced_while_a_full_sync_runs_is_compared_by_content_after_it() {
    let now = Instant::now();
    for first_by_content in [true, false] {
        let mut pair = Pair::new(1, "t".into(), "t".into());
        if first_by_content {
            pair.source_replaced(now);
        } else {
            pair.record_full(now, true, FullReason::Requested);
        }
        let batch = pair.start(run(), || false, now);
        assert!(batch.full);
        assert_eq!(pair.compares_contents(), first_by_content);
        pair.source_replaced(now);
        pair.finish(&ok(), now);
        let next = pair.start(run(), || false, now);
        assert!(next.full, "the replacement's full sync is owed");
        assert!(
            pair.compares_contents(),
            "the second replacement's full sync compares sizes and mtimes \
             (first by content: {first_by_content})"
        );
        pair.finish(&ok(), now);
        assert!(!pair.compares_contents(), "its own full sync is done");
    }
}
