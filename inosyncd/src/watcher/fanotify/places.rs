//! Where a directory handle or an entry is, as far as the watches are concerned:
//! outside every tree, excluded, or a path in one tree. Looked up through the
//! handle when not remembered for the current generation of directory renames.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::handles::{self, Resolved};
use super::records::{DirEntry, Fid};
use super::{FanWatcher, MAX_REMEMBERED_OUTSIDE};
use crate::watcher::join;
use crate::watcher::mounts::is_within;

/// Where a directory or entry is, as far as the watches are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Place {
    Outside,
    Excluded,
    Inside { watch: u32, rel: Vec<u8> },
}

pub(super) struct Cached {
    pub(super) generation: u64,
    pub(super) place: Place,
}

impl FanWatcher {
    /// Where an entry is; `None` when its directory cannot be placed now.
    ///
    /// A directory gone before its events are read, and never seen, matters only
    /// for events that added or removed entries (`entry_changed`): those are kept
    /// until its own deletion or rename is read. A file written or closed in it
    /// is gone with it: its deletion, wherever the directory was, is either
    /// queued (and lists it) or happened before the mark (and before the initial
    /// sync that follows the mark). A directory that could not be named for
    /// another reason (an error) may be live: its events always wait or escalate.
    pub(super) fn place_entry(
        &mut self,
        entry: &DirEntry,
        is_dir: bool,
        entry_changed: bool,
    ) -> Option<Place> {
        let dir = self.place_dir(&entry.dir, entry_changed)?;
        let Place::Inside { watch, rel } = dir else {
            return Some(dir);
        };
        // "." is the directory itself; the kernel never sends a name with a
        // slash, but a name that is not one entry stays at its directory.
        if entry.name == b"."
            || entry.name.is_empty()
            || entry.name.contains(&b'/')
            || entry.name == b".."
        {
            return Some(Place::Inside { watch, rel });
        }
        Some(self.entry_in(watch, &rel, &entry.name, is_dir))
    }

    /// Where entry `name` of directory `rel` of tree `watch` is: excluded
    /// by its own name or not.
    fn entry_in(&self, watch: u32, rel: &[u8], name: &[u8], is_dir: bool) -> Place {
        let rel = join(rel, name);
        match self.roots.get(&watch) {
            Some(root) if root.excludes.matches(&rel, is_dir) => Place::Excluded,
            Some(_) => Place::Inside { watch, rel },
            None => Place::Outside,
        }
    }

    /// Where the file (not a directory) at absolute `path`, as the kernel
    /// names it, is.
    pub(super) fn place_of_file(&self, path: &[u8]) -> Place {
        let Some(slash) = path.iter().rposition(|b| *b == b'/') else {
            return Place::Outside;
        };
        let name = &path[slash + 1..];
        if name.is_empty() || name == b"." || name == b".." {
            return Place::Outside;
        }
        match self.place_of(&path[..slash]) {
            Place::Inside { watch, rel } => self.entry_in(watch, &rel, name, false),
            other => other,
        }
    }

    fn place_dir(&mut self, fid: &Fid, entry_changed: bool) -> Option<Place> {
        if let Some(cached) = self.dirs.get(fid)
            && cached.generation == self.generation
        {
            return Some(cached.place.clone());
        }
        match self.resolve(fid) {
            // Below no mount a tree reaches: outside every tree.
            Some(Resolved::Unreachable) => {
                self.remember(fid.clone(), Place::Outside);
                Some(Place::Outside)
            }
            Some(Resolved::Path(path)) => {
                let place = self.place_of(&path);
                // Only a path in a tree can be re-rooted by a rename still queued.
                self.looked_up |= place != Place::Outside;
                self.remember(fid.clone(), place.clone());
                Some(place)
            }
            // No tree on that filesystem any more.
            None => Some(Place::Outside),
            Some(unresolved) => {
                // Gone: where it was last seen, if it was.
                if let Some(cached) = self.dirs.get(fid) {
                    return Some(cached.place.clone());
                }
                // A write in a deleted directory (a log rotated away while a
                // program still writes it) is let go, and often: only traced.
                if must_be_placed(&unresolved, entry_changed) {
                    tracing::debug!("{fid:?} cannot be placed now: {unresolved:?}");
                    self.unplaced.insert(fid.clone());
                } else {
                    tracing::trace!("{fid:?} is gone: its write went with it");
                }
                None
            }
        }
    }

    /// Looks a directory handle up through each mount of its filesystem that a
    /// tree reaches, deepest mount point first (a bind mount shows a part of a
    /// filesystem that its other mounts show elsewhere): the first one through
    /// which the directory is reachable names it. `None`: no tree reaches that
    /// filesystem.
    pub(super) fn resolve(&mut self, fid: &Fid) -> Option<Resolved> {
        let views = self.views.get(&fid.fsid())?.clone();
        let mut result = Resolved::Unreachable;
        // Reached through a mount where it is outside every tree: another
        // mount may show the same directory in a tree (`/srv/data` a bind
        // mount of `/data`, trees `/data/a` and `/srv/data/b`: `/data/a`
        // was named `/srv/data/a`, and its changes went unseen; a review).
        let mut outside: Option<Vec<u8>> = None;
        for point in views {
            let mount = self.opened.entry(point.clone()).or_insert_with(|| {
                handles::mount_fd(Path::new(std::ffi::OsStr::from_bytes(&point))).ok()
            });
            // A mount point that cannot be opened now (a full descriptor
            // table): the directory may well be in a tree, so it is not
            // taken for outside (see `must_be_placed`).
            let Some(mount) = mount else {
                result =
                    Resolved::Unknown(format!("cannot open {}", String::from_utf8_lossy(&point)));
                continue;
            };
            match handles::resolve(mount, fid) {
                Resolved::Path(path) if is_within(&path, &point) => {
                    if self.place_of(&path) != Place::Outside {
                        return Some(Resolved::Path(path));
                    }
                    outside.get_or_insert(path);
                }
                // Not below this mount's part of the filesystem.
                Resolved::Path(_) | Resolved::Unreachable => {}
                other => result = other,
            }
        }
        // Outside through every mount that could be looked through; one that
        // could not (a full descriptor table) may show it in a tree.
        Some(match outside {
            Some(_) if matches!(result, Resolved::Unknown(_)) => result,
            Some(path) => Resolved::Path(path),
            None => result,
        })
    }

    /// A mount of filesystem `dev` that a tree reaches, opened for this drain.
    pub(super) fn view_of(&mut self, dev: u64) -> Option<&OwnedFd> {
        let point = self.views.get(&dev)?.last()?.clone();
        self.opened
            .entry(point.clone())
            .or_insert_with(|| {
                handles::mount_fd(Path::new(std::ffi::OsStr::from_bytes(&point))).ok()
            })
            .as_ref()
    }

    /// The tree a path lies in: its prefixes at each `/` looked up, longest
    /// first (trees never nest), so the cost is the path's depth, not the number
    /// of trees.
    fn place_of(&self, path: &[u8]) -> Place {
        let ends = path
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| i)
            .chain(std::iter::once(path.len()));
        let mut ends: Vec<usize> = ends.collect();
        ends.reverse();
        for end in ends {
            let Some(watch) = self.root_at.get(&path[..end]) else {
                continue;
            };
            let rel = path.get(end + 1..).unwrap_or_default();
            let Some(root) = self.roots.get(watch) else {
                break;
            };
            if root.excludes.is_excluded(rel, true) {
                return Place::Excluded;
            }
            return Place::Inside {
                watch: *watch,
                rel: rel.to_vec(),
            };
        }
        Place::Outside
    }

    /// The trees whose roots lie below directory entry `entry` (a directory
    /// above them, by its name in its parent, as it was before a rename).
    /// Only roots with that name among their path's components are looked
    /// at, so a rename elsewhere costs no look-up.
    pub(super) fn roots_below(&mut self, entry: &DirEntry) -> Vec<u32> {
        let component = [b"/".as_slice(), &entry.name, b"/"].concat();
        let named: Vec<u32> = self
            .roots
            .iter()
            .filter(|(_, root)| {
                root.path
                    .windows(component.len())
                    .any(|part| part == component.as_slice())
            })
            .map(|(watch, _)| *watch)
            .collect();
        if named.is_empty() {
            return named;
        }
        let Some(Resolved::Path(dir)) = self.resolve(&entry.dir) else {
            return Vec::new();
        };
        let mut above = dir;
        if above.last() != Some(&b'/') {
            above.push(b'/');
        }
        above.extend_from_slice(&entry.name);
        above.push(b'/');
        named
            .into_iter()
            .filter(|watch| {
                self.roots
                    .get(watch)
                    .is_some_and(|root| root.path.starts_with(&above))
            })
            .collect()
    }

    /// Forgets where directory `fid` is: it is looked up when next met.
    pub(super) fn forget(&mut self, fid: &Fid) {
        if let Some(old) = self.dirs.remove(fid)
            && old.place == Place::Outside
        {
            self.outside -= 1;
        }
    }

    pub(super) fn remember(&mut self, fid: Fid, place: Place) {
        // A watch root is its tree's, whatever the event read from the
        // directory above it says: its creation (or arrival) read after it
        // was watched again made it outside, and everything written in it
        // went unseen (a black-box attack: `rm -rf S && mkdir S`).
        let place = match self.root_fids.get(&fid) {
            Some(watch) => Place::Inside {
                watch: *watch,
                rel: Vec::new(),
            },
            None => place,
        };
        if place == Place::Outside {
            if self.outside >= MAX_REMEMBERED_OUTSIDE {
                self.dirs.retain(|_, c| c.place != Place::Outside);
                self.outside = 0;
            }
            self.outside += 1;
        }
        let cached = Cached {
            generation: self.generation,
            place,
        };
        if let Some(old) = self.dirs.insert(fid, cached)
            && old.place == Place::Outside
        {
            self.outside -= 1;
        }
    }
}

/// Whether the events of a directory that cannot be named now must still be
/// placed (by its own deletion or rename, else a full sync): those that added or
/// removed entries, always. A file written in a directory that is *gone* went
/// with it; one that merely could not be named (an error) may be live.
fn must_be_placed(unresolved: &Resolved, entry_changed: bool) -> bool {
    entry_changed || !matches!(unresolved, Resolved::Gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_content_event_in_a_gone_directory_may_be_let_go() {
        assert!(must_be_placed(&Resolved::Gone, true));
        assert!(!must_be_placed(&Resolved::Gone, false));
        assert!(must_be_placed(&Resolved::Unknown("EMFILE".into()), true));
        assert!(must_be_placed(&Resolved::Unknown("EMFILE".into()), false));
    }
}
