//! The engine's side of the pending-changes journal (`pending_journal.rs`):
//! every change recorded is noted in it before it can be synced, its records
//! are forgotten once its watch has nothing left to sync, and at start what
//! the last daemon left is taken up again as changes.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::Engine;
use crate::pending_journal::{Kind, Left, is_below_root};
use crate::watcher::Change;

impl Engine {
    /// Notes `change` in the journal (written at [`Engine::write_journal`]).
    pub(super) fn note_in_journal(&mut self, change: &Change) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let noted: [Option<(u32, Kind, &[u8])>; 2] = match change {
            Change::Path { watch, rel } | Change::Written { watch, rel, .. } => {
                [Some((*watch, Kind::Path, rel)), None]
            }
            Change::Made { watch, rel }
            | Change::Tree { watch, rel }
            | Change::Unmounted { watch, rel } => [Some((*watch, Kind::Tree, rel)), None],
            Change::Move {
                watch, from, to, ..
            }
            | Change::Renamed { watch, from, to } => [
                Some((*watch, Kind::Path, from)),
                Some((*watch, Kind::Tree, to)),
            ],
            // A full sync (lost events, a file with other names, a root
            // gone) is recorded by the state file's marks: an unclean stop
            // or an unsynced watch gets one at the next start.
            Change::Everything { .. } | Change::Linked { .. } | Change::RootGone { .. } => {
                [None, None]
            }
        };
        for (watch, kind, rel) in noted.into_iter().flatten() {
            let Some(w) = self.watches.get(&watch) else {
                continue;
            };
            if is_own_file(journal.path(), &w.spec.path, rel) {
                continue;
            }
            journal.note(w.spec.path.as_os_str().as_bytes(), kind, rel);
        }
    }

    /// Writes what was noted since the last write.
    pub(super) fn write_journal(&mut self) {
        if let Some(journal) = self.journal.as_mut() {
            journal.flush();
        }
    }

    /// Forgets the records of the watches with nothing left to sync: nothing
    /// pending, running, held or settling (a paused watch keeps its records).
    pub(super) fn forget_synced_in_journal(&mut self) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if !journal.holds_any() {
            return;
        }
        let placing = self.watcher.placing();
        let watches = &self.watches;
        let settling = &self.settling;
        journal.forget(|root| {
            match watches
                .iter()
                .find(|(_, w)| w.spec.path.as_os_str().as_bytes() == root)
            {
                Some((id, w)) => w.is_idle() && !settling.busy(Some(*id)) && !placing,
                // Removed since: nothing of it is synced any more.
                None => true,
            }
        });
    }

    /// At start: the changes the last daemon saw and had not synced become
    /// changes again, each of a watch still watched; then the journal holds
    /// them alone. A record that cannot be read, or names no path below its
    /// root, is a full sync of its watch (of every watch when its watch
    /// cannot be read), never a path sent.
    pub(super) fn take_up_journal(&mut self, left: Left) {
        let mut changes = Vec::new();
        let mut unknown = 0usize;
        for record in &left.records {
            let Some((&watch, w)) = self
                .watches
                .iter()
                .find(|(_, w)| w.spec.path.as_os_str().as_bytes() == record.watch.as_slice())
            else {
                unknown += 1;
                continue;
            };
            if !is_below_root(&record.rel) {
                tracing::warn!(
                    "{}: a change left by the last inosyncd names no path below the root \
                     ({}); full sync instead",
                    w.spec.path.display(),
                    crate::escaped::ls_b(&record.rel)
                );
                changes.push(Change::Everything { watch });
                continue;
            }
            let rel = record.rel.clone();
            changes.push(match record.kind {
                Kind::Path => Change::Path { watch, rel },
                Kind::Tree => Change::Tree { watch, rel },
            });
        }
        if let Some(why) = &left.unreadable {
            tracing::warn!(
                "the changes left by the last inosyncd cannot all be read ({why}); full \
                 sync of every watch"
            );
            changes.extend(
                self.watches
                    .keys()
                    .map(|&watch| Change::Everything { watch }),
            );
        }
        if !left.records.is_empty() {
            tracing::info!(
                "{} change(s) the last inosyncd saw and had not synced are sent again \
                 (listed, --ignore-times){}",
                left.records.len() - unknown,
                if unknown > 0 {
                    format!("; {unknown} of watches no longer watched are not")
                } else {
                    String::new()
                }
            );
        }
        self.take_changes(changes);
        if let Some(journal) = self.journal.as_mut() {
            journal.start();
        }
    }
}

/// Whether `rel` below `root` is one of the journal's own files (it, or its
/// temp file while it is written again): never noted, or a journal inside a
/// watched tree (inotify sees the daemon's own writes) would note its own
/// writes for ever.
fn is_own_file(journal: &Path, root: &Path, rel: &[u8]) -> bool {
    let Some(dir) = journal.parent() else {
        return false;
    };
    if !dir.starts_with(root) {
        return false;
    }
    let path = root.join(std::ffi::OsStr::from_bytes(rel));
    path.parent() == Some(dir)
        && path.file_name().is_some_and(|name| {
            let name = name.as_bytes();
            let own = journal.file_name().map_or(&b""[..], |n| n.as_bytes());
            name == own || (name.first() == Some(&b'.') && name[1..].starts_with(own))
        })
}
