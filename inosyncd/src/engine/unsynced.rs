//! Changes left at a stop: a target in retry backoff is not waited for and a
//! paused watch holds its changes, so the watches that still have something
//! to sync are written to the state file (`unsynced`) on the way out, and the
//! next start gives each a full sync, even with `initial_sync = false`. A
//! daemon that never got to its way out (killed, crashed) leaves its running
//! mark (`<state>.running`): the next start syncs every watch whole.

use tokio::time::Instant;

use std::time::Duration;

use super::Engine;
use super::batch::FullReason;

/// How far before the running mark's time a start after a kill looks for
/// changed files (see [`Engine::sync_after_a_crash`]).
const CHANGE_TIME_MARGIN: Duration = Duration::from_secs(2);
/// How often, at most, the running mark's time is moved on.
const READ_MARK_EVERY: Duration = Duration::from_secs(1);

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
    /// running mark (`StateFile::mark_running`), so every watch gets a full
    /// sync, whatever `initial_sync` says; and what the kernel still held
    /// unread for it (a same-size rewrite with its mtime kept, which neither
    /// its journal nor a full sync knows) is looked for among the files
    /// changed since it last read its queue to the end (the mark's mtime).
    /// Then this one marks itself running.
    pub(super) fn sync_after_a_crash(&mut self) {
        let Some(file) = &self.state_file else {
            return;
        };
        let crashed = file.last_run_killed();
        if let Err(e) = file.mark_running() {
            let why = format!("cannot write {}.running: {e}", file.path().display());
            tracing::error!(
                "{why}; if this daemon is killed, its pending changes wait for a full \
                 sync (initial_sync, full_sync_interval); tried again with every change"
            );
            self.running_mark_error = Some(why);
        }
        let Some(mut read_up_to) = crashed else {
            return;
        };
        // A mark from the future (a clock set back, a hand that touched it)
        // says nothing of what was read: every file is listed (a black-box
        // attack: the changes made before the kill were missed).
        if read_up_to > std::time::SystemTime::now() {
            tracing::warn!(
                "{}.running is dated in the future ({}): every file of every watch is listed",
                file.path().display(),
                crate::time_format::rfc3339(read_up_to)
            );
            read_up_to = std::time::UNIX_EPOCH;
        }
        // The new mark keeps the killed daemon's time until the search below
        // is in the journal and done (the mark moves on only when nothing is
        // being placed): a second kill meanwhile searches the same window (a
        // review).
        if let Err(e) = file.mark_read_up_to(read_up_to) {
            tracing::debug!("cannot set the running mark's time: {e}");
        }
        tracing::warn!(
            "the last inosyncd on this state file did not stop (killed or crashed): full sync \
             of every watch, and the files changed since {} listed",
            crate::time_format::rfc3339(read_up_to)
        );
        let now = Instant::now();
        for watch in self.watches.values_mut() {
            for pair in &mut watch.pairs {
                pair.record_full(now, true, FullReason::Initial);
            }
        }
        // A margin for the coarse clock that stamps change times (a tick is
        // 1–10 ms) and for a clock set back a little.
        let since = read_up_to
            .checked_sub(CHANGE_TIME_MARGIN)
            .unwrap_or(std::time::UNIX_EPOCH);
        let since = since
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        // One search walks every tree (no filesystem named); each watch
        // notes it, so that its records are not forgotten before it ends.
        let ids: Vec<u32> = self.watches.keys().copied().collect();
        if let Some(&first) = ids.first() {
            self.watcher.look_for_changed_since(first, since, None);
        }
        for id in ids {
            self.note_changed_since_in_journal(id, since, None);
        }
    }

    /// Every change made before `read_from` (when the read that emptied the
    /// kernel's queue began) is in the journal now, unless the journal failed
    /// or stopped keeping records (a watch past its cap) or the watcher still
    /// holds some back: the running mark says so, at most once a second (see
    /// [`Engine::sync_after_a_crash`]).
    pub(super) fn mark_read_up_to(&mut self, read_from: std::time::SystemTime) {
        let Some(file) = &self.state_file else {
            return;
        };
        let due = self
            .marked_read_at
            .is_none_or(|at| at.elapsed() >= READ_MARK_EVERY);
        let journal_ok = self
            .journal
            .as_ref()
            .is_some_and(|j| j.error().is_none() && j.keeps_everything());
        if !due || !journal_ok || self.running_mark_error.is_some() || self.watcher.placing() {
            return;
        }
        self.marked_read_at = Some(Instant::now());
        // The journal reaches the disk before the mark says it holds what
        // came before (a power cut must not keep the mark and lose the
        // journal's tail).
        if let Some(journal) = self.journal.as_mut()
            && let Err(e) = journal.sync()
        {
            tracing::debug!("cannot sync the journal: {e}");
            return;
        }
        if let Err(e) = file.mark_read_up_to(read_from) {
            tracing::debug!("cannot set the running mark's time: {e}");
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
        match file
            .mark_running()
            .and_then(|()| file.mark_read_up_to(self.started_at))
        {
            Ok(()) => {
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
