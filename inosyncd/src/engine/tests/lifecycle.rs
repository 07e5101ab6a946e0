//! Calls that wait (`wait`, `remove`), the way out (SIGTERM's flush and the
//! second signal), and sources that go missing or come up empty.

use std::time::Duration;

use inosync_proto::{Source, TargetState};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::fake::{partial, synced};
use super::{Harness, Spec, paths};
use crate::engine::{Command, Refusal};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// What a waiting call has answered so far, a refusal in the socket's words.
fn answered(
    answer: &mut oneshot::Receiver<Result<bool, Refusal>>,
) -> Result<Result<bool, String>, oneshot::error::TryRecvError> {
    answer.try_recv().map(|r| r.map_err(|e| e.to_string()))
}

impl Harness {
    /// Sends `wait` (whole daemon) with a deadline `within` from now; the answer
    /// comes on the returned channel.
    async fn wait_call(&self, within: Duration) -> oneshot::Receiver<Result<bool, Refusal>> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Wait {
                path: None,
                deadline: Instant::now() + within,
                reply,
            })
            .await
            .expect("engine alive");
        self.settle().await;
        answer
    }

    async fn remove_call(
        &self,
        discard: bool,
        within: Duration,
    ) -> oneshot::Receiver<Result<bool, Refusal>> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Remove {
                path: self.root(0).display().to_string(),
                discard,
                deadline: Instant::now() + within,
                reply,
            })
            .await
            .expect("engine alive");
        self.settle().await;
        answer
    }

    /// Waits (in virtual time) for the engine loop to end; `false` if it did not
    /// within `limit`.
    async fn ends_within(&mut self, limit: Duration) -> bool {
        let Some(task) = self.task.take() else {
            return true;
        };
        tokio::time::timeout(limit, task).await.is_ok()
    }
}

#[tokio::test(start_paused = true)]
async fn wait_answers_at_once_when_idle_and_after_the_batch_otherwise() {
    let h = Harness::start(Spec::default()).await;
    let mut idle = h.wait_call(secs(60)).await;
    assert_eq!(answered(&mut idle), Ok(Ok(true)));
    h.change(0, "a").await;
    let mut busy = h.wait_call(secs(60)).await;
    assert!(busy.try_recv().is_err(), "answered while a batch ran");
    h.finish(0, synced()).await;
    assert_eq!(answered(&mut busy), Ok(Ok(true)));
}

#[tokio::test(start_paused = true)]
async fn wait_says_false_at_its_deadline_while_changes_are_held() {
    let h = Harness::start(Spec::default()).await;
    h.pause(true).await;
    h.change(0, "a").await;
    let mut answer = h.wait_call(secs(10)).await;
    h.advance(secs(9)).await;
    assert!(answer.try_recv().is_err());
    h.advance(secs(2)).await;
    assert_eq!(answered(&mut answer), Ok(Ok(false)));
}

#[tokio::test(start_paused = true)]
async fn remove_waits_for_the_running_batch() {
    let h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    let mut answer = h.remove_call(false, secs(600)).await;
    assert!(answer.try_recv().is_err(), "removed under a running batch");
    assert!(h.status().await.watches[0].removing);
    h.finish(0, synced()).await;
    assert_eq!(answered(&mut answer), Ok(Ok(true)));
    assert!(h.status().await.watches.is_empty());
}

#[tokio::test(start_paused = true)]
async fn remove_syncs_pending_changes_first_unless_discarded() {
    let h = Harness::start(Spec {
        delay: 3600.0,
        ..Spec::default()
    })
    .await;
    h.change(0, "a").await;
    let mut answer = h.remove_call(false, secs(600)).await;
    assert_eq!(h.started(), 1, "pending changes were not hurried");
    h.finish(0, synced()).await;
    assert_eq!(answered(&mut answer), Ok(Ok(true)));

    let h = Harness::start(Spec {
        delay: 3600.0,
        ..Spec::default()
    })
    .await;
    h.change(0, "a").await;
    let mut answer = h.remove_call(true, secs(600)).await;
    assert_eq!(answered(&mut answer), Ok(Ok(true)));
    assert_eq!(h.started(), 0);
}

#[tokio::test(start_paused = true)]
async fn remove_answers_false_at_its_deadline_and_finishes_later() {
    let h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    let mut answer = h.remove_call(false, secs(5)).await;
    h.advance(secs(6)).await;
    assert_eq!(answered(&mut answer), Ok(Ok(false)));
    assert!(h.status().await.watches[0].removing);
    h.finish(0, synced()).await;
    assert!(h.status().await.watches.is_empty());
}

#[tokio::test(start_paused = true)]
async fn sigterm_syncs_what_is_pending_then_stops() {
    let mut h = Harness::start(Spec {
        delay: 3600.0,
        ..Spec::default()
    })
    .await;
    h.change(0, "a").await;
    h.signal(1);
    tokio::task::yield_now().await;
    assert_eq!(h.started(), 1, "the pending change was not hurried");
    assert!(!h.stopped());
    h.runs.finish(0, synced());
    assert!(h.ends_within(secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn a_second_signal_stops_at_once_and_stops_the_running_rsync() {
    let mut h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    h.signal(1);
    tokio::task::yield_now().await;
    h.signal(2);
    assert!(h.ends_within(secs(1)).await);
    assert_eq!(h.runs.open(), 0, "the running rsync was left running");
}

#[tokio::test(start_paused = true)]
async fn sigterm_does_not_wait_for_a_paused_watch() {
    let mut h = Harness::start(Spec::default()).await;
    h.pause(true).await;
    h.change(0, "a").await;
    h.signal(1);
    assert!(h.ends_within(secs(1)).await);
    assert_eq!(h.started(), 0);
}

/// A target whose only pending paths are held, waiting out their retry
/// backoff, is not waited for: its paths go to the next start's full sync, as
/// a whole target in backoff does (it held `systemctl stop` for the whole
/// grace period).
#[tokio::test(start_paused = true)]
async fn sigterm_does_not_wait_for_held_paths_in_their_backoff() {
    let mut h = Harness::start(Spec::default()).await;
    h.change(0, "bad").await;
    h.finish(0, partial(&["bad"])).await;
    assert_eq!(h.status().await.watches[0].targets[0].held.len(), 1);
    h.signal(1);
    assert!(h.ends_within(secs(1)).await, "waited for the held path");
    assert_eq!(h.started(), 1, "the held path was retried on the way out");
}

#[tokio::test(start_paused = true)]
async fn the_grace_period_ends_a_flush_that_does_not_finish() {
    let mut h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    h.signal(1);
    tokio::task::yield_now().await;
    // The run never ends by itself: after the 30 s grace the engine stops it.
    assert!(h.ends_within(secs(45)).await);
    assert_eq!(h.runs.open(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_missing_root_is_never_synced_from_and_reattaches() {
    let h = Harness::start(Spec::default()).await;
    let root = h.root(0);
    std::fs::remove_dir_all(&root).expect("rm root");
    h.change(0, "file").await;
    assert_eq!(h.started(), 0, "synced from a missing root");
    assert_eq!(h.state(0, 0).await, TargetState::SourceMissing);
    let mut answer = h.wait_call(secs(60)).await;
    match answer.try_recv() {
        Ok(Err(refusal)) => assert!(
            matches!(refusal, Refusal::SourceMissing { .. })
                && refusal.to_string().contains("source missing"),
            "{refusal}"
        ),
        other => panic!("wait answered {other:?}"),
    }
    std::fs::create_dir(&root).expect("mkdir root");
    std::fs::write(root.join("new"), "x").expect("write");
    h.advance(secs(2)).await;
    assert_eq!(h.started(), 1);
    let job = h.job(0);
    assert_eq!(paths(&job), None, "a re-attached root gets a full sync");
    assert!(job.compare_contents);
}

#[tokio::test(start_paused = true)]
async fn an_empty_root_deletes_nothing_until_something_appears() {
    let h = Harness::start(Spec::default()).await;
    std::fs::remove_file(h.root(0).join("file")).expect("empty the root");
    // The deletion's own event is read (a batch of its own) before the sync:
    // read while the guarded sync runs, it would be a change that came
    // meanwhile, and the sync would run again at once (see `Pair::finish`).
    let read = async {
        while h.started() == 0 {
            // The runtime parks, and so polls the inotify descriptor.
            tokio::time::sleep(Duration::from_millis(1)).await;
            h.settle().await;
        }
    };
    tokio::time::timeout(secs(60), read)
        .await
        .expect("the deletion was read");
    assert_eq!(paths(&h.job(0)), Some(vec!["file".to_string()]));
    h.finish(0, synced()).await;
    h.sync_now().await;
    assert!(
        h.job(1).delete_nothing,
        "an empty root's full sync may delete"
    );
    // rsync's exit 25 on a run that may delete nothing, as classified.
    let stopped = crate::rsync::Outcome {
        result: crate::rsync::RunResult::SourceEmpty,
        exit_code: Some(25),
        ..synced()
    };
    h.finish(1, stopped).await;
    assert_eq!(h.state(0, 0).await, TargetState::SourceMissing);
    h.advance(secs(600)).await;
    assert_eq!(h.started(), 2, "retried while the source is still empty");
    std::fs::write(h.root(0).join("new"), "x").expect("write");
    h.change(0, "new").await;
    // The new path goes listed first, then the held full sync.
    assert_eq!(h.started(), 3);
    assert_eq!(paths(&h.job(2)), Some(vec!["new".to_string()]));
    h.finish(2, synced()).await;
    assert_eq!(h.started(), 4);
    assert!(!h.job(3).delete_nothing);
    assert_eq!(paths(&h.job(3)), None);
}

/// Files that arrive while the guarded full sync runs (their events recorded
/// before it ends) release the hold at once: no later event would.
#[tokio::test(start_paused = true)]
async fn an_empty_root_that_got_files_during_its_guarded_sync_is_not_held() {
    let h = Harness::start(Spec::default()).await;
    std::fs::remove_file(h.root(0).join("file")).expect("empty the root");
    h.sync_now().await;
    assert!(h.job(0).delete_nothing);
    std::fs::write(h.root(0).join("arrived"), "x").expect("write");
    // The engine reads the file's event while the guarded run still runs.
    h.advance(Duration::from_millis(50)).await;
    assert_eq!(h.started(), 1);
    let stopped = crate::rsync::Outcome {
        result: crate::rsync::RunResult::SourceEmpty,
        exit_code: Some(25),
        ..synced()
    };
    h.finish(0, stopped).await;
    assert_ne!(h.state(0, 0).await, TargetState::SourceMissing);
    assert_eq!(h.started(), 2, "the full sync did not run again");
    assert!(!h.job(1).delete_nothing);
}

#[tokio::test(start_paused = true)]
async fn reset_drops_runtime_speed_and_delay_and_the_config_applies_again() {
    let h = Harness::start(Spec::default()).await;
    let config = h.status().await;
    h.set_speed(None, 500).await;
    h.set_delay(None, 7.0).await;
    h.set_speed(Some(0), 300).await;
    h.set_delay(Some(0), 2.0).await;
    let changed = h.status().await;
    assert_eq!(
        (changed.speed, changed.speed_source),
        (500, Source::Runtime)
    );
    assert_eq!(changed.watches[0].speed_source, Source::Runtime);
    h.reset_knobs(Some(0)).await;
    let watch_reset = h.status().await;
    assert_eq!(
        watch_reset.watches[0].speed, 500,
        "the runtime global applies"
    );
    assert_eq!(watch_reset.watches[0].delay, 7.0);
    h.reset_knobs(None).await;
    let back = h.status().await;
    assert_eq!(
        (back.speed, back.speed_source),
        (config.speed, config.speed_source)
    );
    assert_eq!(
        (back.delay, back.delay_source),
        (config.delay, config.delay_source)
    );
    assert_eq!(back.watches[0].speed_source, config.watches[0].speed_source);
}

/// `remove --discard` of a watch whose rsync runs: the run's slot comes back
/// when it ends (found by a black-box attack: each such removal kept a slot
/// for good, so after four no full sync ever started and `wait` never
/// answered idle).
#[tokio::test(start_paused = true)]
async fn a_watch_discarded_while_its_rsync_runs_gives_its_slot_back() {
    let h = Harness::start(Spec::default()).await;
    h.change(0, "a").await;
    assert_eq!(h.status().await.running, 1);
    let mut answer = h.remove_call(true, secs(600)).await;
    assert_eq!(answered(&mut answer), Ok(Ok(true)));
    h.finish(0, synced()).await;
    assert_eq!(h.status().await.running, 0, "the run's slot was kept");
    let mut idle = h.wait_call(secs(60)).await;
    assert_eq!(answered(&mut idle), Ok(Ok(true)));
}
