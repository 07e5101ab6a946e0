//! Files of the trees written through names outside them (hard links), and
//! files that gained a name: what the link index (`links`) makes of them.

use super::FanWatcher;
use super::handles::FileLinks;
use super::records::{DirEntry, Fid};
use crate::watcher::Change;

/// What a name in a tree is now, as far as hard links go.
pub(super) enum NameLinks {
    /// An entry with other names: the inode they share.
    Several(super::links::Inode),
    /// An entry with this name alone (or one that could not be looked at).
    One,
    /// No entry: the name was removed or renamed since.
    Missing,
}

impl FanWatcher {
    /// A file was written through a name outside every tree (or excluded
    /// from one: not mirrored, as good as outside). If it has other
    /// names, those in the trees (from the index, each checked to still be that
    /// file) changed. While the trees on its filesystem are being walked (at
    /// start, or again because the file got a name since the last walk: the
    /// index may not know it yet), the write waits for the walk and is placed
    /// then (see `place_deferred`).
    pub(super) fn written_outside(
        &mut self,
        object: &Fid,
        entry: &DirEntry,
        mask: u64,
        out: &mut Vec<Change>,
    ) {
        let dev = object.fsid();
        let watches = self.watches_on(&[dev]);
        // The common case, and a busy filesystem's: no file of these trees has
        // another name, and this one got no new name since they were walked, so
        // it cannot be one of theirs.
        let relinked = self.links.was_relinked(object);
        if !relinked && !self.links.may_have_names(dev, &watches) {
            return;
        }
        let inode = match self.links.known_outside(object) {
            Some(known) => known,
            None => {
                let found = match self.view_of(dev) {
                    Some(mount) => super::handles::links_of(mount, object),
                    None => FileLinks::Unknown("its filesystem cannot be opened".into()),
                };
                match found {
                    FileLinks::Found {
                        inode,
                        links,
                        regular: true,
                    } => {
                        let kept = self.links.remember_outside(object, Some((inode, links)));
                        // One name left that the index does not know, after a
                        // name came or went (`ln d/a out/x`, a write through
                        // `out/x`, `rm out/x`, before the read): that name
                        // may be a tree's, and is searched for (a black-box
                        // attack: `d/a` kept its old bytes).
                        // Searched, not compared whole: a file linked and
                        // unlinked elsewhere on the filesystem (git's objects)
                        // is common, and one search at a time runs.
                        if kept.is_none() && relinked && links == 1 {
                            self.links.forget_relinked(object);
                            self.search_by_inode(&watches, inode, out);
                            return;
                        }
                        // One name, not the one written through, which was
                        // removed while a descriptor stayed open on it:
                        // that name may be a tree's that the index never
                        // knew (it had one name when walked; or the
                        // removal was read before a restart). Searched
                        // for, and looked at again at the next write (a
                        // fuzzer: `d/a` kept its old bytes).
                        if kept.is_none()
                            && links == 1
                            && self.view_of(dev).and_then(|mount| {
                                super::handles::names_file(mount, &entry.dir, &entry.name, inode)
                            }) == Some(false)
                        {
                            self.links.changed(object);
                            self.search_by_inode(&watches, inode, out);
                            return;
                        }
                        // One name, and the index not built: the removal of
                        // another name before the look-up would say so, and
                        // is read by the end of this read.
                        if kept.is_none()
                            && links == 1
                            && !self.links.indexed_all(&watches)
                            && let Some(first) = watches.first()
                        {
                            self.single_outside.push((object.clone(), inode, *first));
                        }
                        kept
                    }
                    // Nothing known (a full descriptor table): it may be one
                    // of the trees' files, so they are compared whole.
                    FileLinks::Unknown(why) => {
                        self.sync_trees_whole(
                            &watches,
                            &format!(
                                "a file written outside the trees cannot be looked up ({why})"
                            ),
                            out,
                        );
                        return;
                    }
                    _ => self.links.remember_outside(object, None),
                }
            }
        };
        let Some(inode) = inode else {
            return;
        };
        let closed = mask & (libc::FAN_CLOSE_WRITE | libc::FAN_ATTRIB) != 0;
        let (named, stale) = self.push_names(inode, closed, out);
        let moved = !stale.is_empty();
        // A name the index knows that is not the file any more: renamed
        // since (`mv d/e d/n` after the write, read later in this read), or
        // removed. The write is placed again once the read is done, by the
        // names the renames read by then have moved (a fuzzer: `d/n/f`
        // kept its old bytes).
        if moved && !self.links.defer(inode, closed) {
            self.search_by_inode(&watches, inode, out);
        }
        if relinked {
            // A name came or went since the walk: the index may know some names
            // of the file (learnt from their creation) and not others (one it
            // had alone when the tree was walked), or none (`cp -al` of a tree).
            // The names it knows go now; the walk places the write again.
            self.links.forget_relinked(object);
            self.reindex(&watches);
        } else if named && self.links.indexed_all(&watches) {
            return;
        }
        // While a walk runs, a name known may be one learnt from an event
        // (a rename read before the write), not all of them: the write
        // waits for the walk too (a review: the others kept old bytes).
        let wait_for_walk = relinked || !self.links.indexed_all(&watches);
        if wait_for_walk && !self.links.defer(inode, closed) {
            // The full sync compares size and mtime: the file is searched
            // for by its inode too, for a same-size rewrite with its mtime
            // put back (a review).
            self.sync_trees_whole(
                &watches,
                "too many files with hard links written outside the trees while they are indexed",
                out,
            );
            self.search_by_inode(&watches, inode, out);
        }
    }

    /// The end of a read: a file written outside while the trees were
    /// walked, with one name when looked up, whose link count changed in
    /// this read, may have had a name in a tree that the index did not know
    /// yet (`echo > out/f; rm out/f`, `y` its other name, before the read):
    /// it is searched for by its inode, as a write through a name gone since
    /// (a review: the write was dropped, and `y` kept its old bytes).
    pub(super) fn settle_single_names(&mut self, out: &mut Vec<Change>) {
        for (object, inode, watch) in std::mem::take(&mut self.single_outside) {
            if !self.links.was_relinked(&object) {
                continue;
            }
            self.links.forget_relinked(&object);
            // A temporary file written and removed outside the trees has no
            // name left at all: nothing to search for (a review).
            let left = match self.view_of(object.fsid()) {
                Some(mount) => super::handles::links_of(mount, &object),
                None => FileLinks::Unknown("its filesystem cannot be opened".into()),
            };
            if matches!(left, FileLinks::Gone | FileLinks::Found { links: 0, .. }) {
                continue;
            }
            out.push(Change::LinkedInode { watch, inode });
        }
    }

    /// The names in the trees of file `inode`, as changes (still being written
    /// unless `closed`); whether it has any, and whether a name the index
    /// knows is not that file now.
    fn push_names(
        &self,
        inode: super::links::Inode,
        closed: bool,
        out: &mut Vec<Change>,
    ) -> (bool, Vec<(u32, Vec<u8>)>) {
        let mut named = false;
        let mut stale = Vec::new();
        for (watch, rel) in self.links.names_of(inode) {
            let Some(root) = self.roots.get(&watch) else {
                continue;
            };
            if !super::links::is_still(root.path(), &rel, inode) {
                stale.push((watch, rel));
                continue;
            }
            named = true;
            out.push(if closed {
                Change::Path { watch, rel }
            } else {
                Change::Written {
                    watch,
                    rel,
                    linked: true,
                }
            });
        }
        (named, stale)
    }

    /// Once no walk runs, the writes that waited for one are placed.
    /// A tree whose walk could not be done (no thread for it) is not
    /// indexed: such a write is compared whole and searched for by inode,
    /// as its names cannot be known (a review: it was placed from the
    /// empty index, and dropped).
    pub(super) fn place_deferred(&mut self, out: &mut Vec<Change>) {
        for (inode, closed) in self.links.take_deferred() {
            let (named, stale) = self.push_names(inode, closed, out);
            let watches = self.watches_on(&[inode.0]);
            if !self.links.indexed_all(&watches) {
                self.sync_trees_whole(
                    &watches,
                    "the trees could not be walked for their files with several names",
                    out,
                );
                self.search_by_inode(&watches, inode, out);
            } else if !stale.is_empty() {
                // Names still not the file at the end of the read are
                // forgotten (removed, or left by a swap), so that later
                // writes are not held for them; with no name found, the
                // file's rename may come in the next read (queued just
                // after the look-up saw it done): its names are searched
                // for.
                self.links.forget_names(inode, &stale);
                if !named {
                    self.search_by_inode(&watches, inode, out);
                }
            }
        }
    }

    /// The names of file `inode` in `watches` (the trees on its
    /// filesystem) are searched for by its inode, and listed.
    fn search_by_inode(&self, watches: &[u32], inode: super::links::Inode, out: &mut Vec<Change>) {
        if let Some(first) = watches.first() {
            out.push(Change::LinkedInode {
                watch: *first,
                inode,
            });
        }
    }

    /// A write outside that cannot be placed (too many waiting for a walk, a
    /// look-up that failed): the trees on its filesystem are synced whole.
    fn sync_trees_whole(&mut self, watches: &[u32], why: &str, out: &mut Vec<Change>) {
        if super::once_a_minute(&mut self.links_logged) {
            tracing::info!("{why}: full sync of watch(es) {watches:?} (logged once a minute)");
        }
        for watch in watches {
            out.push(Change::Everything { watch: *watch });
        }
    }

    /// A file gained or lost a name, somewhere on a marked filesystem. It is
    /// only remembered (no look-up: a busy filesystem makes many links): a name
    /// it gets in a tree is learnt from that name's creation, and a write through
    /// a name outside has the trees walked again (see `written_outside`).
    pub(super) fn link_count_changed(&mut self, object: &Fid) {
        if self.links.relinked(object) {
            let watches = self.watches_on(&[object.fsid()]);
            self.links.unindex(&watches);
        }
    }

    /// Walks the trees in `watches` again for their files with several names.
    pub(super) fn reindex(&mut self, watches: &[u32]) {
        for watch in watches {
            if let Some(root) = self.roots.get(watch) {
                let (path, excludes) = (root.path().to_path_buf(), root.excludes.clone());
                self.links.index(*watch, path, excludes);
            }
        }
    }

    /// `rel` of `watch` arrived by a rename from where the walks of the trees
    /// never looked (`mv ../release/page page`, a swap). A file is looked up
    /// by its handle (`object`), not by the name, which may be gone or another
    /// file by now (renamed again before this event was read): with other
    /// names it is learnt, and a later rename of it carries the name along. A
    /// directory's files are not known: that directory is walked (until then
    /// a write outside waits for the walk; the cost is the directory's, which
    /// rsync sends anyway, not the tree's: found by a review). A file that
    /// cannot be looked up (a full descriptor table) is walked for too.
    pub(super) fn learn_arrived(
        &mut self,
        watch: u32,
        rel: &[u8],
        is_dir: bool,
        object: Option<&Fid>,
    ) {
        if is_dir {
            self.index_part(watch, rel);
            return;
        }
        // A file not looked up: its directory is walked (the walk lists
        // directories).
        let parent = rel
            .iter()
            .rposition(|b| *b == b'/')
            .map_or(&rel[..0], |i| &rel[..i]);
        let Some(object) = object else {
            self.index_part(watch, parent);
            return;
        };
        let found = match self.view_of(object.fsid()) {
            Some(mount) => super::handles::links_of(mount, object),
            None => FileLinks::Unknown("its filesystem cannot be opened".into()),
        };
        match found {
            FileLinks::Found { inode, links, .. } if links > 1 => {
                self.links.learn(watch, rel.to_vec(), inode);
            }
            FileLinks::Unknown(_) => self.index_part(watch, parent),
            // One name (it has no other to be written through), or gone.
            _ => {}
        }
    }

    /// Walks the part of tree `watch` at `rel` for its files with several
    /// names (see `Links::index_part`).
    pub(super) fn index_part(&mut self, watch: u32, rel: &[u8]) {
        if let Some(root) = self.roots.get(&watch) {
            let (path, excludes) = (root.path().to_path_buf(), root.excludes.clone());
            self.links.index_part(watch, path, excludes, rel);
        }
    }

    /// The inode of `rel` when it has other names (see `watcher::is_linked`).
    pub(super) fn other_links(&self, watch: u32, rel: &[u8]) -> Option<super::links::Inode> {
        match self.name_links(watch, rel) {
            NameLinks::Several(inode) => Some(inode),
            NameLinks::One | NameLinks::Missing => None,
        }
    }

    /// Whether `rel` of `watch` names an entry with other names now, one
    /// without, or nothing (removed or renamed since).
    pub(super) fn name_links(&self, watch: u32, rel: &[u8]) -> NameLinks {
        use std::os::unix::fs::MetadataExt;
        let Some(root) = self.roots.get(&watch) else {
            return NameLinks::One;
        };
        match crate::watcher::absolute(root.path(), rel).symlink_metadata() {
            Ok(meta) if crate::watcher::is_linked(&meta) => {
                NameLinks::Several((meta.dev(), meta.ino()))
            }
            Ok(_) => NameLinks::One,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => NameLinks::Missing,
            // Not a directory any more on the way (a file where a directory
            // was): the name is gone as well.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => NameLinks::Missing,
            Err(_) => NameLinks::One,
        }
    }
}
