//! One background thread that walks trees for their files with several names,
//! one tree at a time in the order asked: a start with thousands of trees asks
//! for thousands of walks, which must not be thousands of threads. fanotify's
//! index of such files (`fanotify/links.rs`) and inotify's search for the
//! other names of a file written through one (`name_search.rs`) each have one.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use crate::exclude::ExcludeSet;
use crate::watcher::join;

/// A file's identity: its filesystem (device number) and inode.
pub type Inode = (u64, u64);

/// Whether `rel` below `root` is still the file `inode`.
pub fn is_still(root: &Path, rel: &[u8], inode: Inode) -> bool {
    crate::watcher::absolute(root, rel)
        .symlink_metadata()
        .is_ok_and(|m| m.is_file() && (m.dev(), m.ino()) == inode)
}

/// What one walk found: each file with several names, by inode.
pub type Found = Vec<(Inode, Vec<u8>)>;

/// A file's change time (`st_ctime`), in nanoseconds since the epoch: a
/// write, a link or a rename sets it, and no user can set it back.
pub type Ctime = i128;

/// A file's [`Ctime`].
pub fn ctime_of(meta: &std::fs::Metadata) -> Ctime {
    i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec())
}

/// What a walk looks for.
#[derive(Debug, Default)]
pub struct Wanted {
    /// These files, by inode, under any of their names (`None`: every file
    /// with several names).
    pub inodes: Option<HashSet<Inode>>,
    /// Also every regular file changed (`st_ctime`) at or after this time.
    pub changed_since: Option<Ctime>,
}

impl Wanted {
    /// Whether the entry with metadata `meta`, found by a walk, is still
    /// wanted when reported (not replaced by another file meanwhile).
    pub fn wants_still(&self, meta: &std::fs::Metadata) -> bool {
        !meta.is_dir() && self.wants(meta)
    }

    /// Whether the entry with metadata `meta` is wanted.
    fn wants(&self, meta: &std::fs::Metadata) -> bool {
        let by_inode = match &self.inodes {
            Some(inodes) => inodes.contains(&(meta.dev(), meta.ino())),
            None => self.changed_since.is_none() && crate::watcher::is_linked(meta),
        };
        by_inode
            || self
                .changed_since
                .is_some_and(|since| meta.is_file() && ctime_of(meta) >= since)
    }
}

/// A walk asked for: of the tree at `root`, or only of its part `below`.
struct Request {
    watch: u32,
    generation: u64,
    root: PathBuf,
    below: Vec<u8>,
    excludes: ExcludeSet,
    wanted: Arc<Wanted>,
}

/// A walk done.
pub struct Done {
    /// The tree walked.
    pub watch: u32,
    /// Which request of that tree it answers (a later one makes it stale).
    pub generation: u64,
    /// What it found.
    pub found: Found,
    /// Whether it saw a file with several names (wanted or not), or could
    /// not look everywhere.
    pub saw_linked: bool,
    /// When it ended: a rename made before then may be one it missed, and
    /// must be read before its result is taken in.
    pub finished: Instant,
}

/// The thread and its two channels; the thread starts with the first request
/// and ends with the daemon (when this is dropped, its request channel closes).
pub struct Walker {
    requests: Option<Sender<Request>>,
    results: Receiver<Done>,
    results_tx: Sender<Done>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Default for Walker {
    fn default() -> Walker {
        let (results_tx, results) = channel();
        Walker {
            requests: None,
            results,
            results_tx,
            thread: None,
        }
    }
}

impl Walker {
    /// Asks for a walk of `root` below `below` (`""`: the whole tree; names
    /// found are relative to `root` either way), for the files `wanted`; its
    /// result comes back from
    /// [`Walker::done`]. `false` when no thread could be had (the tree stays
    /// unindexed).
    pub fn ask(
        &mut self,
        watch: u32,
        generation: u64,
        root: PathBuf,
        below: Vec<u8>,
        excludes: ExcludeSet,
        wanted: Arc<Wanted>,
    ) -> bool {
        if self.requests.is_none() {
            let (tx, rx) = channel::<Request>();
            let results = self.results_tx.clone();
            let spawned = std::thread::Builder::new()
                .name("inosyncd-links".into())
                .spawn(move || {
                    for request in rx {
                        let (found, saw_linked) = walk(
                            &request.root,
                            request.below,
                            &request.excludes,
                            &request.wanted,
                        );
                        let done = Done {
                            watch: request.watch,
                            generation: request.generation,
                            found,
                            saw_linked,
                            finished: Instant::now(),
                        };
                        if results.send(done).is_err() {
                            break;
                        }
                    }
                });
            match spawned {
                Ok(thread) => {
                    self.requests = Some(tx);
                    self.thread = Some(thread);
                }
                Err(e) => {
                    tracing::warn!("cannot start the thread that indexes hard links: {e}");
                    return false;
                }
            }
        }
        let request = Request {
            watch,
            generation,
            root,
            below,
            excludes,
            wanted,
        };
        self.requests
            .as_ref()
            .is_some_and(|tx| tx.send(request).is_ok())
    }

    /// A walker with no thread whose walks the test ends itself: the
    /// (tree, generation) of each walk asked for, and where to send its
    /// result.
    #[cfg(test)]
    pub fn manual() -> (Walker, Receiver<(u32, u64)>, Sender<Done>) {
        let mut walker = Walker::default();
        let (requests, asked) = channel::<Request>();
        let (told, told_rx) = channel();
        std::thread::spawn(move || {
            for request in asked {
                if told.send((request.watch, request.generation)).is_err() {
                    break;
                }
            }
        });
        walker.requests = Some(requests);
        let results = walker.results_tx.clone();
        (walker, told_rx, results)
    }

    /// A walker whose thread is gone (as after a panic, or when none could
    /// be started): every walk asked of it is refused.
    #[cfg(test)]
    pub fn refusing() -> Walker {
        let mut walker = Walker::default();
        let (requests, _) = channel::<Request>();
        walker.requests = Some(requests);
        walker
    }

    /// The walks done since last asked.
    pub fn done(&self) -> Vec<Done> {
        self.results.try_iter().collect()
    }

    /// Whether walks asked for can still come back: the thread has not
    /// ended (it ends only with the daemon, or by a panic).
    pub fn alive(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| !t.is_finished())
    }
}

/// Every file below `below` in `root` with more than one name, or, with
/// inodes wanted, every name of those files however many names they have left
/// (the name written through may be removed while the walk runs: its other
/// name then has one; found by a black-box attack), and every regular file
/// changed since the time wanted, not following symlinks, excluded
/// directories left out, named relative to `root`, and so are the kernel's
/// filesystems mounted inside it (a chroot's `proc`, never mirrored). Also
/// whether any file with several names was seen (or may have been: a
/// directory that could not be read).
fn walk(root: &Path, below: Vec<u8>, excludes: &ExcludeSet, wanted: &Wanted) -> (Found, bool) {
    let kernel_points = kernel_points_below(root);
    let mut found = Vec::new();
    let mut saw_linked = false;
    let mut stack = vec![below];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(crate::watcher::absolute(root, &dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // Not looked in (unreadable, deeper than a path can name): it
            // may hold files with several names.
            Err(_) => {
                saw_linked = true;
                continue;
            }
        };
        for entry in entries.flatten() {
            let rel = join(&dir, entry.file_name().as_bytes());
            // The kind from the directory entry itself: a directory needs no
            // look-up (a tree of 50,000 directories: as many fewer).
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !excludes.matches(&rel, true) && !kernel_points.contains(&rel) {
                    stack.push(rel);
                }
                continue;
            }
            if excludes.matches(&rel, false) {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            saw_linked |= crate::watcher::is_linked(&meta);
            if wanted.wants(&meta) {
                found.push(((meta.dev(), meta.ino()), rel));
            }
        }
    }
    (found, saw_linked)
}

/// Where the kernel's filesystems are mounted below `root` now (relative).
fn kernel_points_below(root: &Path) -> std::collections::BTreeSet<Vec<u8>> {
    let Ok(text) = std::fs::read("/proc/self/mountinfo") else {
        return Default::default();
    };
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    super::mounts::kernel_points_below(
        &super::mounts::parse(&text),
        root.as_os_str().as_encoded_bytes(),
    )
}
