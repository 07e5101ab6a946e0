//! Changes left at a stop: a target in retry backoff is not waited for and a
//! paused watch holds its changes, so the watches that still have something
//! to sync are written to the state file (`unsynced`) on the way out, and the
//! next start gives each a full sync, even with `initial_sync = false`. A
//! daemon that never got to its way out (killed, crashed) leaves `running`
//! set: the next start syncs every watch whole.

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
        if unsynced != self.runtime.unsynced || self.runtime.running {
            self.runtime.unsynced = unsynced;
            self.runtime.running = false;
            self.persist();
        }
    }

    /// At start: a daemon that was killed or crashed on this state left
    /// `running` set and no record of what it had not synced, so every watch
    /// gets a full sync, whatever `initial_sync` says. Then `running` is set
    /// for this one (the caller writes the state file).
    pub(super) fn sync_after_a_crash(&mut self) {
        if self.state_file.is_none() {
            return;
        }
        if std::mem::replace(&mut self.runtime.running, true) {
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
