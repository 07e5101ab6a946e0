//! The changes seen and not yet synced, written beside the state file
//! (`<state>.pending`) as they are seen, so that a daemon killed, or stopped
//! with changes left (a paused watch, a failing target), hands them to the
//! next start. The next start sends them listed (`--ignore-times`) beside its
//! full sync: a full sync compares size and mtime, so it misses a same-size
//! rewrite with its mtime kept, and under `delete = "running"` it deletes
//! nothing (README "Restarts and crashes").
//!
//! A record is a kind byte (`P` a path, `T` a tree compared whole, `I` a
//! search for the names of a file, whose `DEV:INO` takes the path's place,
//! `C` a search for the files changed since a time, `SINCE:DEV` there), the
//! watch's root, a NUL, the path below it, a NUL: a path may hold any byte
//! but NUL. A daemon older than the `I` or `C` records stops reading at the
//! first one (a full sync of every watch). Each change is written once until its watch has nothing left to sync;
//! then its records are forgotten: the file is emptied when no watch has any
//! left, and written again without the forgotten ones once they are as many
//! as the rest (so a watch whose target is down for long costs no rewrite per
//! sync of the others, and the file stays at most twice what is pending).
//! Records are appended with one `write` per batch of changes, without
//! `fsync`: a killed process loses nothing it wrote, and a machine that loses
//! power gets the full sync every unclean start gets.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::own_files::{open_regular, read_regular, write_atomically};

/// Past this many records for one watch, no more are written for it: its
/// restart relies on the full sync (as the engine's own pending set does past
/// its limit), and memory stays bounded while a target is down for days.
const MAX_RECORDS_PER_WATCH: usize = 200_000;
/// A journal larger than this is not read (a full sync of every watch
/// instead): reading it whole must not take the machine's memory.
const MAX_FILE_BYTES: u64 = 256 << 20;
/// A record naming a longer path is where reading stops (a full sync).
const MAX_RECORD_PATH: usize = 1 << 20;
/// Forgotten records in the file below this many are left there (a few
/// listed paths sent again after a kill) rather than cost a rewrite.
const REWRITE_AT_LEAST: usize = 1_024;

/// What a record asks the next start to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Send the path listed (`--ignore-times`); gone from the source, it is a
    /// deletion as the watch's `delete` mode says.
    Path,
    /// Compare the directory's whole tree (`--ignore-times`).
    Tree,
    /// Look for the names of a file written through one of them (its
    /// filesystem and inode, `DEV:INO` in decimal, in the path's place): a
    /// daemon killed while it looked for them, and the name written through
    /// removed before the restart, leaves no name to look from
    /// (`watcher/name_search.rs`; found by a black-box attack).
    Inode,
    /// Look for the files changed since a time in the trees on a
    /// filesystem (`SINCE:DEV`: nanoseconds since the epoch, and the
    /// filesystem, `-` for every one, in decimal): a write inotify could
    /// not follow to its file (`watcher/inotify/lost_writes.rs`); a daemon
    /// killed before the search ended leaves nothing else to find it by.
    ChangedSince,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Path => b'P',
            Kind::Tree => b'T',
            Kind::Inode => b'I',
            Kind::ChangedSince => b'C',
        }
    }
}

/// One change left by the last daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The watch's root, as it was configured.
    pub watch: Vec<u8>,
    pub kind: Kind,
    /// Below the root (`""` for the root itself); not yet checked.
    pub rel: Vec<u8>,
}

/// What the last daemon left: its records, and why the rest (if any) could
/// not be read.
#[derive(Debug, Default)]
pub struct Left {
    pub records: Vec<Record>,
    pub unreadable: Option<String>,
}

/// The records of one watch that the file holds (or is about to).
#[derive(Debug, Default)]
struct WatchRecords {
    paths: HashSet<Vec<u8>>,
    trees: HashSet<Vec<u8>>,
    inodes: HashSet<Vec<u8>>,
    since: HashSet<Vec<u8>>,
    /// Past [`MAX_RECORDS_PER_WATCH`]: nothing more is written for it.
    full: bool,
}

impl WatchRecords {
    fn len(&self) -> usize {
        self.paths.len() + self.trees.len() + self.inodes.len() + self.since.len()
    }

    fn of(&mut self, kind: Kind) -> &mut HashSet<Vec<u8>> {
        match kind {
            Kind::Path => &mut self.paths,
            Kind::Tree => &mut self.trees,
            Kind::Inode => &mut self.inodes,
            Kind::ChangedSince => &mut self.since,
        }
    }
}

/// The open journal: what it holds, per watch, and what is still to write.
#[derive(Debug)]
pub struct PendingJournal {
    path: PathBuf,
    /// Its directory, resolved, and its name: what the daemon's own writes
    /// to it look like as changes (see [`PendingJournal::is_own`]).
    own_dir: PathBuf,
    own_name: Vec<u8>,
    /// Per watch root: the journal's directory below it, when it is there.
    own_below: HashMap<PathBuf, Option<PathBuf>>,
    /// Nothing is written before [`PendingJournal::start`]: until then the
    /// file holds what the last daemon left, and must keep it.
    started: bool,
    file: Option<File>,
    /// Bytes known written: a failed write is cut back to here, so that no
    /// torn record is left in the middle of the file.
    len: u64,
    /// Records in the file, forgotten ones included.
    in_file: usize,
    watches: HashMap<Vec<u8>, WatchRecords>,
    buffer: Vec<u8>,
    /// Records in `buffer`.
    buffered: usize,
    /// Why the last write failed, until one succeeds (logged once).
    error: Option<String>,
}

impl PendingJournal {
    /// The journal at `path`, and what the last daemon left in it. Nothing
    /// is written until [`PendingJournal::start`].
    pub fn open(path: PathBuf) -> (PendingJournal, Left) {
        let too_large =
            std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() > MAX_FILE_BYTES);
        let left = match read_regular(&path) {
            _ if too_large => Left {
                records: Vec::new(),
                unreadable: Some(format!(
                    "{} is larger than {} MiB",
                    path.display(),
                    MAX_FILE_BYTES >> 20
                )),
            },
            Ok(Some(bytes)) => parse(&bytes),
            Ok(None) => Left::default(),
            Err(e) => Left {
                records: Vec::new(),
                unreadable: Some(format!("cannot read {}: {e}", path.display())),
            },
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let journal = PendingJournal {
            own_dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
            own_name: path
                .file_name()
                .map_or_else(Vec::new, |n| n.as_bytes().to_vec()),
            own_below: HashMap::new(),
            path,
            started: false,
            file: None,
            len: 0,
            in_file: 0,
            watches: HashMap::new(),
            buffer: Vec::new(),
            buffered: 0,
            error: None,
        };
        (journal, left)
    }

    /// Whether `rel` below the watch root `root` is one of the journal's own
    /// files (it, or its temp file while it is written again). Under inotify
    /// a journal inside a watched tree sees the daemon's own writes, which
    /// are no change (fanotify drops them by pid): noted, they would be
    /// written, seen and synced for ever.
    pub fn is_own(&mut self, root: &Path, rel: &[u8]) -> bool {
        // Looked up before anything is copied: this runs for every change.
        if !self.own_below.contains_key(root) {
            let below = self.own_dir.strip_prefix(root).ok().map(Path::to_path_buf);
            self.own_below.insert(root.to_path_buf(), below);
        }
        let Some(Some(below)) = self.own_below.get(root) else {
            return false;
        };
        let rel = Path::new(std::ffi::OsStr::from_bytes(rel));
        if rel.parent() != Some(below.as_path()) {
            return false;
        }
        rel.file_name().is_some_and(|name| {
            let name = name.as_bytes();
            name == self.own_name
                || (name.first() == Some(&b'.') && name[1..].starts_with(&self.own_name))
        })
    }

    /// Where it is kept.
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with what was noted since [`PendingJournal::open`]
    /// (the records taken up again), in one atomic write, and opens it for
    /// appending.
    pub fn start(&mut self) {
        self.started = true;
        self.rewrite();
    }

    /// Notes a change of `watch`; written at the next [`PendingJournal::flush`]
    /// unless the file holds it already.
    pub fn note(&mut self, watch: &[u8], kind: Kind, rel: &[u8]) {
        // Looked up before anything is copied: a burst notes each path
        // several times (every write of a file, then its close).
        if !self.watches.contains_key(watch) {
            self.watches.insert(watch.to_vec(), WatchRecords::default());
        }
        let Some(records) = self.watches.get_mut(watch) else {
            return;
        };
        if records.full || records.of(kind).contains(rel) {
            return;
        }
        if records.len() >= MAX_RECORDS_PER_WATCH {
            records.full = true;
            tracing::warn!(
                "{}: {MAX_RECORDS_PER_WATCH} changes noted since it was last in sync; no more \
                 are kept in {} until it is, and if this daemon is killed meanwhile, only \
                 the next start's full sync (size and mtime) sees the rest",
                String::from_utf8_lossy(watch),
                self.path.display()
            );
            return;
        }
        records.of(kind).insert(rel.to_vec());
        encode(&mut self.buffer, watch, kind, rel);
        self.buffered += 1;
    }

    /// Writes what was noted, in one `write`.
    pub fn flush(&mut self) {
        if self.buffer.is_empty() || !self.started {
            return;
        }
        match self.append() {
            Ok(()) => {
                self.buffer.clear();
                self.in_file += std::mem::take(&mut self.buffered);
                if let Some(e) = self.error.take() {
                    tracing::info!("{}: written again (was: {e})", self.path.display());
                }
            }
            Err(e) => self.failed(e),
        }
    }

    fn append(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            let file = open_regular(&self.path, true)?;
            self.len = file.metadata()?.len();
            self.file = Some(file);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        match file.write_all(&self.buffer) {
            Ok(()) => {
                self.len += self.buffer.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// The roots of the watches that have records.
    pub fn roots(&self) -> impl Iterator<Item = &[u8]> {
        self.watches.keys().map(Vec::as_slice)
    }

    /// Forgets the records of the watches `synced` says have nothing left to
    /// sync: the file is emptied when none has records left, and written
    /// again without the forgotten ones once they are as many as the rest.
    pub fn forget(&mut self, synced: impl Fn(&[u8]) -> bool) {
        let before = self.watches.len();
        self.watches.retain(|watch, _| !synced(watch));
        if self.watches.len() == before || !self.started {
            return;
        }
        let live: usize = self.watches.values().map(WatchRecords::len).sum();
        if live == 0 {
            self.buffer.clear();
            self.buffered = 0;
            let emptied = match &self.file {
                Some(file) => file.set_len(0),
                None => self.replace(&[]),
            };
            match emptied {
                Ok(()) => {
                    self.len = 0;
                    self.in_file = 0;
                }
                Err(e) => self.failed(e),
            }
        } else if (self.in_file + self.buffered).saturating_sub(live) >= live.max(REWRITE_AT_LEAST)
        {
            self.rewrite();
        }
    }

    /// Writes the file again with the records kept in memory alone.
    fn rewrite(&mut self) {
        let mut bytes = Vec::new();
        let mut count = 0;
        for (watch, records) in &self.watches {
            for rel in &records.paths {
                encode(&mut bytes, watch, Kind::Path, rel);
            }
            for inode in &records.inodes {
                encode(&mut bytes, watch, Kind::Inode, inode);
            }
            for since in &records.since {
                encode(&mut bytes, watch, Kind::ChangedSince, since);
            }
            for rel in &records.trees {
                encode(&mut bytes, watch, Kind::Tree, rel);
            }
            count += records.len();
        }
        match self.replace(&bytes) {
            Ok(()) => {
                self.buffer.clear();
                self.buffered = 0;
                self.in_file = count;
            }
            Err(e) => {
                // The old file is intact: what is in memory is appended to it.
                self.buffer = bytes;
                self.buffered = count;
                self.failed(e);
            }
        }
    }

    /// Replaces the file with `bytes` and opens it for appending.
    fn replace(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file = None;
        write_atomically(&self.path, bytes)?;
        let file = open_regular(&self.path, true)?;
        self.len = bytes.len() as u64;
        self.file = Some(file);
        Ok(())
    }

    /// Makes what was written reach the disk (`fdatasync`).
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }

    /// Whether every change noted so far is kept: no watch has gone past
    /// `MAX_RECORDS_PER_WATCH` since it was last in sync.
    pub fn keeps_everything(&self) -> bool {
        !self.watches.values().any(|records| records.full)
    }

    /// Why the last write failed, until one succeeds (`status` shows it).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn failed(&mut self, e: io::Error) {
        if self.error.is_none() {
            tracing::error!(
                "cannot write {}: {e}; if this daemon is killed, a change it has seen and \
                 not synced reaches the mirrors only if the next start's full sync sees it \
                 (a size or mtime that differs)",
                self.path.display()
            );
        }
        self.error = Some(format!("cannot write {}: {e}", self.path.display()));
    }
}

fn encode(out: &mut Vec<u8>, watch: &[u8], kind: Kind, rel: &[u8]) {
    out.push(kind.byte());
    out.extend_from_slice(watch);
    out.push(0);
    out.extend_from_slice(rel);
    out.push(0);
}

/// The records of a journal's bytes, up to the first that cannot be read.
fn parse(bytes: &[u8]) -> Left {
    let mut left = Left::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let mut fields = rest.splitn(3, |b| *b == 0);
        let (Some(head), Some(rel), Some(tail)) = (fields.next(), fields.next(), fields.next())
        else {
            // A record cut short: a write the daemon did not finish.
            left.unreadable = Some(format!("a record cut short at byte {offset}"));
            break;
        };
        let kind = match head.first() {
            Some(b'P') => Kind::Path,
            Some(b'T') => Kind::Tree,
            Some(b'I') => Kind::Inode,
            Some(b'C') => Kind::ChangedSince,
            _ => {
                left.unreadable = Some(format!("an unknown record at byte {offset}"));
                break;
            }
        };
        let watch = &head[1..];
        if rel.len() > MAX_RECORD_PATH || watch.len() > MAX_RECORD_PATH {
            left.unreadable = Some(format!("a record of a path too long at byte {offset}"));
            break;
        }
        if watch.first() != Some(&b'/') {
            left.unreadable = Some(format!("a record without a watch at byte {offset}"));
            break;
        }
        left.records.push(Record {
            watch: watch.to_vec(),
            kind,
            rel: rel.to_vec(),
        });
        rest = tail;
    }
    left
}

/// Whether `rel` is a path below a root (`""` for the root itself): no empty,
/// `.` or `..` component, not absolute. A record that is not is never sent
/// (it could name a file outside the tree).
pub fn is_below_root(rel: &[u8]) -> bool {
    rel.is_empty()
        || rel
            .split(|b| *b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_in(dir: &Path) -> PendingJournal {
        let (mut journal, left) = PendingJournal::open(dir.join("state.toml.pending"));
        assert!(left.records.is_empty() && left.unreadable.is_none());
        journal.start();
        journal
    }

    #[test]
    fn what_is_noted_is_left_to_the_next_start_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = journal_in(dir.path());
        journal.note(b"/srv/a", Kind::Path, b"f");
        journal.note(b"/srv/a", Kind::Path, b"f");
        journal.note(b"/srv/b", Kind::Tree, b"d/with\nnewline");
        journal.flush();
        journal.note(b"/srv/a", Kind::Path, b"");
        journal.flush();
        let (_, left) = PendingJournal::open(journal.path().to_path_buf());
        assert_eq!(left.unreadable, None);
        let got: Vec<(&[u8], Kind, &[u8])> = left
            .records
            .iter()
            .map(|r| (r.watch.as_slice(), r.kind, r.rel.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"/srv/a"[..], Kind::Path, &b"f"[..]),
                (&b"/srv/b"[..], Kind::Tree, &b"d/with\nnewline"[..]),
                (&b"/srv/a"[..], Kind::Path, &b""[..]),
            ]
        );
    }

    #[test]
    fn a_synced_watch_is_forgotten_and_an_all_synced_journal_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = journal_in(dir.path());
        journal.note(b"/srv/a", Kind::Path, b"f");
        journal.note(b"/srv/b", Kind::Path, b"g");
        journal.flush();
        journal.forget(|w| w == b"/srv/a");
        // A few forgotten records stay until they are many (no rewrite per
        // sync); noted again, the path is written again.
        journal.note(b"/srv/a", Kind::Path, b"f");
        journal.flush();
        let (_, left) = PendingJournal::open(journal.path().to_path_buf());
        assert_eq!(left.records.len(), 3, "{left:?}");
        journal.forget(|_| true);
        assert_eq!(fs_len(journal.path()), 0);
        assert_eq!(journal.roots().count(), 0);
        // Noted again once forgotten.
        journal.note(b"/srv/a", Kind::Path, b"f");
        journal.flush();
        assert!(fs_len(journal.path()) > 0);
    }

    /// What the last daemon left, taken up again (noted before the start),
    /// is in the file after it, for the start after this one (before: the
    /// start wrote the file empty; found by a review).
    #[test]
    fn what_a_start_takes_up_stays_for_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = journal_in(dir.path());
        journal.note(b"/srv/a", Kind::Path, b"f");
        journal.flush();
        let (mut next, left) = PendingJournal::open(journal.path().to_path_buf());
        for record in &left.records {
            next.note(&record.watch, record.kind, &record.rel);
        }
        next.flush();
        next.start();
        let (_, left) = PendingJournal::open(journal.path().to_path_buf());
        assert_eq!(left.records.len(), 1, "{left:?}");
    }

    /// The file holds at most about twice what is noted: forgotten records
    /// are dropped by a rewrite once they outnumber the rest.
    #[test]
    fn forgotten_records_do_not_pile_up_behind_a_watch_never_in_sync() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = journal_in(dir.path());
        for i in 0..1_500 {
            journal.note(b"/srv/down", Kind::Path, format!("kept-{i}").as_bytes());
        }
        for round in 0..40 {
            for i in 0..100 {
                journal.note(b"/srv/busy", Kind::Path, format!("{round}-{i}").as_bytes());
            }
            journal.flush();
            journal.forget(|w| w == b"/srv/busy");
        }
        let (_, left) = PendingJournal::open(journal.path().to_path_buf());
        assert!(
            left.records.len() <= 2 * 1_500 + 100,
            "{}",
            left.records.len()
        );
        let kept = left
            .records
            .iter()
            .filter(|r| r.rel.starts_with(b"kept-"))
            .count();
        assert_eq!(kept, 1_500);
    }

    /// The journal's own files are known whatever way its directory is
    /// spelled (relative, or through a symlink), and nothing else is.
    #[test]
    fn the_journals_own_files_are_known_however_its_directory_is_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("state")).unwrap();
        std::os::unix::fs::symlink(root.join("state"), root.join("link")).unwrap();
        for given in [
            root.join("link/state.toml.pending"),
            root.join("state/state.toml.pending"),
        ] {
            let (mut journal, _) = PendingJournal::open(given);
            assert!(journal.is_own(&root, b"state/state.toml.pending"));
            assert!(journal.is_own(&root, b"state/.state.toml.pending.tmp-42"));
            assert!(!journal.is_own(&root, b"state/other"));
            assert!(!journal.is_own(&root, b"state.toml.pending"));
            assert!(!journal.is_own(&root.join("elsewhere"), b"state/state.toml.pending"));
        }
    }

    fn fs_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn a_record_cut_short_or_foreign_is_where_reading_stops() {
        let mut bytes = Vec::new();
        encode(&mut bytes, b"/srv/a", Kind::Path, b"f");
        let whole = bytes.len();
        encode(&mut bytes, b"/srv/a", Kind::Path, b"g");
        let left = parse(&bytes[..bytes.len() - 1]);
        assert_eq!(left.records.len(), 1);
        assert!(left.unreadable.unwrap().contains(&format!("byte {whole}")));
        let left = parse(b"Xsomething\0f\0");
        assert!(left.records.is_empty() && left.unreadable.is_some());
        let left = parse(b"Prelative\0f\0");
        assert!(left.records.is_empty() && left.unreadable.is_some());
        let mut huge = Vec::new();
        encode(
            &mut huge,
            b"/srv/a",
            Kind::Path,
            &vec![b'x'; MAX_RECORD_PATH + 1],
        );
        let left = parse(&huge);
        assert!(left.records.is_empty() && left.unreadable.is_some());
    }

    #[test]
    fn only_a_path_below_the_root_is_taken_up() {
        for good in [&b""[..], b"f", b"d/f", b"d/..f", b"a\nb"] {
            assert!(is_below_root(good), "{good:?}");
        }
        for bad in [
            &b"/etc/passwd"[..],
            b"..",
            b"d/../../x",
            b"./f",
            b"d//f",
            b"d/",
        ] {
            assert!(!is_below_root(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_symlink_in_the_journals_place_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let path = dir.path().join("state.toml.pending");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let (mut journal, left) = PendingJournal::open(path.clone());
        assert!(left.unreadable.is_some());
        journal.note(b"/srv/a", Kind::Path, b"f");
        journal.flush();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
}
