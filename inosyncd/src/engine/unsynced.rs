//! Changes left at a stop: a target in retry backoff is not waited for and a
//! paused watch holds its changes, so the watches that still have something
//! to sync are written to the state file (`unsynced`) on the way out, and the
//! next start gives each a full sync, even with `initial_sync = false`. A
//! daemon that never got to its way out (killed, crashed) leaves its running
//! mark (`<state>.running`): the next start syncs every watch whole.

use tokio::time::Instant;

use super::Engine;
use super::batch::FullReason;

impl Engine {
    /// On the way out: records the watches that still have changes to sync,
    /// so that the next start sends them even without an initial full sync.
    pub(super) fn record_unsynced(&mut self) {
        let unsynced: Vec<String> = self
            .watches
            .values()
            .filter(|w| w.pairs.iter().any(|p| p.has_pending() || p.is_running()))
            .map(|w| w.spec.path.display().to_string())
            .collect();
        if unsynced != self.runtime.unsynced {
            self.runtime.unsynced = unsynced;
            self.persist();
        }
        if let Some(file) = &self.state_file
            && let Err(e) = file.mark_stopped()
        {
            tracing::error!(
                "cannot remove {}.running: {e}; the next start syncs every watch whole",
                file.path().display()
            );
        }
    }

    /// At start: a daemon that was killed or crashed on this state left its
    /// running mark (`StateFile::mark_running`) and no record of what it had
    /// not synced, so every watch gets a full sync, whatever `initial_sync`
    /// says. Then this one marks itself running.
    pub(super) fn sync_after_a_crash(&mut self) {
        let Some(file) = &self.state_file else {
            return;
        };
        let crashed = match file.mark_running() {
            Ok(crashed) => crashed,
            Err(e) => {
                let why = format!("cannot write {}.running: {e}", file.path().display());
                tracing::error!(
                    "{why}; if this daemon is killed, its pending changes wait for a full \
                     sync (initial_sync, full_sync_interval); tried again with every change"
                );
                self.running_mark_error = Some(why);
                false
            }
        };
        if crashed {
            tracing::warn!(
                "the last inosyncd on this state file did not stop (killed or crashed): \
                 full sync of every watch"
            );
            let now = Instant::now();
            for watch in self.watches.values_mut() {
                for pair in &mut watch.pairs {
                    pair.record_full(now, true, FullReason::Initial);
                }
            }
        }
    }

    /// The running mark could not be made at start: tried again (before a
    /// change is written to the journal), so that a kill from now on is known
    /// at the next start.
    pub(super) fn retry_running_mark(&mut self) {
        if self.running_mark_error.is_none() {
            return;
        }
        let Some(file) = &self.state_file else {
            return;
        };
        match file.mark_running() {
            Ok(_) => {
                tracing::info!(
                    "{}.running written again: a kill from now on is known at the next start",
                    file.path().display()
                );
                self.running_mark_error = None;
            }
            Err(e) => {
                self.running_mark_error = Some(format!(
                    "cannot write {}.running: {e}",
                    file.path().display()
                ));
            }
        }
    }

    /// At start: the watches that had changes left when the daemon last
    /// stopped get a full sync, whatever `initial_sync` says.
    pub(super) fn sync_unsynced(&mut self) {
        let now = Instant::now();
        for path in std::mem::take(&mut self.runtime.unsynced) {
            let Ok(id) = self.find_watch(&path) else {
                continue;
            };
            if let Some(watch) = self.watches.get_mut(&id) {
                tracing::info!("{path}: had changes left at the last stop; full sync");
                for pair in &mut watch.pairs {
                    pair.record_full(now, true, FullReason::Initial);
                }
            }
        }
    }
}
