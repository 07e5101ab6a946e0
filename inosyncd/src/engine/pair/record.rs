//! What the watcher saw, recorded in a pair: changed paths, trees to compare
//! whole, moves to rename on the target, a full sync. Bounded: past
//! `MAX_PENDING_PATHS` the pair collapses into one full sync.

use tokio::time::Instant;

use super::{MAX_PENDING_PATHS, Pair};
use crate::engine::batch::FullReason;
use crate::rsync::Move;

impl Pair {
    /// A path changed.
    pub fn record(&mut self, rel: &[u8], now: Instant) {
        self.first_change.get_or_insert(now);
        self.last_change = Some(now);
        // Something appeared in (or left) the source: look at it again.
        self.empty_hold = false;
        if self.pending_full {
            // A full sync compares sizes and mtimes: a file rewritten with
            // both kept (`cp -p`, `tar x`) would not go. A listed path is
            // compared whatever they are (`--ignore-times`): it is kept, and
            // goes listed before the full sync (see `Pair::start`); not when
            // the full sync compares contents, or is one for too many paths.
            if self.keeps_paths_beside_full()
                && self.pending.len() < MAX_PENDING_PATHS
                && !self.pending.contains(rel)
            {
                self.pending.insert(rel.to_vec());
            }
            return;
        }
        if !self.pending.contains(rel) {
            self.pending.insert(rel.to_vec());
        }
        if self.pending.len() > MAX_PENDING_PATHS {
            tracing::info!(
                "{}: more than {MAX_PENDING_PATHS} changed paths pending; collapsing them into one full sync",
                self.destination
            );
            self.record_full(now, false, FullReason::TooManyPaths);
        }
    }

    /// A directory may now be another tree than the one the target holds: it is
    /// listed, and compared as a whole tree (deletions included).
    pub fn record_tree(&mut self, rel: &[u8], now: Instant) {
        self.record(rel, now);
        // Kept beside a full sync too: a tree swapped in with the old one's
        // sizes and mtimes (a reproducible build) is sent again whole only
        // as a tree (found by a review).
        if !self.pending_full || self.keeps_paths_beside_full() {
            self.trees.insert(rel.to_vec());
        }
    }

    /// Whether paths recorded while a full sync is pending are kept, to go
    /// listed before it (see `record`).
    fn keeps_paths_beside_full(&self) -> bool {
        self.full_reason != FullReason::TooManyPaths && !self.compare_contents
    }

    /// A move recorded while a full sync is pending: its two places go
    /// listed before the full sync, both compared as trees (not renamed: the
    /// full sync after it transfers anyway). Kept so that a full sync that
    /// deletes nothing (`delete = "running"`) still leaves no old name, nor
    /// the old tree's files below the old name made again (`mv x y; mkdir
    /// x`), and a tree moved in with the same sizes and mtimes arrives.
    fn record_move_beside_full(&mut self, m: &Move) {
        if !self.keeps_paths_beside_full() || self.pending.len() >= MAX_PENDING_PATHS {
            return;
        }
        for path in [&m.from, &m.to].into_iter().chain(&m.fallback) {
            self.pending.insert(path.clone());
        }
        self.trees.insert(m.from.clone());
        self.trees.insert(m.to.clone());
    }

    /// A directory was made: listed, and remembered as new (see
    /// `Change::Made`) until the next batch takes it.
    pub fn record_made(&mut self, rel: &[u8], now: Instant) {
        self.record(rel, now);
        // Made where a pending move goes to or comes from: the move's place
        // may be compared whole after the walk (a rename that fails, a move
        // copied under `delete = false`), which would send it all again.
        let moved_here = self
            .moves
            .iter()
            .any(|m| related(rel, &m.to) || related(rel, &m.from));
        if !self.pending_full && !rel.is_empty() && !moved_here {
            self.made.insert(rel.to_vec());
        }
    }

    /// `from` was renamed to `to` in the source (`implied`: what lies below `to`).
    /// Pending paths below `from` move along; the move itself is renamed on the
    /// target before the next batch's transfer, or transferred when it cannot be.
    pub fn record_move(&mut self, from: &[u8], to: &[u8], implied: Vec<Vec<u8>>, now: Instant) {
        self.first_change.get_or_insert(now);
        self.last_change = Some(now);
        self.leftovers.reroot(from, to);
        self.empty_hold = false;
        if self.pending_full {
            self.record_move_beside_full(&Move {
                from: from.to_vec(),
                to: to.to_vec(),
                fallback: implied,
            });
            return;
        }
        let below =
            |p: &Vec<u8>| p.len() > from.len() && p.starts_with(from) && p[from.len()] == b'/';
        let moved = |p: &Vec<u8>| [to, &p[from.len()..]].concat();
        // What was pending below `from` is pending below `to` too. The old
        // paths stay: gone, they are only deletions (no-ops after the rename on
        // the target); and should the "move" be half of an exchange, or be moved
        // back, what now lies at `from` is covered as well.
        self.unmake(from, to);
        let pending_below: Vec<Vec<u8>> =
            self.pending.iter().filter(|p| below(p)).cloned().collect();
        for path in pending_below {
            self.pending.insert(moved(&path));
        }
        let trees_below: Vec<Vec<u8>> = self
            .trees
            .iter()
            .filter(|p| below(p) || p.as_slice() == from)
            .cloned()
            .collect();
        for tree in trees_below {
            let moved_tree = if tree.as_slice() == from {
                to.to_vec()
            } else {
                moved(&tree)
            };
            self.pending.insert(moved_tree.clone());
            self.trees.insert(moved_tree);
        }
        // Changed before it moved: what the rename brings is stale.
        if self.pending.contains(from) {
            self.pending.insert(to.to_vec());
        }
        self.held.reroot(from, to);
        let mut fallback = implied;
        fallback.push(to.to_vec());
        fallback.push(from.to_vec());
        // A batch in flight may or may not have brought paths below `from` to the
        // target before the rename there: send them again under their new name. A
        // full sync in flight leaves the target's state unknown: transfer, and
        // compare both places whole. The old name may be made again (`mv x y;
        // mkdir x`): listed alone, the target's old files below it would stay
        // (found by a black-box attack; gone, it is deleted either way).
        if let Some(running) = &self.running {
            if running.full {
                tracing::debug!(
                    "{}: {} moved during a full sync; transferred, not renamed",
                    self.destination,
                    String::from_utf8_lossy(to)
                );
                self.pending.extend(fallback);
                self.trees.insert(from.to_vec());
                self.trees.insert(to.to_vec());
                return;
            }
            let moved_here = |p: &Vec<u8>| {
                if p.as_slice() == from {
                    to.to_vec()
                } else {
                    moved(p)
                }
            };
            let in_flight: Vec<Vec<u8>> = running
                .paths
                .iter()
                .filter(|p| below(p) || p.as_slice() == from)
                .map(moved_here)
                .collect();
            let trees_in_flight: Vec<Vec<u8>> = running
                .trees
                .iter()
                .filter(|p| below(p) || p.as_slice() == from)
                .map(moved_here)
                .collect();
            self.pending.extend(in_flight);
            self.pending.extend(trees_in_flight.iter().cloned());
            self.trees.extend(trees_in_flight);
        }
        self.moves.push(Move {
            from: from.to_vec(),
            to: to.to_vec(),
            fallback,
        });
        if self.moves.len() > MAX_PENDING_PATHS / 100 {
            self.record_full(now, false, FullReason::TooManyPaths);
        }
    }

    /// A directory renamed whose two places are trees to compare whole anyway
    /// (recorded on their own): renamed on the target first when it can be, so
    /// the comparison finds the files there. Nothing pending follows it (its
    /// paths may already be where everything is now).
    pub fn record_rename(&mut self, from: &[u8], to: &[u8], now: Instant) {
        if self.pending_full || self.running.as_ref().is_some_and(|b| b.full) {
            return;
        }
        self.unmake(from, to);
        self.first_change.get_or_insert(now);
        self.moves.push(Move {
            from: from.to_vec(),
            to: to.to_vec(),
            fallback: Vec::new(),
        });
        if self.moves.len() > MAX_PENDING_PATHS / 100 {
            self.record_full(now, false, FullReason::TooManyPaths);
        }
    }

    /// A move from `from` to `to`: a directory made that it moved, or moved
    /// something into or out of, is listed path by path rather than sent as
    /// a new tree. Its paths may now be where the move is renamed to on the
    /// target, and a tree sent whole would send them again.
    fn unmake(&mut self, from: &[u8], to: &[u8]) {
        self.made.retain(|p| !related(p, from) && !related(p, to));
    }

    /// Directories where an earlier daemon's rsync may have left its files
    /// (see `Leftovers`): swept after the pair's next run. Whether every
    /// one was kept (there is a bound).
    pub fn note_leftovers(&mut self, dirs: impl IntoIterator<Item = Vec<u8>>) -> bool {
        self.leftovers.add(dirs)
    }

    /// Anything may have changed: the next batch is a full sync (`reason`: the
    /// first one asked for, for the metrics).
    pub fn record_full(&mut self, now: Instant, urgent: bool, reason: FullReason) {
        if !self.pending_full {
            self.full_reason = reason;
        }
        self.first_change.get_or_insert(now);
        self.empty_hold = false;
        self.pending_full = true;
        // The paths, trees and moves stay, to go listed before it (see
        // `record`), unless too many to list.
        for m in std::mem::take(&mut self.moves) {
            self.record_move_beside_full(&m);
        }
        if !self.keeps_paths_beside_full() || self.pending.len() > MAX_PENDING_PATHS {
            self.pending.clear();
            self.trees.clear();
        }
        self.made.clear();
        self.urgent |= urgent;
        // Asked for (`inosyncctl sync`): the held paths go right after it,
        // not at their backoff, which may be minutes (a review: `sync` then
        // `wait` waited it out, once the administrator had fixed the target).
        if urgent && reason == FullReason::Requested {
            self.held.due_now(now);
        }
    }

    /// The source root came back or was replaced by another tree: a full sync
    /// now, comparing contents (`--checksum`), since the new tree's files may
    /// have the sizes and mtimes of the old ones (a reproducible build sets
    /// every mtime alike).
    pub fn source_replaced(&mut self, now: Instant) {
        self.record_full(now, true, FullReason::SourceReplaced);
        self.compare_contents = true;
        self.replacements.0 += 1;
        // Compared by content: the pending paths need not go listed first.
        self.pending.clear();
        self.trees.clear();
    }
}

/// Whether one of two paths is the other or lies below it.
fn related(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.starts_with(short) && (long.len() == short.len() || long[short.len()] == b'/')
}
