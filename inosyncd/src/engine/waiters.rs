//! Calls that wait for the engine: `wait` (answered when nothing is pending or
//! running in its scope, or at its deadline) and `remove` (answered when the
//! watch's last changes are synced).

use tokio::time::Instant;

use super::{Engine, Reply};
use crate::watcher::Change;

pub(super) struct Waiter {
    pub(super) scope: Option<u32>,
    pub(super) deadline: Instant,
    pub(super) reply: Reply<bool>,
}

impl Engine {
    /// Answers `wait` calls. Before saying "idle", reads whatever inotify has
    /// queued: a change made just before the call must count as pending.
    pub(super) fn answer_waiters(&mut self, changes: &mut Vec<Change>) -> anyhow::Result<()> {
        if self.waiters.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.waiters.len() {
            let scope = self.waiters[i].scope;
            // A root that came back since its last check (once a second) is
            // not refused as missing: `mount` then `wait` at once.
            let missing: Vec<u32> = self
                .watches
                .iter()
                .filter(|(id, w)| scope.is_none_or(|s| s == **id) && w.missing.is_some())
                .map(|(id, _)| *id)
                .collect();
            for id in missing {
                self.check_source(id);
            }
            // Nothing will come of waiting for a source that is not there.
            if let Some(problem) = self.source_problem(scope) {
                let waiter = self.waiters.swap_remove(i);
                let _ = waiter.reply.send(Err(problem));
                continue;
            }
            let mut idle = self.is_idle(scope);
            while idle && self.read_events(changes)? {
                idle = self.is_idle(scope);
            }
            if idle || self.waiters[i].deadline <= now || self.waiters[i].reply.is_closed() {
                let waiter = self.waiters.swap_remove(i);
                let _ = waiter.reply.send(Ok(idle));
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// Finishes removals whose last changes are synced, and answers `remove` calls
    /// that reached their deadline first.
    pub(super) fn progress_removals(&mut self) {
        let now = Instant::now();
        // A watch whose source is missing has nothing it could sync.
        let finished: Vec<u32> = self
            .watches
            .iter()
            .filter(|(_, w)| w.removing.is_some() && (w.is_idle() || w.missing.is_some()))
            .map(|(id, _)| *id)
            .collect();
        for id in finished {
            self.drop_watch(id, "pending changes synced; watch removed");
        }
        for watch in self.watches.values_mut() {
            if let Some(waiting) = &mut watch.removing {
                let mut i = 0;
                while i < waiting.len() {
                    if waiting[i].0 <= now {
                        let (_, reply) = waiting.swap_remove(i);
                        let _ = reply.send(Ok(false));
                    } else {
                        i += 1;
                    }
                }
            }
        }
    }
}
