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

use super::watch_tree::Wd;

/// How many removed names are remembered; past it, the oldest are forgotten
/// (a write through one of them is then taken for a write before its
/// removal, as before these were remembered). Each is a directory's watch
/// and a name of at most 255 bytes: a few MB at most.
const MAX_REMEMBERED: usize = 16_384;

/// File names whose removal was read, by directory (its watch: a directory
/// renamed keeps its names, one removed takes them along), until a file takes
/// the name again.
#[derive(Default)]
pub(super) struct RemovedNames {
    /// Each directory's names, with the number of their removal (the order of
    /// `order`).
    names: HashMap<Wd, HashMap<Vec<u8>, u64>>,
    count: usize,
    /// Removals, oldest first, to forget the oldest when full; one whose name
    /// was taken again (or removed again since) is skipped.
    order: VecDeque<(u64, Wd, Vec<u8>)>,
    removals: u64,
}

impl RemovedNames {
    /// `name` in directory `dir` was removed (`IN_DELETE` of a file).
    pub(super) fn removed(&mut self, dir: Wd, name: &[u8]) {
        while self.count >= MAX_REMEMBERED {
            let Some((number, wd, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.number_of(wd, &oldest) == Some(number) {
                self.take(wd, &oldest);
            }
        }
        if self.order.len() >= 2 * MAX_REMEMBERED {
            // Mostly names taken again: only the live ones are kept.
            let names = &self.names;
            self.order.retain(|(n, wd, name)| {
                names.get(wd).and_then(|d| d.get(name.as_slice())) == Some(n)
            });
        }
        self.removals += 1;
        self.order.push_back((self.removals, dir, name.to_vec()));
        if self
            .names
            .entry(dir)
            .or_default()
            .insert(name.to_vec(), self.removals)
            .is_none()
        {
            self.count += 1;
        }
    }

    /// A file took (or left) the name `name` in directory `dir` (created,
    /// renamed there or away): writes named so are not a removed name's.
    pub(super) fn named_again(&mut self, dir: Wd, name: &[u8]) {
        if self.count > 0 {
            self.take(dir, name);
        }
    }

    /// Whether `name` in directory `dir` is a name whose removal was read and
    /// that no file took since.
    pub(super) fn is_removed(&self, dir: Wd, name: &[u8]) -> bool {
        self.count > 0 && self.number_of(dir, name).is_some()
    }

    /// Forgets the names of a directory no longer watched.
    pub(super) fn forget_dir(&mut self, dir: Wd) {
        if let Some(names) = self.names.remove(&dir) {
            self.count -= names.len();
        }
    }

    fn number_of(&self, dir: Wd, name: &[u8]) -> Option<u64> {
        self.names.get(&dir)?.get(name).copied()
    }

    fn take(&mut self, dir: Wd, name: &[u8]) {
        let Some(names) = self.names.get_mut(&dir) else {
            return;
        };
        if names.remove(name).is_some() {
            self.count -= 1;
        }
        if names.is_empty() {
            self.names.remove(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_removed_until_a_file_takes_it_again() {
        let mut names = RemovedNames::default();
        assert!(!names.is_removed(1, b"a"));
        names.removed(1, b"a");
        assert!(names.is_removed(1, b"a"));
        assert!(!names.is_removed(2, b"a"));
        names.named_again(1, b"a");
        assert!(!names.is_removed(1, b"a"));
        names.removed(2, b"b");
        names.forget_dir(2);
        assert!(!names.is_removed(2, b"b"));
        assert_eq!(names.count, 0);
    }

    #[test]
    fn the_oldest_names_are_forgotten_past_the_bound() {
        let mut names = RemovedNames::default();
        for i in 0..=MAX_REMEMBERED {
            names.removed(1, i.to_string().as_bytes());
        }
        assert!(!names.is_removed(1, b"0"));
        assert!(names.is_removed(1, b"1"));
        assert!(names.is_removed(1, MAX_REMEMBERED.to_string().as_bytes()));
        assert_eq!(names.count, MAX_REMEMBERED);
    }

    #[test]
    fn a_name_removed_again_is_not_forgotten_for_its_first_removal() {
        let mut names = RemovedNames::default();
        names.removed(1, b"a");
        names.named_again(1, b"a");
        for i in 0..MAX_REMEMBERED - 1 {
            names.removed(1, i.to_string().as_bytes());
        }
        names.removed(1, b"a");
        // Full: the next removal forgets the oldest live one ("0"), not "a",
        // whose first removal is older but was taken again.
        names.removed(1, b"new");
        assert!(names.is_removed(1, b"a"));
        assert!(!names.is_removed(1, b"0"));
    }
}
