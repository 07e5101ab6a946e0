//! Writes through a file name that was removed before the write.
//!
//! A program may keep a descriptor open on a name and write through it after
//! the name was removed (`exec 3>>a; ln a b; rm a; echo x >&3`). The data goes
//! to the file's other names, if it has any (`b`), and inotify names only the
//! removed one. The watches do not carry `IN_EXCL_UNLINK`, so such a write is
//! still reported, by its removed name; a name whose removal was already read
//! cannot be looked up any more, so whether the file had other names, and
//! where, is unknown: the write is a change of a file with other names (a full
//! sync of the trees on its filesystem, once the writes pause; README "How a
//! sync works", docs/RELIABILITY.md "Known limits"). A write read before the
//! removal is an ordinary change: the name existed when it was written.

use std::collections::{HashMap, VecDeque};

/// How many removed names are remembered; past it, the oldest are forgotten
/// (a write through one of them is then taken for a write before its
/// removal, as before these were remembered).
const MAX_REMEMBERED: usize = 65_536;

type Key = (u32, Vec<u8>);

/// File names whose removal was read, until a file takes the name again.
#[derive(Default)]
pub(super) struct RemovedNames {
    /// Each name, with the number of its removal (the order of `order`).
    names: HashMap<Key, u64>,
    /// Removals, oldest first, to forget the oldest when full; one whose name
    /// was taken again (or removed again since) is skipped.
    order: VecDeque<(u64, Key)>,
    removals: u64,
}

impl RemovedNames {
    /// `rel` of `watch` was removed (`IN_DELETE` of a file).
    pub(super) fn removed(&mut self, watch: u32, rel: &[u8]) {
        while self.names.len() >= MAX_REMEMBERED {
            let Some((number, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.names.get(&oldest) == Some(&number) {
                self.names.remove(&oldest);
            }
        }
        if self.order.len() >= 2 * MAX_REMEMBERED {
            // Mostly names taken again: only the live ones are kept.
            let names = &self.names;
            self.order.retain(|(n, k)| names.get(k) == Some(n));
        }
        self.removals += 1;
        let key = (watch, rel.to_vec());
        self.order.push_back((self.removals, key.clone()));
        self.names.insert(key, self.removals);
    }

    /// A file took the name `rel` of `watch` again (created, renamed or
    /// linked there): writes named so are that file's.
    pub(super) fn named_again(&mut self, watch: u32, rel: &[u8]) {
        if !self.names.is_empty() {
            self.names.remove(&(watch, rel.to_vec()));
        }
    }

    /// Whether `rel` of `watch` is a name whose removal was read and that no
    /// file took since.
    pub(super) fn is_removed(&self, watch: u32, rel: &[u8]) -> bool {
        !self.names.is_empty() && self.names.contains_key(&(watch, rel.to_vec()))
    }

    /// Forgets the names of a tree no longer watched.
    pub(super) fn forget(&mut self, watch: u32) {
        self.names.retain(|(w, _), _| *w != watch);
        self.order.retain(|(_, (w, _))| *w != watch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_removed_until_a_file_takes_it_again() {
        let mut names = RemovedNames::default();
        assert!(!names.is_removed(0, b"a"));
        names.removed(0, b"a");
        assert!(names.is_removed(0, b"a"));
        assert!(!names.is_removed(1, b"a"));
        names.named_again(0, b"a");
        assert!(!names.is_removed(0, b"a"));
        names.removed(1, b"b");
        names.forget(1);
        assert!(!names.is_removed(1, b"b"));
    }

    #[test]
    fn the_oldest_names_are_forgotten_past_the_bound() {
        let mut names = RemovedNames::default();
        for i in 0..=MAX_REMEMBERED {
            names.removed(0, i.to_string().as_bytes());
        }
        assert!(!names.is_removed(0, b"0"));
        assert!(names.is_removed(0, b"1"));
        assert!(names.is_removed(0, MAX_REMEMBERED.to_string().as_bytes()));
        assert_eq!(names.names.len(), MAX_REMEMBERED);
    }

    #[test]
    fn a_name_removed_again_is_not_forgotten_for_its_first_removal() {
        let mut names = RemovedNames::default();
        names.removed(0, b"a");
        names.named_again(0, b"a");
        for i in 0..MAX_REMEMBERED - 1 {
            names.removed(0, i.to_string().as_bytes());
        }
        names.removed(0, b"a");
        // Full: the next removal forgets the oldest live one ("0"), not "a",
        // whose first removal is older but was taken again.
        names.removed(0, b"new");
        assert!(names.is_removed(0, b"a"));
        assert!(!names.is_removed(0, b"0"));
    }
}
