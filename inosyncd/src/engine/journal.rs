//! The engine's side of the pending-changes journal (`pending_journal.rs`):
//! every change recorded is noted in it before it can be synced, its records
//! are forgotten once its watch has nothing left to sync, and at start what
//! the last daemon left is taken up again as changes.

use std::os::unix::ffi::OsStrExt;

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
            // or an unsynced watch gets one at the next start. Searches are
            // noted where they are asked for
            // ([`Engine::note_search_in_journal`],
            // [`Engine::note_changed_since_in_journal`]).
            Change::Everything { .. }
            | Change::Linked { .. }
            | Change::LinkedInode { .. }
            | Change::Kept { .. }
            | Change::ChangedSince { .. }
            | Change::RootGone { .. } => [None, None],
        };
        for (watch, kind, rel) in noted.into_iter().flatten() {
            if let Some(w) = self.watches.get(&watch) {
                journal.note(w.spec.path.as_os_str().as_bytes(), kind, rel);
            }
        }
    }

    /// Notes a search for the names of file `inode` (filesystem, inode) of
    /// `watch`: a daemon killed before it ends, and the name written through
    /// removed meanwhile, would leave the next start no name to look from.
    pub(super) fn note_search_in_journal(&mut self, watch: u32, inode: (u64, u64)) {
        let (Some(journal), Some(w)) = (self.journal.as_mut(), self.watches.get(&watch)) else {
            return;
        };
        let record = format!("{}:{}", inode.0, inode.1);
        journal.note(
            w.spec.path.as_os_str().as_bytes(),
            Kind::Inode,
            record.as_bytes(),
        );
    }

    /// Notes a search for the files changed since `since` (nanoseconds since
    /// the epoch) in the trees on filesystem `dev` (`None`: every one), of
    /// `watch`: a daemon killed before it ends leaves nothing else to find
    /// the write it stands for by.
    pub(super) fn note_changed_since_in_journal(
        &mut self,
        watch: u32,
        since: i128,
        dev: Option<u64>,
    ) {
        let (Some(journal), Some(w)) = (self.journal.as_mut(), self.watches.get(&watch)) else {
            return;
        };
        let dev = dev.map_or_else(|| "-".to_string(), |dev| dev.to_string());
        let record = format!("{since}:{dev}");
        journal.note(
            w.spec.path.as_os_str().as_bytes(),
            Kind::ChangedSince,
            record.as_bytes(),
        );
    }

    /// Whether `change` is the daemon's own write to its journal (seen by
    /// inotify when the journal is inside a watched tree): no change at all,
    /// as fanotify, which drops the daemon's own events, has it.
    pub(super) fn is_own_journal_write(&mut self, change: &Change) -> bool {
        let Some(journal) = self.journal.as_mut() else {
            return false;
        };
        let (watch, rel) = match change {
            Change::Path { watch, rel } | Change::Written { watch, rel, .. } => (*watch, rel),
            Change::Move { watch, to, .. } | Change::Renamed { watch, to, .. } => (*watch, to),
            _ => return false,
        };
        self.watches
            .get(&watch)
            .is_some_and(|w| journal.is_own(&w.spec.path, rel))
    }

    /// Writes what was noted since the last write.
    pub(super) fn write_journal(&mut self) {
        self.retry_running_mark();
        if let Some(journal) = self.journal.as_mut() {
            journal.flush();
        }
    }

    /// Forgets the records of the watches with nothing left to sync: nothing
    /// pending, running, held or settling (a paused watch keeps its records).
    /// `read`: the kernel's queue is read first when a watch looks synced,
    /// so that a change made as its last run ended is not forgotten unread.
    pub(super) fn forget_synced_in_journal(&mut self, read: bool) -> anyhow::Result<()> {
        let Some(journal) = self.journal.as_ref() else {
            return Ok(());
        };
        if !journal.roots().any(|root| self.is_synced(root)) {
            return Ok(());
        }
        if read {
            self.read_events(&mut Vec::new())?;
        }
        let Some(mut journal) = self.journal.take() else {
            return Ok(());
        };
        journal.forget(|root| self.is_synced(root));
        self.journal = Some(journal);
        Ok(())
    }

    /// Whether the watch at `root` has nothing left to sync (or is no longer
    /// watched: nothing of it is synced any more).
    fn is_synced(&self, root: &[u8]) -> bool {
        match self
            .watches
            .iter()
            .find(|(_, w)| w.spec.path.as_os_str().as_bytes() == root)
        {
            Some((id, w)) => {
                w.is_idle() && !self.settling.busy(Some(*id)) && !self.watcher.placing()
            }
            None => true,
        }
    }

    /// At start: the changes the last daemon saw and had not synced become
    /// changes again, each of a watch still watched; then the journal holds
    /// them alone. A record that cannot be read, or names no path below its
    /// root, is a full sync of its watch (of every watch when its watch
    /// cannot be read), never a path sent.
    pub(super) fn take_up_journal(&mut self, left: Left) {
        let mut changes = Vec::new();
        let mut unknown = 0usize;
        let mut sweeps_all = true;
        for record in &left.records {
            let Some((&watch, w)) = self
                .watches
                .iter()
                .find(|(_, w)| w.spec.path.as_os_str().as_bytes() == record.watch.as_slice())
            else {
                unknown += 1;
                continue;
            };
            let tree = match record.kind {
                Kind::Path => false,
                Kind::Tree => true,
                // No path: a search to do again.
                Kind::Inode => {
                    match parse_inode(&record.rel) {
                        Some(inode) => {
                            self.watcher.look_for_names_of(watch, inode);
                            self.note_search_in_journal(watch, inode);
                        }
                        None => changes.push(Change::Everything { watch }),
                    }
                    continue;
                }
                Kind::ChangedSince => {
                    match parse_changed_since(&record.rel) {
                        Some((since, dev)) => {
                            self.watcher.look_for_changed_since(watch, since, dev);
                            self.note_changed_since_in_journal(watch, since, dev);
                        }
                        None => changes.push(Change::Everything { watch }),
                    }
                    continue;
                }
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
            // The rsync the last daemon left running, stopped at this start,
            // keeps what it received in these directories' partial
            // directories: swept after the next run (a full sync that deletes
            // nothing would leave them; `leftovers.rs`).
            let dirs = crate::rsync::leftover_dirs(std::iter::once(&record.rel));
            let dirs: Vec<Vec<u8>> = if tree {
                dirs.into_iter().chain([record.rel.clone()]).collect()
            } else {
                dirs.into_iter().collect()
            };
            if let Some(w) = self.watches.get_mut(&watch) {
                for pair in &mut w.pairs {
                    sweeps_all &= pair.note_leftovers(dirs.iter().cloned());
                }
            }
            // A file with other names: a same-size rewrite with its mtime set
            // back reached them all, and the restart's full sync cannot see it
            // under the names the record does not list (`name_search.rs`).
            if !tree && let Some(inode) = self.watcher.take_up_other_names(watch, &record.rel) {
                self.note_search_in_journal(watch, inode);
            }
            let rel = record.rel.clone();
            changes.push(if tree {
                Change::Tree { watch, rel }
            } else {
                Change::Path { watch, rel }
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
        let searches = left
            .records
            .iter()
            .filter(|r| matches!(r.kind, Kind::Inode | Kind::ChangedSince))
            .count();
        if left.records.len() > unknown + searches {
            tracing::info!(
                "{} change(s) the last inosyncd saw and had not synced are sent again \
                 (listed, --ignore-times)",
                left.records.len() - unknown - searches
            );
        }
        if searches > 0 {
            tracing::info!(
                "{searches} search(es) for the other names of files written through one \
                 (by inode, or by change time), left unfinished by the last inosyncd, are \
                 done again"
            );
        }
        if !sweeps_all {
            tracing::info!(
                "the changes left by the last inosyncd lie in more directories than one \
                 sweep of rsync's leftovers takes; partial files it left beyond them stay \
                 until a full sync that deletes (README \"How a sync works\")"
            );
        }
        if unknown > 0 {
            tracing::info!(
                "{unknown} change(s) the last inosyncd saw in watches not watched now are dropped"
            );
        }
        self.take_changes(changes);
        if let Some(journal) = self.journal.as_mut() {
            journal.start();
        }
    }
}

/// A file's filesystem and inode as an [`Kind::Inode`] record holds them
/// (`DEV:INO`, decimal), or `None` for anything else.
fn parse_inode(text: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let (dev, ino) = text.split_once(':')?;
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some((number(dev)?, number(ino)?))
}

/// A [`Kind::ChangedSince`] record's time and filesystem (`SINCE:DEV`,
/// decimal, `-` for every filesystem), or `None` for anything else.
fn parse_changed_since(text: &[u8]) -> Option<(i128, Option<u64>)> {
    let text = std::str::from_utf8(text).ok()?;
    let (since, dev) = text.split_once(':')?;
    let digits = since.strip_prefix('-').unwrap_or(since);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let since = since.parse().ok()?;
    let dev = match dev {
        "-" => None,
        dev if !dev.is_empty() && dev.bytes().all(|b| b.is_ascii_digit()) => {
            Some(dev.parse().ok()?)
        }
        _ => return None,
    };
    Some((since, dev))
}

#[cfg(test)]
mod tests {
    use super::{parse_changed_since, parse_inode};

    #[test]
    fn an_inode_record_is_read_back_and_anything_else_is_refused() {
        assert_eq!(parse_inode(b"2049:1234567"), Some((2049, 1234567)));
        for bad in [
            &b""[..],
            b"2049",
            b"a:b",
            b"1:2:3",
            b"-1:2",
            b"+1:2",
            b"\xff:1",
            b"1: 2",
            b"1:",
        ] {
            assert_eq!(parse_inode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_changed_since_record_is_read_back_and_anything_else_is_refused() {
        let since = 1_764_600_000_123_456_789_i128;
        assert_eq!(
            parse_changed_since(format!("{since}:2049").as_bytes()),
            Some((since, Some(2049)))
        );
        assert_eq!(parse_changed_since(b"-5:-"), Some((-5, None)));
        for bad in [
            &b""[..],
            b"12",
            b"12:",
            b":2049",
            b"-:2049",
            b"--5:1",
            b"+5:1",
            b"5:+1",
            b"5:-1",
            b"5:a",
            b"\xff:1",
            b"1:2:3",
            b"999999999999999999999999999999999999999999:1",
        ] {
            assert_eq!(
                parse_changed_since(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
