//! The places each object left by a rename during one drain of the queue.
//!
//! The kernel merges an event into one alike still queued, and two renames
//! of one object from one place to another are alike: `mv p q; mv q p;
//! mv p q` is read as the first two renames, and `p` seems to be back. A
//! third rename can be merged so only after the object came back to a place
//! it left, and all three are then read in the same drain (the first was
//! still queued when the third came, so the second was too). A rename back
//! to a place left earlier in the drain is therefore where the events stop
//! saying where the object is (see `events.rs`, `renamed`).

use std::collections::HashMap;

use super::records::{DirEntry, Fid};

/// Past this many objects renamed in one drain, a rename of another one
/// counts as a return (compared whole rather than renamed on the target):
/// memory stays bounded however many renames a drain holds.
const MAX_OBJECTS: usize = 65_536;

/// The places left by each object renamed in the current drain.
#[derive(Default)]
pub(super) struct Renames {
    left: HashMap<Fid, Vec<DirEntry>>,
}

impl Renames {
    /// A new drain: nothing left yet.
    pub(super) fn clear(&mut self) {
        self.left.clear();
    }

    /// Whether `object`, renamed from `old` to `new`, comes back to a place
    /// it left earlier in this drain; `old` is noted as left.
    pub(super) fn returns(&mut self, object: &Fid, old: &DirEntry, new: &DirEntry) -> bool {
        if self.left.len() >= MAX_OBJECTS && !self.left.contains_key(object) {
            return true;
        }
        let left = self.left.entry(object.clone()).or_default();
        let back = left.contains(new);
        if !left.contains(old) {
            left.push(old.clone());
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
