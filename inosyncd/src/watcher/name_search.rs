//! The other names of a file written through one, where nothing indexes them
//! (inotify; and a file written and settled, or a change taken up from the
//! journal, on either backend). The kernel reports a write by the name used; a
//! file with other names changed under all of them. The full sync that
//! follows (`Change::Linked`) compares size and mtime, so a same-size rewrite
//! with its mtime set back (`cp -p`, `tar x` over a hard link) would reach
//! none of them. So the trees on the file's filesystem are walked in the
//! background for its other names, and each one found (still that file) is
//! reported as a changed path: listed paths go with `--ignore-times`.
//!
//! One search runs at a time: files written while it runs are looked for by
//! the next one (at a start, not those it looks for already: see [`Seek`]). A rename in a tree while a search runs may carry a name from
//! where the walk has not been to where it has been: that search is done
//! again once it ends. `wait` is not idle while a search runs or waits
//! (`Watcher::placing`).

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Instant;

use super::Change;
use super::link_walker::{Ctime, Inode, Walker, Wanted};
use crate::exclude::ExcludeSet;

/// Whether a file already looked for by the search under way is looked for
/// again by the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// A write read now: the search under way may have passed a name made
    /// since (`ln` into a directory it walked), so the next one looks again.
    Again,
    /// A search taken up at a start (the journal's path and its search
    /// record): the search under way, started by the same take-up, finds
    /// the same names; a second one listed them again while their first run
    /// went, and with a long `delay` `wait` stayed busy on an equal mirror
    /// (a black-box attack).
    Once,
}

/// What a search looks for: files by inode, and files changed since a time
/// in the trees on given filesystems.
#[derive(Default)]
struct Asked {
    inodes: HashSet<Inode>,
    /// Every regular file changed at or after this time (`st_ctime`).
    since: Option<Ctime>,
    /// The same for a search done again (a rename while it ran): done
    /// again once only, or under renames that never stop every later
    /// search would list everything changed since the first.
    since_again: Option<Ctime>,
    /// The filesystems (device numbers) whose trees `since` is asked of.
    since_devs: HashSet<u64>,
    /// Every tree is walked, not only those whose root is on the files'
    /// filesystems: one of them lies on a filesystem mounted inside a tree.
    everywhere: bool,
}

impl Asked {
    fn is_empty(&self) -> bool {
        self.inodes.is_empty() && self.since.is_none() && self.since_again.is_none()
    }

    /// What `other` asks too.
    fn merge(&mut self, other: Asked) {
        self.inodes.extend(other.inodes);
        self.since = earliest(self.since, other.since);
        self.since_again = earliest(self.since_again, other.since_again);
        self.since_devs.extend(other.since_devs);
        self.everywhere |= other.everywhere;
    }

    /// What a search that asked this does when done again: the same, but
    /// a time asked for by a search done again already is not asked again.
    fn again(self) -> Asked {
        Asked {
            since_again: self.since,
            since: None,
            ..self
        }
    }
}

/// The earlier of two times, if any.
fn earliest(a: Option<Ctime>, b: Option<Ctime>) -> Option<Ctime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A search under way: what it looks for, and the walks not done yet.
struct Search {
    wanted: Arc<Wanted>,
    asked: Asked,
    /// Generation of each outstanding walk.
    walks: HashSet<u64>,
    found: Vec<(u32, Vec<u8>)>,
    /// The trees walked, and whether a file with several names was seen in
    /// each.
    walked: Vec<(u32, bool)>,
    /// When it was asked for: what its walks saw is no older.
    started: Instant,
    /// A rename was seen while it ran: it is done again.
    again: bool,
    /// It is such a search done again, for nothing written since: a rename
    /// while it runs does not make it go once more (a tree where renames
    /// never stop would keep it going for ever, and `wait` with it).
    redo: bool,
}

/// A tree a search walked whole: whether it held a file with several names
/// then (see [`NameSearch::take_walked`]).
pub struct Walked {
    /// The tree.
    pub watch: u32,
    /// Whether a file with several names was seen in it.
    pub saw_linked: bool,
    /// When the search was asked for: what it saw is no older.
    pub started: Instant,
}

/// The trees, and the searches for other names in them.
#[derive(Default)]
pub struct NameSearch {
    roots: HashMap<u32, (PathBuf, ExcludeSet)>,
    walker: Walker,
    generation: u64,
    running: Option<Search>,
    /// Files written while a search ran: the next one looks for them.
    queued: Asked,
    /// What a search to do again (a rename while it ran) looks for.
    again: Asked,
    /// Trees walked whole by the searches concluded since last taken.
    walked: Vec<Walked>,
    /// The walker's thread was found ended (said once).
    walker_gone: bool,
}

impl NameSearch {
    /// A tree to search.
    pub fn set_root(&mut self, watch: u32, root: &Path, excludes: ExcludeSet) {
        self.roots.insert(watch, (root.to_path_buf(), excludes));
    }

    /// New exclude patterns for a tree: what they match is not mirrored, so
    /// not looked in.
    pub fn set_excludes(&mut self, watch: u32, excludes: ExcludeSet) {
        if let Some((_, kept)) = self.roots.get_mut(&watch) {
            *kept = excludes;
        }
    }

    /// A tree no longer watched: what is found in it is not reported.
    pub fn remove_root(&mut self, watch: u32) {
        self.roots.remove(&watch);
    }

    /// `rel` of `watch` was written and may have other names: look for them,
    /// unless it is no regular file with several names now (gone, replaced,
    /// or one name: nothing to look for). The file looked for, if any.
    pub fn look_for_other_names(&mut self, watch: u32, rel: &[u8], seek: Seek) -> Option<Inode> {
        let (root, _) = self.roots.get(&watch)?;
        let meta = super::absolute(root, rel).symlink_metadata().ok()?;
        if !meta.is_file() || meta.nlink() < 2 {
            return None;
        }
        let inode = (meta.dev(), meta.ino());
        self.look_for(watch, inode, seek);
        Some(inode)
    }

    /// Looks for the names of file `inode`, written through a name of
    /// `watch`'s tree (every tree is walked when it lies on another
    /// filesystem than that tree's root: one mounted inside a tree).
    pub fn look_for(&mut self, watch: u32, inode: Inode, seek: Seek) {
        let elsewhere = self
            .roots
            .get(&watch)
            .is_none_or(|(root, _)| std::fs::metadata(root).is_ok_and(|r| r.dev() != inode.0));
        if seek == Seek::Once
            && self.running.as_ref().is_some_and(|s| {
                s.asked.inodes.contains(&inode) && (s.asked.everywhere || !elsewhere)
            })
        {
            return;
        }
        self.queued.everywhere |= elsewhere;
        self.queued.inodes.insert(inode);
        if self.running.is_none() {
            self.start();
        }
    }

    /// Looks for every regular file changed at or after `since` in the trees
    /// on filesystem `dev` (every tree, when it is not known or not that of
    /// `watch`'s root: a filesystem mounted inside the tree): a file written
    /// through a name gone before the write was read, whose other names
    /// nothing says (inotify), changed then, and a write sets the change
    /// time, which no one can set back.
    pub fn look_for_changed_since(&mut self, watch: u32, since: Ctime, dev: Option<u64>) {
        let root_dev = self
            .roots
            .get(&watch)
            .and_then(|(root, _)| std::fs::metadata(root).ok())
            .map(|m| m.dev());
        self.queued.merge(Asked {
            since: Some(since),
            since_devs: dev.into_iter().collect(),
            everywhere: dev.is_none() || dev != root_dev,
            ..Asked::default()
        });
        if self.running.is_none() {
            self.start();
        }
    }

    /// A rename was seen in a tree: a search under way may have missed a
    /// name it carried, and is done again once it ends.
    pub fn renamed(&mut self) {
        if let Some(search) = self.running.as_mut().filter(|s| !s.redo) {
            search.again = true;
        }
    }

    /// Whether a search runs or waits to.
    pub fn busy(&self) -> bool {
        self.running.is_some() || !self.queued.is_empty() || !self.again.is_empty()
    }

    /// The trees walked whole by the searches concluded since last asked.
    pub fn take_walked(&mut self) -> Vec<Walked> {
        std::mem::take(&mut self.walked)
    }

    /// Whether the running search has all its walks: the caller reads the
    /// event queue before it is concluded (a rename made while the walks ran
    /// and not yet read would otherwise go unseen by it).
    pub fn ending(&mut self) -> bool {
        self.take_walks();
        self.running.as_ref().is_some_and(|s| s.walks.is_empty())
    }

    /// Takes in the walks done; once a search has all its walks, each name
    /// found that is still the file becomes a changed path in `out`, and the
    /// next search starts.
    pub fn poll(&mut self, out: &mut Vec<Change>) {
        self.take_walks();
        self.conclude(out);
    }

    /// Takes in the walks done.
    fn take_walks(&mut self) {
        for done in self.walker.done() {
            let Some(search) = self.running.as_mut() else {
                continue;
            };
            if search.walks.remove(&done.generation) {
                search.walked.push((done.watch, done.saw_linked));
                search
                    .found
                    .extend(done.found.into_iter().map(|(_, rel)| (done.watch, rel)));
            }
        }
    }

    /// Once the running search has all its walks: its names become changed
    /// paths, and the next search starts.
    fn conclude(&mut self, out: &mut Vec<Change>) {
        if self.running.is_some() && !self.walker.alive() {
            // Its walks cannot come back: the full sync the change made
            // stands for them.
            if !self.walker_gone {
                tracing::warn!(
                    "the thread that looks for the other names of files written through one \
                     has ended; their full sync stands instead"
                );
                self.walker_gone = true;
            }
            self.running = None;
            self.queued = Asked::default();
            self.again = Asked::default();
            return;
        }
        if self.running.as_ref().is_some_and(|s| s.walks.is_empty()) {
            if let Some(mut search) = self.running.take() {
                let asked = std::mem::take(&mut search.asked);
                if search.again {
                    self.again.merge(asked.again());
                } else {
                    // A search done again may find what a rename carried
                    // past this one's walk: only one without renames says
                    // what its trees hold.
                    let started = search.started;
                    self.walked
                        .extend(search.walked.drain(..).map(|(watch, saw_linked)| Walked {
                            watch,
                            saw_linked,
                            started,
                        }));
                }
                self.report(search, out);
            }
            if !self.queued.is_empty() || !self.again.is_empty() {
                self.start();
            }
        }
    }

    /// Each name found that is still one of the files looked for, or still
    /// a file changed since the time looked for.
    fn report(&self, search: Search, out: &mut Vec<Change>) {
        for (watch, rel) in search.found {
            let Some((root, _)) = self.roots.get(&watch) else {
                continue;
            };
            let still = super::absolute(root, &rel)
                .symlink_metadata()
                .is_ok_and(|meta| search.wanted.wants_still(&meta));
            if still {
                tracing::debug!(
                    "{}: another name of a file written through one; listed",
                    String::from_utf8_lossy(&rel)
                );
                out.push(Change::Path { watch, rel });
            }
        }
    }

    /// Starts a search for the queued files: a walk of every tree on their
    /// filesystems (of every tree, when one lies on a filesystem mounted
    /// inside a tree). Trees whose root cannot be looked at are left out
    /// (their full sync stands).
    fn start(&mut self) {
        let redo = self.queued.is_empty();
        let mut asked = std::mem::take(&mut self.queued);
        asked.merge(std::mem::take(&mut self.again));
        let wanted = Arc::new(Wanted {
            inodes: Some(asked.inodes.clone()),
            changed_since: earliest(asked.since, asked.since_again),
        });
        let mut devs: HashSet<u64> = asked.inodes.iter().map(|(dev, _)| *dev).collect();
        devs.extend(asked.since_devs.iter().copied());
        let mut search = Search {
            wanted: wanted.clone(),
            walks: HashSet::new(),
            found: Vec::new(),
            walked: Vec::new(),
            started: Instant::now(),
            again: false,
            redo,
            asked,
        };
        for (watch, (root, excludes)) in &self.roots {
            let on_dev = std::fs::metadata(root).is_ok_and(|m| devs.contains(&m.dev()));
            if !on_dev && !search.asked.everywhere {
                continue;
            }
            self.generation += 1;
            let asked = self.walker.ask(
                *watch,
                self.generation,
                root.clone(),
                Vec::new(),
                excludes.clone(),
                wanted.clone(),
            );
            if asked {
                search.walks.insert(self.generation);
            }
        }
        self.running = Some(search);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn searched(search: &mut NameSearch) -> Vec<Change> {
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while search.busy() && std::time::Instant::now() < deadline {
            search.poll(&mut out);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        out
    }

    fn paths(changes: &[Change]) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Path { watch, rel } => {
                    Some((*watch, String::from_utf8_lossy(rel).into_owned()))
                }
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_other_names_in_every_tree_on_the_filesystem_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::create_dir_all(b.join("skip")).unwrap();
        std::fs::write(a.join("f"), "x").unwrap();
        std::fs::hard_link(a.join("f"), a.join("sub/g")).unwrap();
        std::fs::hard_link(a.join("f"), b.join("h")).unwrap();
        std::fs::hard_link(a.join("f"), b.join("skip/i")).unwrap();
        std::fs::hard_link(a.join("f"), dir.path().join("outside")).unwrap();
        std::fs::write(a.join("alone"), "y").unwrap();
        std::fs::write(a.join("other"), "z").unwrap();
        std::fs::hard_link(a.join("other"), a.join("other2")).unwrap();
        let mut search = NameSearch::default();
        search.set_root(1, &a, ExcludeSet::new(&[]).unwrap());
        search.set_root(2, &b, ExcludeSet::new(&["skip/".to_string()]).unwrap());
        search.look_for_other_names(1, b"f", Seek::Again);
        search.look_for_other_names(1, b"alone", Seek::Again);
        search.look_for_other_names(1, b"gone", Seek::Again);
        assert_eq!(
            paths(&searched(&mut search)),
            [(1, "f".into()), (1, "sub/g".into()), (2, "h".into())],
            "the names of f in the trees, the excluded one left out"
        );
        assert!(!search.busy());
    }

    /// The name written through removed before the walk reaches the other
    /// one, which has a single name left then: still found (before, the walk
    /// took only files with several names, and the other name kept its old
    /// content; a black-box attack, 5 of 5 on a tree the search took 0.6 s
    /// to walk).
    #[test]
    fn the_other_name_is_found_when_the_name_written_through_is_removed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir_all(&a).unwrap();
        for name in ["f", "h"] {
            std::fs::write(a.join(name), name).unwrap();
            std::fs::hard_link(a.join(name), a.join(format!("{name}2"))).unwrap();
        }
        let mut search = NameSearch::default();
        search.set_root(1, &a, ExcludeSet::new(&[]).unwrap());
        // `h` runs first; `f` waits for the next search, and is removed
        // before it starts.
        search.look_for_other_names(1, b"h", Seek::Again);
        search.look_for_other_names(1, b"f", Seek::Again);
        std::fs::remove_file(a.join("f")).unwrap();
        assert_eq!(
            paths(&searched(&mut search)),
            [(1, "f2".into()), (1, "h".into()), (1, "h2".into())]
        );
    }

    #[test]
    fn a_file_written_while_a_search_runs_is_looked_for_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("f"), "x").unwrap();
        std::fs::hard_link(a.join("f"), a.join("f2")).unwrap();
        std::fs::write(a.join("g"), "y").unwrap();
        std::fs::hard_link(a.join("g"), a.join("g2")).unwrap();
        let mut search = NameSearch::default();
        search.set_root(1, &a, ExcludeSet::new(&[]).unwrap());
        search.look_for_other_names(1, b"f", Seek::Again);
        search.look_for_other_names(1, b"g", Seek::Again);
        assert_eq!(
            paths(&searched(&mut search)),
            [
                (1, "f".into()),
                (1, "f2".into()),
                (1, "g".into()),
                (1, "g2".into())
            ]
        );
        search.remove_root(1);
        search.look_for_other_names(1, b"f", Seek::Again);
        assert!(!search.busy(), "a tree no longer watched is not searched");
    }

    /// A search taken up at a start, both from the journal's path and from
    /// its search record, runs once: the second search listed the names
    /// again while their first run went, and with a long `delay` `wait`
    /// stayed busy for all of it (a black-box attack, 3 of 16 restarts after
    /// a `kill -9`).
    #[test]
    fn a_search_taken_up_twice_at_a_start_runs_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("f"), "x").unwrap();
        std::fs::hard_link(a.join("f"), a.join("f2")).unwrap();
        let mut search = NameSearch::default();
        search.set_root(1, &a, ExcludeSet::new(&[]).unwrap());
        let inode = search.look_for_other_names(1, b"f", Seek::Once).unwrap();
        search.look_for(1, inode, Seek::Once);
        search.look_for_other_names(1, b"f2", Seek::Once);
        assert_eq!(
            paths(&searched(&mut search)),
            [(1, "f".into()), (1, "f2".into())]
        );
    }

    /// A write read while the search for its file runs, after that search
    /// walked a directory where a new name was made (`ln`): the next search
    /// looks again and finds it (a review: skipped, the new name kept its old
    /// content after a same-size rewrite with its mtime put back).
    #[test]
    fn a_write_while_its_files_search_runs_is_looked_for_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir_all(a.join("d")).unwrap();
        std::fs::write(a.join("f"), "x").unwrap();
        std::fs::hard_link(a.join("f"), a.join("f2")).unwrap();
        let mut search = NameSearch::default();
        search.set_root(1, &a, ExcludeSet::new(&[]).unwrap());
        search.look_for_other_names(1, b"f", Seek::Again);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !search.ending() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // Its walks are done, it is not concluded: a name made now is not in it.
        std::fs::hard_link(a.join("f"), a.join("d/new")).unwrap();
        search.look_for_other_names(1, b"f", Seek::Again);
        let found = paths(&searched(&mut search));
        assert!(found.contains(&(1, "d/new".into())), "{found:?}");
    }
}
