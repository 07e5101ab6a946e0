//! Writes reported by a name that was gone by the time they were read.
//!
//! The kernel names a write by the name the writer opened, even after that
//! name was removed or renamed: a descriptor held open on `gone` after
//! `rm gone` still writes the file, and the write is reported as `gone`. When
//! the file has another name (`ln kept gone` before), that name holds what was
//! written, and no event names it. Looking the written name up finds nothing,
//! so it says neither whether the file has other names nor where.
//!
//! A name is also gone when it was renamed after the write (an editor's or a
//! deploy's atomic save: write `.f.tmp`, then `mv .f.tmp f`), which is far more
//! common and needs nothing more than the rename it is followed by. The two
//! cannot be told apart when the write is read, so such a write is kept until
//! the queue has been read once more: every rename or deletion that made its
//! name go happened before the look-up, so its event has been read by then.
//! The written names follow the renames read meanwhile (of the file, or of a
//! directory above it). Then the file's handle says how many names it has:
//! when they are all among the names followed, nothing more is needed (the
//! changes already recorded cover them); otherwise its other names are those
//! from the link index, when it knows enough of them, or else unknown, and
//! every tree on its filesystem is compared whole (README "How a sync
//! works", docs/RELIABILITY.md "Every kind of change").

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::FanWatcher;
use super::handles::{self, FileLinks};
use super::places::Place;
use super::records::Fid;
use crate::watcher::Change;

/// Past this many files written by gone names in one read, the trees on their
/// filesystems are compared whole instead of each file being looked up.
const MAX_KEPT: usize = 65_536;

/// The files written by a gone name, until the queue has been read again.
#[derive(Default)]
pub(super) struct GoneWrites {
    files: HashMap<Fid, Written>,
    /// Filesystems (device numbers) with more such files than were kept.
    overflowed: Vec<u64>,
}

struct Written {
    /// The read (see `FanWatcher::reads`) in which the write was seen.
    read: u64,
    /// The names written through, following renames since; `None` for one
    /// renamed out of every tree.
    names: Vec<Option<(u32, Vec<u8>)>>,
}

impl GoneWrites {
    /// Whether writes wait to be placed (`wait` is not idle yet).
    pub(super) fn is_empty(&self) -> bool {
        self.files.is_empty() && self.overflowed.is_empty()
    }
}

impl FanWatcher {
    /// A write or attribute change of `object`, reported by `rel`, which did
    /// not exist any more when looked up.
    pub(super) fn written_by_gone_name(&mut self, object: &Fid, watch: u32, rel: Vec<u8>) {
        let read = self.reads;
        let gone = &mut self.gone;
        if let Some(written) = gone.files.get_mut(object) {
            written.read = read;
            if !written
                .names
                .iter()
                .flatten()
                .any(|(w, r)| *w == watch && *r == rel)
            {
                written.names.push(Some((watch, rel)));
            }
            return;
        }
        if gone.files.len() >= MAX_KEPT {
            if !gone.overflowed.contains(&object.fsid()) {
                gone.overflowed.push(object.fsid());
            }
            return;
        }
        gone.files.insert(
            object.clone(),
            Written {
                read,
                names: vec![Some((watch, rel))],
            },
        );
    }

    /// A rename: the written names at `from` (the file's own, or any below a
    /// directory's) are now at `to` (`None`: out of every tree).
    pub(super) fn gone_names_follow(
        &mut self,
        object: Option<&Fid>,
        is_dir: bool,
        from: &Option<Place>,
        to: &Option<Place>,
    ) {
        if self.gone.files.is_empty() {
            return;
        }
        let Some(Place::Inside { watch, rel: from }) = from else {
            return;
        };
        let to = match to {
            Some(Place::Inside { watch, rel }) => Some((*watch, rel.as_slice())),
            _ => None,
        };
        let follow = |names: &mut Vec<Option<(u32, Vec<u8>)>>| {
            for name in names.iter_mut() {
                let Some((w, r)) = name else { continue };
                if *w != *watch || !is_at_or_below(r, from, is_dir) {
                    continue;
                }
                *name = to.map(|(to_watch, to)| (to_watch, [to, &r[from.len()..]].concat()));
            }
        };
        if is_dir {
            self.gone
                .files
                .values_mut()
                .for_each(|w| follow(&mut w.names));
        } else if let Some(written) = object.and_then(|o| self.gone.files.get_mut(o)) {
            follow(&mut written.names);
        }
    }

    /// Looks up the files written by gone names in an earlier read than this
    /// one (all of them when `all`): each whose names are not all known is a
    /// change of its other names.
    pub(super) fn place_gone_writes(&mut self, all: bool, out: &mut Vec<Change>) {
        let read = self.reads;
        let due: Vec<Fid> = self
            .gone
            .files
            .iter()
            .filter(|(_, w)| all || w.read < read)
            .map(|(fid, _)| fid.clone())
            .collect();
        let mut unknown = std::mem::take(&mut self.gone.overflowed);
        for fid in due {
            let Some(written) = self.gone.files.remove(&fid) else {
                continue;
            };
            let dev = fid.fsid();
            let found = match self.view_of(dev) {
                Some(mount) => handles::links_of(mount, &fid),
                None => FileLinks::Unknown("its filesystem cannot be opened".into()),
            };
            let placed = match found {
                FileLinks::Gone | FileLinks::Directory => true,
                FileLinks::Unknown(why) => {
                    tracing::debug!("a file written by a name gone since: {why}");
                    false
                }
                FileLinks::Found { inode, links, .. } => {
                    self.push_other_names(inode, links, &written.names, out)
                }
            };
            if !placed && !unknown.contains(&dev) {
                unknown.push(dev);
            }
        }
        if !unknown.is_empty() {
            self.compare_filesystems(&unknown, out);
        }
    }

    /// Whether every name of file `inode` (`links` of them now) is known: among
    /// the names followed (which their recorded changes cover), or else in the
    /// link index (pushed as changes here).
    fn push_other_names(
        &self,
        inode: super::links::Inode,
        links: u64,
        names: &[Option<(u32, Vec<u8>)>],
        out: &mut Vec<Change>,
    ) -> bool {
        let is_still = |watch: u32, rel: &[u8]| {
            self.roots
                .get(&watch)
                .is_some_and(|root| super::links::is_still(root.path(), rel, inode))
        };
        // A name followed out of every tree is still one of the file's names.
        let followed = names
            .iter()
            .filter(|n| n.as_ref().is_none_or(|(w, r)| is_still(*w, r)))
            .count() as u64;
        if followed >= links {
            return true;
        }
        let indexed: Vec<(u32, Vec<u8>)> = self
            .links
            .names_of(inode)
            .into_iter()
            .filter(|(w, r)| {
                is_still(*w, r) && !names.iter().flatten().any(|(nw, nr)| nw == w && nr == r)
            })
            .collect();
        if followed + indexed.len() as u64 >= links {
            for (watch, rel) in indexed {
                out.push(Change::Path { watch, rel });
            }
            return true;
        }
        false
    }

    /// Files of these filesystems were written and their other names are not
    /// known: every tree on them is compared whole.
    fn compare_filesystems(&mut self, devs: &[u64], out: &mut Vec<Change>) {
        let mut watches: Vec<u32> = self
            .roots
            .iter()
            .filter(|(_, root)| root.mounts.iter().any(|m| devs.contains(&m.dev)))
            .map(|(watch, _)| *watch)
            .collect();
        watches.sort_unstable();
        let now = Instant::now();
        if self
            .gone_logged
            .is_none_or(|at| now.duration_since(at) > Duration::from_secs(60))
        {
            self.gone_logged = Some(now);
            tracing::info!(
                "a file written through a name removed since has other names, not known: \
                 full sync of watch(es) {watches:?} (logged once a minute)"
            );
        }
        for watch in watches {
            out.push(Change::Everything { watch });
        }
    }
}

/// Whether `path` is `at`, or (for a directory) below it.
fn is_at_or_below(path: &[u8], at: &[u8], is_dir: bool) -> bool {
    path == at
        || (is_dir && path.len() > at.len() && path.starts_with(at) && path[at.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_rename_follows_only_its_own_name_and_a_directory_everything_below() {
        assert!(is_at_or_below(b"a/b", b"a/b", false));
        assert!(!is_at_or_below(b"a/b/c", b"a/b", false));
        assert!(is_at_or_below(b"a/b/c", b"a/b", true));
        assert!(!is_at_or_below(b"a/bc", b"a/b", true));
        assert!(!is_at_or_below(b"a", b"a/b", true));
    }
}
