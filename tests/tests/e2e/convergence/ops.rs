//! The churn generator: every kind of change a program can make to a tree (the
//! list in docs/RELIABILITY.md, "Every kind of change"), picked at random. Each
//! class is counted, so a run shows what it exercised.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use inosync_tests::Rng;

/// Names with spaces, `%`, a newline, UTF-8, a leading dash, quotes, a glob
/// character and a backslash.
const STEMS: &[&[u8]] = &[
    b"f",
    b"d e",
    b"p%20",
    b"n\nl",
    b"\xc3\xbc",
    b"-x",
    b"q'\"",
    b"st*r",
    b"b\\s",
];

/// Every class of operation, by name, in the order they are listed.
pub const CLASSES: &[&str] = &[
    "create file",
    "rewrite same size",
    "append (closed)",
    "truncate by path",
    "write through a descriptor kept open",
    "chmod",
    "touch to an old mtime",
    "mkdir",
    "mkdir -p and write at once",
    "rename file",
    "rename onto an existing file",
    "move directory across subtrees",
    "move directory onto an empty one",
    "delete tree",
    "delete file",
    "symlink",
    "exchange two entries",
    "hard link",
    "file becomes directory",
    "directory becomes file",
    "move out of the tree",
    "move in from outside",
    "delete and make again",
    "fifo",
    "directory becomes symlink",
    "write through a hard link outside the tree",
];

/// The generator's state: what it keeps open, where it stages what it moves
/// out, and how many of each class it made.
pub struct Churn {
    root: PathBuf,
    outside: PathBuf,
    /// Descriptors kept open, with the name each was opened by.
    held: Vec<(PathBuf, fs::File)>,
    counter: u64,
    /// `CONVERGE_OPLOG=FILE`: every operation, when and on what, for reading
    /// next to the daemon log of a run that diverged.
    oplog: Option<fs::File>,
    /// The name the last write through a kept descriptor was opened by.
    last_held: Option<PathBuf>,
    /// Whether a write through a name outside the tree is made (fanotify sees
    /// it; inotify cannot, a documented limit).
    outside_links: bool,
    /// Operations made, by class.
    pub made: BTreeMap<&'static str, u64>,
}

/// What is on disk now below `root` (relative paths), never following a
/// symlink: directories (the root first) and everything else.
pub fn scan(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut others) = (vec![PathBuf::new()], Vec::new());
    let mut stack = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let rel = dir.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(rel.clone());
                stack.push(rel);
            } else {
                others.push(rel);
            }
        }
    }
    dirs.sort();
    others.sort();
    (dirs, others)
}

/// Opens a file for writing without ever blocking: a fifo without a reader is
/// an error (`ENXIO`), not a hang.
fn open_write(path: &Path, append: bool, create: bool) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .append(append)
        .truncate(!append)
        .create(create)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
}

fn write(path: &Path, content: &[u8], append: bool) -> std::io::Result<()> {
    open_write(path, append, !append).and_then(|mut f| f.write_all(content))
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("no NUL in test paths")
}

/// Swaps two names with `renameat2(RENAME_EXCHANGE)`.
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let (a, b) = (c_path(a), c_path(b));
    // SAFETY: two NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn truncate(path: &Path, len: i64) -> std::io::Result<()> {
    // SAFETY: a NUL-terminated path that outlives the call.
    if unsafe { libc::truncate(c_path(path).as_ptr(), len) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets a file's mtime to `secs` (an old time) without touching its content.
fn set_mtime(path: &Path, secs: i64) -> std::io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a NUL-terminated path and two timespecs that outlive the call.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path(path).as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Churn {
    /// A generator for the tree at `root`, staging moved-out entries in
    /// `outside` (on the same filesystem).
    pub fn new(root: &Path, outside: &Path, outside_links: bool) -> Churn {
        fs::create_dir_all(outside).expect("staging directory");
        Churn {
            root: root.to_path_buf(),
            outside: outside.to_path_buf(),
            held: Vec::new(),
            counter: 0,
            last_held: None,
            oplog: std::env::var_os("CONVERGE_OPLOG").and_then(|p| fs::File::create(p).ok()),
            outside_links,
            made: BTreeMap::new(),
        }
    }

    fn fresh(&mut self, rng: &mut Rng, dir: &Path) -> PathBuf {
        self.counter += 1;
        let mut name = STEMS[rng.below(STEMS.len())].to_vec();
        name.extend_from_slice(self.counter.to_string().as_bytes());
        dir.join(OsStr::from_bytes(&name))
    }

    /// One random operation. Failures (a race with itself, a rename onto a
    /// non-empty directory) are part of the game and ignored.
    pub fn step(&mut self, rng: &mut Rng) {
        let (dirs, others) = scan(&self.root);
        let dir = rng.pick(dirs.iter()).cloned().unwrap_or_default();
        let other = rng.pick(others.iter()).cloned();
        let subdir = rng.pick(dirs[1..].iter()).cloned();
        let new = self.fresh(rng, &dir);
        let root = self.root.clone();
        let abs = |rel: &Path| root.join(rel);
        let content: Vec<u8> = (0..rng.below(3000)).map(|_| rng.next_u64() as u8).collect();
        let class = rng.below(CLASSES.len());
        let done = match class {
            0 => write(&abs(&new), &content, false),
            1 => other.as_ref().map_or(Ok(()), |f| {
                let len = fs::symlink_metadata(abs(f)).map_or(0, |m| m.len()) as usize;
                let same: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                write(&abs(f), &same, false)
            }),
            2 => other
                .as_ref()
                .map_or(Ok(()), |f| write(&abs(f), &content, true)),
            3 => other
                .as_ref()
                .map_or(Ok(()), |f| truncate(&abs(f), rng.below(2000) as i64)),
            4 => self.write_held(rng, other.as_deref(), &content),
            5 => {
                let mode = [0o600, 0o644, 0o755, 0o640, 0o711][rng.below(5)];
                let target = if rng.below(3) == 0 {
                    subdir.clone()
                } else {
                    other.clone()
                };
                target.map_or(Ok(()), |t| {
                    fs::set_permissions(abs(&t), fs::Permissions::from_mode(mode))
                })
            }
            6 => other.as_ref().map_or(Ok(()), |f| {
                set_mtime(&abs(f), 1_000_000_000 + rng.below(1000) as i64)
            }),
            7 => fs::create_dir(abs(&new)),
            8 => {
                let deep = new.join("a b").join("c%d");
                fs::create_dir_all(abs(&deep))
                    .and_then(|()| write(&abs(&deep.join("at-once")), &content, false))
            }
            9 => other
                .as_ref()
                .map_or(Ok(()), |f| fs::rename(abs(f), abs(&new))),
            10 => {
                let onto = rng.pick(others.iter()).cloned();
                match (other.as_ref(), onto) {
                    (Some(f), Some(onto)) if *f != onto => fs::rename(abs(f), abs(&onto)),
                    _ => Ok(()),
                }
            }
            11 | 12 => match subdir.as_ref() {
                // Never into itself.
                Some(moved) if !dir.starts_with(moved) => {
                    let onto = rng
                        .pick(dirs[1..].iter())
                        .cloned()
                        .filter(|d| !d.starts_with(moved) && !moved.starts_with(d));
                    let to = if class == 12 {
                        onto.unwrap_or(new.clone())
                    } else {
                        new.clone()
                    };
                    fs::rename(abs(moved), abs(&to))
                }
                _ => Ok(()),
            },
            13 => subdir
                .as_ref()
                .map_or(Ok(()), |d| fs::remove_dir_all(abs(d))),
            14 => other.as_ref().map_or(Ok(()), |f| fs::remove_file(abs(f))),
            15 => {
                let target = other.clone().unwrap_or_default();
                symlink(Path::new("/converge-link").join(target), abs(&new))
            }
            16 => {
                let a = rng.pick([&dirs[1..], &others[..]].concat().iter()).cloned();
                let b = rng.pick([&dirs[1..], &others[..]].concat().iter()).cloned();
                match (a, b) {
                    (Some(a), Some(b)) if !a.starts_with(&b) && !b.starts_with(&a) => {
                        exchange(&abs(&a), &abs(&b))
                    }
                    _ => Ok(()),
                }
            }
            17 => other
                .as_ref()
                .map_or(Ok(()), |f| fs::hard_link(abs(f), abs(&new))),
            18 => other.as_ref().map_or(Ok(()), |f| {
                fs::remove_file(abs(f))
                    .and_then(|()| fs::create_dir(abs(f)))
                    .and_then(|()| write(&abs(f).join("inside"), &content, false))
            }),
            19 => subdir.as_ref().map_or(Ok(()), |d| {
                fs::remove_dir_all(abs(d)).and_then(|()| write(&abs(d), &content, false))
            }),
            20 => {
                let moved = if rng.below(2) == 0 {
                    subdir.clone()
                } else {
                    other.clone()
                };
                let staged = self.fresh(rng, &self.outside.clone());
                moved.map_or(Ok(()), |m| fs::rename(abs(&m), staged))
            }
            21 => {
                let staged: Vec<PathBuf> = fs::read_dir(&self.outside)
                    .map(|d| d.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default();
                match rng.pick(staged.iter()) {
                    // Onto an existing entry sometimes: the new one takes its name.
                    Some(from) => {
                        let to = match (rng.below(3), subdir.as_ref()) {
                            (0, Some(d)) if !d.as_os_str().is_empty() => d.clone(),
                            _ => new.clone(),
                        };
                        fs::rename(from, abs(&to))
                    }
                    None => Ok(()),
                }
            }
            22 => subdir.as_ref().map_or(Ok(()), |d| {
                fs::remove_dir_all(abs(d))
                    .and_then(|()| fs::create_dir(abs(d)))
                    .and_then(|()| {
                        if rng.below(2) == 0 {
                            write(&abs(&d.join("again")), &content, false)
                        } else {
                            Ok(())
                        }
                    })
            }),
            23 => {
                // SAFETY: a NUL-terminated path that outlives the call.
                let rc = unsafe { libc::mkfifo(c_path(&abs(&new)).as_ptr(), 0o644) };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            }
            24 => subdir.as_ref().map_or(Ok(()), |d| {
                fs::remove_dir_all(abs(d)).and_then(|()| symlink("/converge-dir", abs(d)))
            }),
            _ => self.write_outside_link(rng, other.as_deref(), &content),
        };
        if let Some(log) = &mut self.oplog {
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let _ = writeln!(
                log,
                "{}.{:06} {} {:?} other={other:?} new={new:?} subdir={subdir:?} held={:?}",
                at.as_secs(),
                at.subsec_micros(),
                CLASSES[class],
                done.as_ref().map_err(|e| e.kind()),
                if class == 4 {
                    self.last_held.take()
                } else {
                    None
                }
            );
        }
        if done.is_ok() {
            *self.made.entry(CLASSES[class]).or_default() += 1;
        }
    }

    /// Writes through a descriptor kept open (a log, a database): opens one on
    /// a file now and then, writes through one, closes one now and then; some
    /// stay open after the churn.
    fn write_held(
        &mut self,
        rng: &mut Rng,
        other: Option<&Path>,
        content: &[u8],
    ) -> std::io::Result<()> {
        if let Some(f) = other
            && (self.held.len() < 3 || rng.below(4) == 0)
            && let Ok(file) = open_write(&self.root.join(f), true, false)
        {
            self.held.push((f.to_path_buf(), file));
        }
        if self.held.len() > 4 || (rng.below(5) == 0 && !self.held.is_empty()) {
            let i = rng.below(self.held.len());
            self.held.swap_remove(i);
        }
        match self.held.len() {
            0 => Ok(()),
            n => {
                let i = rng.below(n);
                self.last_held = Some(self.held[i].0.clone());
                self.held[i].1.write_all(content)
            }
        }
    }

    /// A name outside the tree for one of its files, and a write through it.
    fn write_outside_link(
        &mut self,
        rng: &mut Rng,
        other: Option<&Path>,
        content: &[u8],
    ) -> std::io::Result<()> {
        if !self.outside_links {
            return Err(std::io::Error::other("not under this backend"));
        }
        let Some(f) = other else {
            return Ok(());
        };
        let staged = self.fresh(rng, &self.outside.clone());
        fs::hard_link(self.root.join(f), &staged)?;
        write(&staged, content, true)?;
        // The outside name goes again (it is not a tree of ours to move in).
        fs::remove_file(staged)
    }

    /// The descriptors still open (closed when the generator is dropped).
    pub fn still_open(&self) -> usize {
        self.held.len()
    }
}
