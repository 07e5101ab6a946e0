//! The places each object left by a rename during one drain of the queue.
//!
//! The kernel merges an event into one alike still queued from the same
//! process, and two renames of one object from one place to another are
//! alike: a program that renames `p` to `q`, back, and to `q` again is read
//! as the first two renames, and `p` seems to be back (three `mv` commands
//! are three processes, and are never merged). A
//! third rename can be merged so only after the object came back to a place
//! it left, and all three are then read in the same drain (the first was
//! still queued when the third came, so the second was too). A rename back
//! to a place left earlier in the drain is therefore where the events stop
//! saying where the object is (see `events.rs`, `renamed`).

use std::collections::{HashMap, HashSet};

use super::records::{DirEntry, Fid};

/// Past this many places left in one drain (all objects together), every
/// further rename counts as a return (compared whole rather than renamed
/// on the target): memory and time stay bounded however many renames a
/// drain holds, one object renamed through many names included (a review).
const MAX_PLACES: usize = 65_536;

/// The places left by each object renamed in the current drain.
#[derive(Default)]
pub(super) struct Renames {
    left: HashMap<Fid, HashSet<DirEntry>>,
    places: usize,
}

impl Renames {
    /// A new drain: nothing left yet.
    pub(super) fn clear(&mut self) {
        self.left.clear();
        self.places = 0;
    }

    /// Whether `object`, renamed from `old` to `new`, comes back to a place
    /// it left earlier in this drain; `old` is noted as left.
    pub(super) fn returns(&mut self, object: &Fid, old: &DirEntry, new: &DirEntry) -> bool {
        if self.places >= MAX_PLACES {
            return true;
        }
        let left = self.left.entry(object.clone()).or_default();
        let back = left.contains(new);
        if left.insert(old.clone()) {
            self.places += 1;
        }
        back
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: u8, name: &str) -> DirEntry {
        DirEntry {
            dir: Fid(vec![dir]),
            name: name.as_bytes().to_vec(),
        }
    }

    #[test]
    fn only_a_rename_back_to_a_place_left_in_the_drain_is_a_return() {
        let mut renames = Renames::default();
        let (x, y) = (Fid(vec![9]), Fid(vec![8]));
        let (p, q, r) = (entry(1, "p"), entry(1, "q"), entry(2, "r"));
        assert!(!renames.returns(&x, &p, &q), "a first rename");
        assert!(
            !renames.returns(&y, &q, &p),
            "another object into the place x left"
        );
        assert!(!renames.returns(&x, &q, &r), "on to a third place");
        assert!(renames.returns(&x, &r, &p), "back where it started");
        assert!(renames.returns(&x, &p, &q), "and away again");
        renames.clear();
        assert!(
            !renames.returns(&x, &q, &p),
            "a new drain knows nothing left"
        );
    }
}
