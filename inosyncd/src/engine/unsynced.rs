//! Changes left at a stop: a target in retry backoff is not waited for and a
//! paused watch holds its changes, so the watches that still have something
//! to sync are written to the state file (`unsynced`) on the way out, and the
//! next start gives each a full sync, even with `initial_sync = false`.

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
