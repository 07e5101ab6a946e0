//! `delete` decides, per kind of run, whether the job may delete on the target.

use super::fake::synced;
use super::{Harness, Spec, paths};
use crate::config::DeleteMode;

/// Whether the initial full sync keeps what the source lacks.
async fn initial_keeps(delete: DeleteMode) -> bool {
    let h = Harness::start(Spec {
        initial_sync: true,
        delete,
        ..Spec::default()
    })
    .await;
    assert_eq!(paths(&h.job(0)), None);
    h.job(0).keep_deleted
}

/// Whether a change's batch, then a requested full sync, keep it.
async fn later_keep(delete: DeleteMode) -> [bool; 2] {
    let h = Harness::start(Spec {
        delete,
        files: &["new"],
        ..Spec::default()
    })
    .await;
    h.change(0, "new").await;
    assert_eq!(paths(&h.job(0)), Some(vec!["new".to_string()]));
    h.finish(0, synced()).await;
    h.sync_now().await;
    assert_eq!(paths(&h.job(1)), None);
    [h.job(0).keep_deleted, h.job(1).keep_deleted]
}

#[tokio::test(start_paused = true)]
async fn each_mode_deletes_in_the_runs_lsyncd_deletes_in() {
    use DeleteMode::*;
    assert!(!initial_keeps(Always).await);
    assert!(initial_keeps(Never).await);
    assert!(!initial_keeps(Startup).await);
    assert!(initial_keeps(Running).await);
    assert_eq!(later_keep(Always).await, [false, false]);
    assert_eq!(later_keep(Never).await, [true, true]);
    assert_eq!(later_keep(Startup).await, [true, true]);
    assert_eq!(later_keep(Running).await, [false, true]);
}

#[tokio::test(start_paused = true)]
async fn a_first_sync_into_an_empty_local_target_reads_nothing_there_to_delete() {
    let h = Harness::start(Spec {
        initial_sync: true,
        empty_targets: true,
        ..Spec::default()
    })
    .await;
    assert_eq!(paths(&h.job(0)), None);
    assert!(
        h.job(0).keep_deleted,
        "--delete on a target with nothing in it"
    );
}
