//! The start-up scan of a whole tree, in parallel: one thread per core lists
//! directories and adds their inotify watches, which is nearly all system-call
//! time, and the results are merged into the watch table afterwards by its owner.
//! For 50,000 directories this is most of the start-up time not spent in rsync.

use std::ffi::{CString, OsStr};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::SystemTime;

use crate::exclude::ExcludeSet;
use crate::watch_tree::{Wd, join};

/// A directory found and watched: `parent` and `id` number directories in the
/// order they were found (the root is 0), so parents always come first.
pub struct Found {
    pub id: u32,
    pub parent: u32,
    pub wd: Wd,
    pub name: Vec<u8>,
}

/// What a scan found.
#[derive(Default)]
pub struct Scanned {
    /// Every directory below the root that now has a watch.
    pub found: Vec<Found>,
    /// A directory or file whose ctime is at or after `changed_since`.
    pub saw_change: bool,
    /// The first directory that could not be watched for lack of watches.
    pub limit_hit_at: Option<PathBuf>,
}

struct Job {
    id: u32,
    abs: PathBuf,
    rel: Vec<u8>,
}

struct Shared<'a> {
    inotify: RawFd,
    mask: u32,
    excludes: &'a ExcludeSet,
    changed_since: Option<SystemTime>,
    queue: Mutex<Vec<Job>>,
    /// Jobs queued or being worked on: the scan ends when this reaches zero.
    outstanding: AtomicUsize,
    next_id: AtomicU32,
    saw_change: AtomicBool,
    limit_hit_at: Mutex<Option<PathBuf>>,
}

/// Scans below `root` (whose own watch exists) with `threads` threads.
pub fn scan(
    inotify: RawFd,
    mask: u32,
    root: &Path,
    excludes: &ExcludeSet,
    changed_since: Option<SystemTime>,
    threads: usize,
) -> Scanned {
    let shared = Shared {
        inotify,
        mask,
        excludes,
        changed_since,
        queue: Mutex::new(vec![Job {
            id: 0,
            abs: root.to_path_buf(),
            rel: Vec::new(),
        }]),
        outstanding: AtomicUsize::new(1),
        next_id: AtomicU32::new(1),
        saw_change: AtomicBool::new(false),
        limit_hit_at: Mutex::new(None),
    };
    if let Ok(meta) = std::fs::symlink_metadata(root) {
        shared.note_ctime(&meta);
    }
    let mut found: Vec<Found> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| scope.spawn(|| shared.work()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    found.sort_unstable_by_key(|f| f.id);
    Scanned {
        found,
        saw_change: shared.saw_change.load(Ordering::Relaxed),
        limit_hit_at: shared
            .limit_hit_at
            .lock()
            .map(|mut l| l.take())
            .unwrap_or(None),
    }
}

impl Shared<'_> {
    fn note_ctime(&self, meta: &std::fs::Metadata) {
        let Some(since) = self.changed_since else {
            return;
        };
        let ctime = SystemTime::UNIX_EPOCH
            + std::time::Duration::new(
                meta.ctime().max(0) as u64,
                meta.ctime_nsec().clamp(0, 999_999_999) as u32,
            );
        if ctime >= since {
            self.saw_change.store(true, Ordering::Relaxed);
        }
    }

    fn checking_ctime(&self) -> bool {
        self.changed_since.is_some() && !self.saw_change.load(Ordering::Relaxed)
    }

    fn pop(&self) -> Option<Job> {
        self.queue.lock().ok()?.pop()
    }

    fn work(&self) -> Vec<Found> {
        let mut found = Vec::new();
        let mut local: Vec<Job> = Vec::new();
        loop {
            let job = match local.pop().or_else(|| self.pop()) {
                Some(job) => job,
                None if self.outstanding.load(Ordering::Acquire) == 0 => return found,
                None => {
                    std::thread::yield_now();
                    continue;
                }
            };
            self.list(job, &mut found, &mut local);
            // Share work when others may be idle.
            if local.len() > 1
                && let Ok(mut queue) = self.queue.lock()
                && queue.is_empty()
            {
                let half = local.len() / 2;
                queue.extend(local.drain(..half));
            }
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn list(&self, job: Job, found: &mut Vec<Found>, local: &mut Vec<Job>) {
        let Ok(entries) = std::fs::read_dir(&job.abs) else {
            // Gone, or unreadable: its events (or their absence) tell the rest.
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.as_bytes();
            let rel = join(&job.rel, name);
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if self.excludes.matches(&rel, is_dir) {
                continue;
            }
            if is_dir {
                let abs = job.abs.join(OsStr::from_bytes(name));
                match self.add_watch(&abs) {
                    Ok(wd) => {
                        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                        found.push(Found {
                            id,
                            parent: job.id,
                            wd,
                            name: name.to_vec(),
                        });
                        self.outstanding.fetch_add(1, Ordering::AcqRel);
                        local.push(Job { id, abs, rel });
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                        if let Ok(mut hit) = self.limit_hit_at.lock() {
                            hit.get_or_insert(abs);
                        }
                    }
                    Err(_) => {}
                }
            }
            // After the directory's own watch exists (see `Watcher::scan_root`).
            if self.checking_ctime()
                && let Ok(meta) = entry.metadata()
            {
                self.note_ctime(&meta);
            }
        }
    }

    fn add_watch(&self, path: &Path) -> std::io::Result<Wd> {
        let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains a NUL byte")
        })?;
        // SAFETY: a valid descriptor and a NUL-terminated path that outlives the call.
        let wd = unsafe { libc::inotify_add_watch(self.inotify, path.as_ptr(), self.mask) };
        if wd < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(wd)
        }
    }
}
