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
//! deploy's atomic save: write `.f.tmp`, then `mv .f.tmp f`), or when the file
//! got its final name by a link before the temporary one went (git's objects,
//! Maildir, `O_TMPFILE` and `linkat`). These are far more common and need
//! nothing more than the events that follow. The cases cannot be told apart
//! when the write is read, so such a write is kept until the queue has been
//! read again, a moment later: every rename, link or deletion that made its
//! name go happened before the look-up, so its event has been read by then.
//! The file's names follow the renames read meanwhile (of the file, or of a
//! directory above it) and gain the links made to it. Then the file's handle
//! says how many names it has: when they are all among the names followed,
//! nothing more is needed (the changes already recorded cover them); with
//! one name left that its handle names, that name is listed if a tree's;
//! otherwise its other names are those from the link index, when it knows
//! enough of them, or else unknown, and every tree on its filesystem is
//! compared whole and searched (README "How a sync works", docs/RELIABILITY.md "Every kind
//! of change").

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use super::FanWatcher;
use super::handles::{self, FileLinks, Resolved};
use super::places::Place;
use super::records::{DirEntry, Fid};
use crate::watcher::Change;

/// Past this many files written by gone names, the trees on their filesystems
/// are compared whole instead of each file being looked up.
const MAX_KEPT: usize = 65_536;

/// How long after a write by a gone name the queue is read again before the
/// file is looked up: the kernel queues a rename's event just after the
/// rename is visible, and a preempted renamer could queue it after an
/// immediate read.
pub(super) const GRACE: Duration = Duration::from_millis(10);

/// The longest a file written through a gone name again and again (a log
/// whose name was removed while its writer goes on) waits to be placed: its
/// writes keep coming sooner than [`GRACE`].
pub(super) const LONGEST: Duration = Duration::from_secs(1);

/// The files written by a gone name, until the queue has been read again.
#[derive(Default)]
pub(super) struct GoneWrites {
    files: HashMap<Fid, Written>,
    /// Filesystems (device numbers) with more such files than were kept.
    overflowed: Vec<u64>,
}

/// One of the file's names, as far as it was followed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Name {
    /// In a tree.
    Tree(u32, Vec<u8>),
    /// Outside every tree (or excluded): an entry of a directory, and the path
    /// below it (empty: the entry itself), for a file in a directory moved out.
    Elsewhere(DirEntry, Vec<u8>),
}

struct Written {
    /// When the first write by a gone name was read.
    first: Instant,
    /// When the last write by a gone name was read.
    seen: Instant,
    /// The names written through, and the names it got since, following
    /// renames.
    names: Vec<Name>,
    /// How many look-ups did not find it at its names (see
    /// [`LOOK_UPS`]).
    looked_up: u32,
}

/// How many times a file is looked up before its names count as unknown: a
/// rename or deletion between the read of the queue and the look-up (a
/// staging directory renamed away and removed a moment after it was put in
/// place) takes it from the names it was followed to, and the next read
/// brings that event.
const LOOK_UPS: u32 = 4;

impl GoneWrites {
    /// Whether writes wait to be placed (`wait` is not idle yet).
    pub(super) fn is_empty(&self) -> bool {
        self.files.is_empty() && self.overflowed.is_empty()
    }

    /// When the next kept write may be placed.
    pub(super) fn next_due(&self) -> Option<Instant> {
        if !self.overflowed.is_empty() {
            return Some(Instant::now());
        }
        self.files.values().map(Written::due).min()
    }
}

impl Written {
    /// When it may be placed: once the queue is read after its grace, and
    /// no later than [`LONGEST`] after the first write.
    fn due(&self) -> Instant {
        (self.seen + GRACE).min(self.first + LONGEST)
    }
}

impl FanWatcher {
    /// A write or attribute change of `object`, reported by `rel`, which did
    /// not exist any more when looked up.
    pub(super) fn written_by_gone_name(&mut self, object: &Fid, watch: u32, rel: Vec<u8>) {
        if !self.gone.files.contains_key(object) {
            self.note_kept(object, Some(watch));
        }
        let gone = &mut self.gone;
        let name = Name::Tree(watch, rel);
        if let Some(written) = gone.files.get_mut(object) {
            written.seen = Instant::now();
            if !written.names.contains(&name) {
                written.names.push(name);
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
                first: Instant::now(),
                seen: Instant::now(),
                names: vec![name],
                looked_up: 0,
            },
        );
    }

    /// A write or attribute change of `object` in a directory that could not
    /// be placed (gone): its names are not known at all.
    pub(super) fn written_by_unplaced_name(&mut self, object: &Fid) {
        if !self.gone.files.contains_key(object) {
            self.note_kept(object, None);
        }
        if self.gone.files.len() >= MAX_KEPT && !self.gone.files.contains_key(object) {
            if !self.gone.overflowed.contains(&object.fsid()) {
                self.gone.overflowed.push(object.fsid());
            }
            return;
        }
        let now = Instant::now();
        self.gone
            .files
            .entry(object.clone())
            .and_modify(|w| w.seen = now)
            .or_insert(Written {
                first: now,
                seen: now,
                names: Vec::new(),
                looked_up: 0,
            });
    }

    /// A file first kept to be placed: while it has a name, it is
    /// noted (see [`Change::Kept`]) for the journal, by its inode, under
    /// `watch` (or the first tree on its filesystem), at the end of the read.
    fn note_kept(&mut self, object: &Fid, watch: Option<u32>) {
        // Past the bound the file is not kept (its trees are compared
        // whole): no look-up for each of its writes.
        if self.gone.files.len() >= MAX_KEPT {
            return;
        }
        let Some(watch) = watch.or_else(|| self.watches_on(&[object.fsid()]).first().copied())
        else {
            return;
        };
        let found = match self.view_of(object.fsid()) {
            Some(mount) => handles::links_of(mount, object),
            None => return,
        };
        // One name left is enough: the name written through may have
        // been removed, and that one be the file's other (a kill in the
        // moment the write is kept left `d/b` stale after `echo > d/c;
        // rm d/c`: the full suite's CI rehearsal).
        if let FileLinks::Found { inode, links, .. } = found
            && links >= 1
        {
            self.kept_linked.push(Change::Kept { watch, inode });
        }
    }

    /// A new name for `object` (a link made, `O_TMPFILE` given a name), at
    /// `place` (`entry` in the event): one of its names if it is kept.
    pub(super) fn gone_names_link(&mut self, object: &Fid, entry: &DirEntry, place: &Place) {
        let Some(written) = self.gone.files.get_mut(object) else {
            return;
        };
        let name = name_at(entry, place, b"");
        if !written.names.contains(&name) {
            written.names.push(name);
        }
    }

    /// A rename from `old` (placed `from`) to `new` (placed `to`): the names at
    /// `from` (the file's own, or any below a directory's) are now at `to`.
    /// Two entries swapped (`RENAME_EXCHANGE`) are not followed: each half
    /// would move the other's names back; the names left behind are then
    /// not the file, and it is looked up as unknown.
    pub(super) fn gone_names_follow(
        &mut self,
        object: Option<&Fid>,
        is_dir: bool,
        (old, from): (&DirEntry, &Option<Place>),
        (new, to): (&DirEntry, &Option<Place>),
    ) {
        if self.gone.files.is_empty() {
            return;
        }
        let Some(to) = to else { return };
        let follow = |names: &mut Vec<Name>| {
            for name in names.iter_mut() {
                let below = match (&*name, from) {
                    (Name::Tree(w, r), Some(Place::Inside { watch, rel: from }))
                        if w == watch && is_at_or_below(r, from, is_dir) =>
                    {
                        r[from.len()..].to_vec()
                    }
                    (Name::Elsewhere(entry, below), _) if entry == old => below.clone(),
                    _ => continue,
                };
                *name = name_at(new, to, &below);
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

    /// Looks up the files written by gone names whose grace is over at `now`
    /// (all of them when `all`): each whose names are not all known is a
    /// change of its other names.
    pub(super) fn place_gone_writes(&mut self, read_at: Instant, all: bool, out: &mut Vec<Change>) {
        let due: Vec<Fid> = self
            .gone
            .files
            .iter()
            .filter(|(_, w)| all || w.due() <= read_at)
            .map(|(fid, _)| fid.clone())
            .collect();
        let mut unknown = std::mem::take(&mut self.gone.overflowed);
        // Regular files whose names are not all known: searched for by inode.
        let mut searched = Vec::new();
        for fid in due {
            let Some(written) = self.gone.files.remove(&fid) else {
                continue;
            };
            let dev = fid.fsid();
            let found = match self.view_of(dev) {
                Some(mount) => handles::links_of(mount, &fid),
                None => FileLinks::Unknown("its filesystem cannot be opened".into()),
            };
            let placed = match &found {
                FileLinks::Gone | FileLinks::Directory => true,
                FileLinks::Unknown(_) => false,
                FileLinks::Found { inode, links, .. } => {
                    self.push_other_names(*inode, *links, &written.names, out)
                        || (*links == 1 && self.push_sole_name(&fid, *inode, out))
                }
            };
            if placed {
                continue;
            }
            if !all && written.looked_up + 1 < LOOK_UPS && read_at < written.first + LONGEST {
                // Looked up again after the next read of the queue.
                self.gone.files.insert(
                    fid,
                    Written {
                        seen: Instant::now(),
                        looked_up: written.looked_up + 1,
                        ..written
                    },
                );
                continue;
            }
            match found {
                FileLinks::Found {
                    inode,
                    regular: true,
                    ..
                } => {
                    searched.push(inode);
                    continue;
                }
                FileLinks::Unknown(why) => {
                    tracing::debug!("a file written by a name gone since: {why}");
                }
                _ => {}
            }
            if !unknown.contains(&dev) {
                unknown.push(dev);
            }
        }
        if !unknown.is_empty() || !searched.is_empty() {
            self.log_unknown_names();
        }
        if !unknown.is_empty() {
            self.compare_filesystems(&unknown, out);
        }
        // Every tree on the file's filesystem compared whole, and searched
        // once (a search asked for each tree would walk them all again).
        for inode in searched {
            let watches = self.watches_on(&[inode.0]);
            if let Some(first) = watches.first() {
                out.push(Change::LinkedInode {
                    watch: *first,
                    inode,
                });
            }
            for watch in watches {
                out.push(Change::Everything { watch });
            }
        }
    }

    /// Whether the one name file `fid` (`inode`) has now could be said, and
    /// checked to be that file: it is then listed if it is in a tree, and
    /// nothing is needed if it is no tree's (a program's scratch directory
    /// elsewhere on the filesystem: written in, moved out of and removed
    /// before the read made a full sync and a search, once a second on a
    /// busy filesystem; the CI's full suite, another test's files). A later
    /// rename of it into a tree is an event of its own. Not said when the
    /// kernel keeps no path for it, or it was renamed meanwhile.
    fn push_sole_name(
        &mut self,
        fid: &Fid,
        inode: super::links::Inode,
        out: &mut Vec<Change>,
    ) -> bool {
        let Some(Resolved::Path(path)) = self.resolve(fid) else {
            return false;
        };
        if !is_same_file(std::path::Path::new(OsStr::from_bytes(&path)), inode) {
            return false;
        }
        match self.place_of_file(&path) {
            Place::Inside { watch, rel } => out.push(Change::Path { watch, rel }),
            // Named through one mount of its filesystem where another (a
            // bind mount) may hold a tree: not said to be no tree's (a
            // review: `/data/a/f` named `/srv/data/a/f`).
            _ if self
                .views
                .get(&fid.fsid())
                .is_some_and(|views| views.len() > 1) =>
            {
                return false;
            }
            _ => {}
        }
        true
    }

    /// Whether every name of file `inode` (`links` of them now) is known: among
    /// the names followed (which their recorded changes cover), or else in the
    /// link index (pushed as changes here).
    fn push_other_names(
        &mut self,
        inode: super::links::Inode,
        links: u64,
        names: &[Name],
        out: &mut Vec<Change>,
    ) -> bool {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        let mut followed = 0u64;
        let mut in_trees = Vec::new();
        for name in &names {
            let here = match name {
                Name::Tree(watch, rel) => {
                    in_trees.push((*watch, rel.clone()));
                    self.roots.get(watch).is_some_and(|root| {
                        is_same_file(&crate::watcher::absolute(root.path(), rel), inode)
                    })
                }
                Name::Elsewhere(entry, below) => match self.resolve(&entry.dir) {
                    Some(Resolved::Path(dir)) => {
                        let mut path = crate::watcher::absolute(
                            std::path::Path::new(OsStr::from_bytes(&dir)),
                            &entry.name,
                        );
                        if !below.is_empty() {
                            // `below` starts with the '/' that followed the entry.
                            path = crate::watcher::absolute(&path, &below[1..]);
                        }
                        is_same_file(&path, inode)
                    }
                    _ => false,
                },
            };
            followed += u64::from(here);
        }
        if followed >= links {
            return true;
        }
        let indexed: Vec<(u32, Vec<u8>)> = self
            .links
            .names_of(inode)
            .into_iter()
            .filter(|(w, r)| {
                !in_trees.contains(&(*w, r.clone()))
                    && self.roots.get(w).is_some_and(|root| {
                        is_same_file(&crate::watcher::absolute(root.path(), r), inode)
                    })
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
    /// known (nor their inodes): every tree on them is compared whole.
    fn compare_filesystems(&self, devs: &[u64], out: &mut Vec<Change>) {
        for watch in self.watches_on(devs) {
            out.push(Change::Everything { watch });
        }
    }

    /// Says, once a minute, that files were written through names gone since
    /// and their other names are not known.
    fn log_unknown_names(&mut self) {
        if super::once_a_minute(&mut self.gone_logged) {
            tracing::info!(
                "a file written through a name removed since has other names, not known: \
                 the trees on its filesystem are compared whole and searched for its names \
                 (logged once a minute)"
            );
        }
    }
}

/// The name at `below` (empty, or starting with '/') under `entry`, placed at
/// `place`.
fn name_at(entry: &DirEntry, place: &Place, below: &[u8]) -> Name {
    match place {
        Place::Inside { watch, rel } => Name::Tree(*watch, [rel.as_slice(), below].concat()),
        Place::Outside | Place::Excluded => Name::Elsewhere(entry.clone(), below.to_vec()),
    }
}

/// Whether `path` is the file `inode` (any kind but a directory), not
/// following a symlink.
fn is_same_file(path: &std::path::Path, inode: super::links::Inode) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| !m.is_dir() && (m.dev(), m.ino()) == inode)
}

/// Whether `path` is `at`, or (for a directory) below it.
fn is_at_or_below(path: &[u8], at: &[u8], is_dir: bool) -> bool {
    path == at
        || (is_dir && path.len() > at.len() && path.starts_with(at) && path[at.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::fanotify::tests::watching;

    /// An atomic save read late (`.t` written and renamed to `f` before the
    /// read), then `f` renamed away and another `f` made in the moment
    /// between the next read of the queue and the look-up: the file is not
    /// where its names were followed to. It is looked up again after the
    /// next read (which follows the rename), not taken for a file with
    /// unknown names, a full sync (found by a black-box attack: staging
    /// directories swapped into place and removed, under fanotify on ext4).
    #[test]
    fn a_file_moved_between_the_read_and_its_look_up_is_looked_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let Some(mut watcher) = watching(&root) else {
            return;
        };
        let mut out = Vec::new();
        std::fs::write(root.join(".t"), "saved").unwrap();
        std::fs::rename(root.join(".t"), root.join("f")).unwrap();
        while watcher.read_queued(&mut out).unwrap() {}
        assert!(!watcher.gone.is_empty(), "the write by `.t` is kept");
        std::thread::sleep(GRACE * 2);
        // After the read, before the look-up.
        std::fs::rename(root.join("f"), root.join("g")).unwrap();
        std::fs::write(root.join("f"), "another").unwrap();
        watcher.place_gone_writes(Instant::now(), false, &mut out);
        for _ in 0..5 {
            std::thread::sleep(GRACE * 2);
            while watcher.read_queued(&mut out).unwrap() {}
        }
        assert!(watcher.gone.is_empty(), "placed at last");
        assert!(
            !out.iter().any(|c| matches!(c, Change::Everything { .. })),
            "{out:?}"
        );
    }

    /// A file with a name outside the tree rewritten through `e/x`, then
    /// `e` swapped with `d` before the read: its names cannot all be
    /// followed, and it is searched for by its inode, not only compared by
    /// a full sync (which sees no same-size rewrite with its mtime set back).
    #[test]
    fn a_file_whose_names_are_not_all_known_is_searched_for_by_its_inode() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("tree");
        std::fs::create_dir_all(root.join("e")).unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("e/x"), "old").unwrap();
        std::fs::hard_link(root.join("e/x"), root.join("y")).unwrap();
        std::fs::hard_link(root.join("e/x"), dir.path().join("outside")).unwrap();
        let meta = std::fs::metadata(root.join("y")).unwrap();
        let inode = (meta.dev(), meta.ino());
        let Some(mut watcher) = watching(&root) else {
            return;
        };
        let mut out = Vec::new();
        // `e` looked up once, and remembered at its place from then on.
        std::fs::write(root.join("e/z"), "placed").unwrap();
        while watcher.read_queued(&mut out).unwrap() {}
        out.clear();
        std::fs::write(root.join("e/x"), "new").unwrap();
        crate::watcher::exchange(&root.join("e"), &root.join("d"));
        while watcher.read_queued(&mut out).unwrap() {}
        watcher.place_gone_writes(Instant::now(), true, &mut out);
        assert!(
            out.contains(&Change::LinkedInode { watch: 0, inode }),
            "{out:?}"
        );
    }

    #[test]
    fn a_file_rename_follows_only_its_own_name_and_a_directory_everything_below() {
        assert!(is_at_or_below(b"a/b", b"a/b", false));
        assert!(!is_at_or_below(b"a/b/c", b"a/b", false));
        assert!(is_at_or_below(b"a/b/c", b"a/b", true));
        assert!(!is_at_or_below(b"a/bc", b"a/b", true));
        assert!(!is_at_or_below(b"a", b"a/b", true));
    }
}
