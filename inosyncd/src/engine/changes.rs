//! Recording what the watcher saw in the pairs of its watch: changed paths,
//! trees to compare whole, moves, full syncs, and files written and not closed
//! (which wait in `settle.rs` until they are quiet).

use tokio::time::Instant;

use super::batch::FullReason;
use super::{Engine, settle};
use crate::watcher::Change;

impl Engine {
    /// Files written and then quiet (or written for too long without a pause)
    /// become changed paths now. One with other hard links is a full sync of its
    /// watch, as for any change to such a file (its other names changed too).
    pub(super) fn settle_due(&mut self) {
        self.settle(false);
    }

    /// Makes settled files (every file still settling, with `all`) changes.
    pub(super) fn settle(&mut self, all: bool) {
        let now = Instant::now();
        let due = if all {
            self.settling.take_due(now + settle::LONGEST)
        } else {
            self.settling.take_due(now)
        };
        let mut changes = Vec::with_capacity(due.len());
        for (watch, rel, linked) in due {
            if let Some(w) = self.watches.get(&watch)
                && (linked || crate::watcher::has_other_links(&w.spec.path, &rel))
            {
                changes.push(Change::Linked {
                    watch,
                    rel: Some(rel.clone()),
                });
            }
            changes.push(Change::Path { watch, rel });
        }
        self.take_changes(changes);
    }

    /// `rel` no longer settles (closed, deleted, renamed); written while it had
    /// other names, those changed too, whatever became of this one.
    fn settled_linked(&mut self, watch: u32, rel: &[u8], now: Instant) {
        if self.settling.changed(watch, rel) {
            self.compare_linked(watch, now);
        }
    }

    /// A file of `watch` with other names changed (see `Change::Linked`):
    /// every watch on the filesystem of its root is compared whole, as a
    /// file's names may lie in several trees (a release directory and the
    /// site it is linked into).
    fn compare_linked(&mut self, watch: u32, now: Instant) {
        use std::os::unix::fs::MetadataExt;
        let dev_of = |path: &std::path::Path| std::fs::metadata(path).ok().map(|m| m.dev());
        let dev = self.watches.get(&watch).and_then(|w| dev_of(&w.spec.path));
        for (id, w) in self.watches.iter_mut() {
            if *id != watch && (dev.is_none() || dev_of(&w.spec.path) != dev) {
                continue;
            }
            for pair in &mut w.pairs {
                pair.record_full(now, false, FullReason::LostEvents);
            }
        }
    }

    /// Records changes in the pairs of their watch.
    pub(super) fn take_changes(&mut self, changes: impl IntoIterator<Item = Change>) {
        let now = Instant::now();
        for change in changes {
            tracing::trace!("change: {change}");
            if self.is_own_journal_write(&change) {
                continue;
            }
            self.note_in_journal(&change);
            if self.verifying > 0 {
                self.note_for_verify(&change);
            }
            match change {
                Change::Path { watch, rel } => {
                    self.settled_linked(watch, &rel, now);
                    if let Some(w) = self.watches.get_mut(&watch) {
                        for pair in &mut w.pairs {
                            pair.record(&rel, now);
                        }
                    }
                }
                Change::Made { watch, rel } => {
                    self.settled_linked(watch, &rel, now);
                    if let Some(w) = self.watches.get_mut(&watch) {
                        for pair in &mut w.pairs {
                            pair.record_made(&rel, now);
                        }
                    }
                }
                Change::Written { watch, rel, linked } => {
                    if self.watches.contains_key(&watch) {
                        self.settling.written(watch, rel, linked, now);
                    }
                }
                Change::Tree { watch, rel } => {
                    tracing::debug!("compare whole: {}", String::from_utf8_lossy(&rel));
                    self.settled_linked(watch, &rel, now);
                    if let Some(w) = self.watches.get_mut(&watch) {
                        for pair in &mut w.pairs {
                            pair.record_tree(&rel, now);
                        }
                    }
                }
                Change::Unmounted { watch, rel } => {
                    tracing::debug!("unmounted: {}", String::from_utf8_lossy(&rel));
                    if let Some(w) = self.watches.get_mut(&watch) {
                        for pair in &mut w.pairs {
                            if pair.interrupt() {
                                tracing::info!(
                                    "{} -> {}: a filesystem was unmounted at {}; its \
                                     running transfer is started again, so that it \
                                     holds nothing there",
                                    w.spec.path.display(),
                                    pair.target(),
                                    String::from_utf8_lossy(&rel)
                                );
                            }
                            pair.record_tree(&rel, now);
                        }
                    }
                }
                Change::Everything { watch } => {
                    if let Some(w) = self.watches.get_mut(&watch) {
                        for pair in &mut w.pairs {
                            pair.record_full(now, false, FullReason::LostEvents);
                        }
                    }
                }
                Change::Linked { watch, rel } => {
                    self.compare_linked(watch, now);
                    if let Some(rel) = rel
                        && let Some(inode) = self.watcher.look_for_other_names(watch, &rel)
                    {
                        self.note_search_in_journal(watch, inode);
                    }
                }
                Change::LinkedInode { watch, inode } => {
                    self.watcher.look_for_names_again(watch, inode);
                    self.note_search_in_journal(watch, inode);
                }
                Change::Kept { watch, inode } => {
                    self.note_search_in_journal(watch, inode);
                }
                Change::ChangedSince { watch, since, dev } => {
                    self.watcher.look_for_changed_since(watch, since, dev);
                    self.note_changed_since_in_journal(watch, since, dev);
                }
                Change::RootGone { watch } => {
                    self.check_source_after(watch, true);
                }
                Change::Move {
                    watch,
                    from,
                    to,
                    implied,
                } => {
                    tracing::debug!(
                        "moved: {} -> {} ({} below)",
                        String::from_utf8_lossy(&from),
                        String::from_utf8_lossy(&to),
                        implied.len()
                    );
                    self.settling.moved(watch, &from, &to);
                    if let Some(w) = self.watches.get_mut(&watch) {
                        for pair in &mut w.pairs {
                            pair.record_move(&from, &to, implied.clone(), now);
                        }
                    }
                }
                Change::Renamed { watch, from, to } => {
                    tracing::debug!(
                        "renamed (compared whole): {} -> {}",
                        String::from_utf8_lossy(&from),
                        String::from_utf8_lossy(&to)
                    );
                    if let Some(w) = self.watches.get_mut(&watch) {
                        for pair in &mut w.pairs {
                            pair.record_rename(&from, &to, now);
                        }
                    }
                }
            }
        }
        self.write_journal();
    }
}
