//! The state file: runtime changes made with `inosyncctl` (add, remove, speed,
//! delay, pause), kept across restarts. Written atomically (temp file, fsync,
//! rename, fsync of the directory) so a crash leaves the old or the new version,
//! never half of one. A corrupt file is reported and moved aside: it never stops the
//! config's watches from starting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::own_files::{Lock, PRIVATE_DIR, ensure_dir, parent_dir, read_regular, write_atomically};

/// Everything set at runtime, layered over the config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeState {
    /// Global bandwidth limit set with `inosyncctl speed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u32>,
    /// Global delay set with `inosyncctl delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<f64>,
    /// Config watches removed with `inosyncctl remove`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Watches whose `inosyncctl remove` waits for their pending changes: a
    /// restart finishes the removal (a full sync, then the watch goes) rather
    /// than forgetting it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<String>,
    /// Watches added with `inosyncctl add`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<AddedWatch>,
    /// Per-watch settings changed at runtime, by watch path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watch: BTreeMap<String, WatchOverride>,
    /// The filesystem (statfs f_fsid) each watch root was on, by watch path: a root
    /// found on another one at start (a disk that failed to mount) is not synced.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, u64>,
    /// The watch roots that were mount points, by watch path, with the inode
    /// of the directory mounted there (a bind mount from the same filesystem
    /// has the id of the directory under it): one found not to be one at
    /// start, with another inode (the mount failed), is not synced from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mount_points: BTreeMap<String, u64>,
    /// Where each watch root lies on its filesystem (the mount's directory of
    /// it, from the mount table, and the path below; escaped as `ls -b`), by
    /// watch path: a root whose path leads elsewhere at start (a bind mount
    /// above it or on it that is not there) is not synced from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub places: BTreeMap<String, String>,
    /// The boot (`/proc/sys/kernel/random/boot_id`) the `devices` were read in:
    /// device numbers hold only within one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The block device each watch root was on, by watch path, in that boot:
    /// a root found on another device with the recorded filesystem id (a copy
    /// of its disk: the same UUID) is not synced from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub devices: BTreeMap<String, u64>,
    /// Watches that still had changes to sync when the daemon stopped (a
    /// target in retry backoff is not waited for, a paused watch holds its
    /// changes): the next start gives each a full sync, even with
    /// `initial_sync = false`, then forgets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsynced: Vec<String>,
}

/// A watch added at runtime, with what `add` was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddedWatch {
    /// The watched directory.
    pub path: String,
    /// Appended to each target.
    pub remote_path: String,
    /// Own targets; empty = the config's default targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Own excludes.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// Own delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<f64>,
    /// Own speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u32>,
}

/// Per-watch runtime settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchOverride {
    /// Bandwidth limit set with `speed --watch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u32>,
    /// Delay set with `delay --watch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<f64>,
    /// Held by `pause`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

impl WatchOverride {
    fn is_empty(&self) -> bool {
        *self == WatchOverride::default()
    }
}

impl RuntimeState {
    /// The override entry of a watch, created on demand.
    pub fn watch_mut(&mut self, path: &str) -> &mut WatchOverride {
        self.watch.entry(path.to_string()).or_default()
    }

    /// Drops entries that say nothing, so the file stays readable.
    pub fn tidy(&mut self) {
        self.watch.retain(|_, o| !o.is_empty());
    }

    /// Drops each delay that is no number of seconds (negative, not finite,
    /// past the longest `inosyncctl delay` takes), saying so: the file is
    /// ours, but may be edited by hand or corrupt, and such a delay made the
    /// daemon panic on its first change (a review).
    fn drop_bad_delays(&mut self, path: &Path) {
        let check = |delay: &mut Option<f64>, whose: &str| {
            if let Some(value) = *delay
                && let Err(e) = crate::config::checks::seconds(value)
            {
                tracing::error!(
                    "state file {}: the delay of {whose}: {e}; left out",
                    path.display()
                );
                *delay = None;
            }
        };
        check(&mut self.delay, "every watch");
        for added in &mut self.added {
            check(&mut added.delay, &added.path);
        }
        for (watch, settings) in &mut self.watch {
            check(&mut settings.delay, watch);
        }
    }
}

/// The first line of every state file we write: a file without it is not ours,
/// and is never moved aside or overwritten.
const HEADER: &str = "# Runtime changes made with inosyncctl; written by inosyncd.\n";

/// Why the state file cannot be used: the daemon does not start, and prints
/// this text (README "Operating at runtime").
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Its directory could not be made.
    #[error("cannot create the state directory: {0}")]
    Directory(std::io::Error),
    /// Writing runtime changes into the config file would destroy it.
    #[error("--state {} is the config file; choose another state file", .0.display())]
    IsConfigFile(PathBuf),
    /// The lock file could not be opened or locked.
    #[error("cannot lock the state file: {0}")]
    Lock(std::io::Error),
    /// Another daemon holds the lock.
    #[error(
        "state file {} is in use by another inosyncd (locked: {}); \
         give each daemon its own --state",
        path.display(),
        lock.display()
    )]
    InUse {
        /// The state file.
        path: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// A symlink, a directory, or a file that could not be read.
    #[error("state file: {0}")]
    Read(std::io::Error),
    /// A file we did not write: neither moved aside nor overwritten.
    #[error(
        "{} is not an inosyncd state file ({problem}); refusing to overwrite it: \
         remove it or choose another --state",
        path.display()
    )]
    NotOurs {
        /// The file.
        path: PathBuf,
        /// The first line of the TOML parser's complaint.
        problem: String,
    },
}

/// Where the state lives, locked for this daemon's lifetime: two daemons sharing
/// one state file would each overwrite the other's changes.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    _lock: Lock,
}

impl StateFile {
    /// Locks the state file at `path` (through `<path>.lock` beside it, which
    /// survives the atomic renames of the file itself). Refused when another
    /// daemon holds it, or when `path` is the config file.
    pub fn open(path: PathBuf, config_file: Option<&Path>) -> Result<StateFile, StateFileError> {
        let dir = parent_dir(&path);
        ensure_dir(&dir, PRIVATE_DIR).map_err(StateFileError::Directory)?;
        if let Some(config) = config_file
            && same_file(&path, config)
        {
            return Err(StateFileError::IsConfigFile(path));
        }
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = Lock::try_acquire(Path::new(&lock_path))
            .map_err(StateFileError::Lock)?
            .ok_or_else(|| StateFileError::InUse {
                path: path.clone(),
                lock: PathBuf::from(&lock_path),
            })?;
        Ok(StateFile { path, _lock: lock })
    }

    /// `/var/lib/inosync/state.toml` as root, `$XDG_STATE_HOME/inosync/state.toml`
    /// (or `~/.local/state/inosync/state.toml`) otherwise.
    pub fn default_path() -> PathBuf {
        // SAFETY: getuid cannot fail and touches no memory.
        if unsafe { libc::getuid() } == 0 {
            return PathBuf::from("/var/lib/inosync/state.toml");
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        base.join("inosync/state.toml")
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<path>.running`: there while a daemon runs on this state, made at
    /// start and removed at a stop. Found at start, the last daemon did not
    /// stop (killed, crashed, the machine lost power) and could not say what
    /// it left unsynced. A file of its own, not a key of the state: a state
    /// file keeps its shape, and an older inosyncd still reads it.
    fn running_marker(&self) -> PathBuf {
        let mut marker = self.path.as_os_str().to_owned();
        marker.push(".running");
        PathBuf::from(marker)
    }

    /// When the last daemon on this state did not stop (its running mark is
    /// still there): the mark's mtime, the last time that daemon had read
    /// every event queued before it (see [`StateFile::mark_read_up_to`]), or
    /// its start.
    pub fn last_run_killed(&self) -> Option<std::time::SystemTime> {
        std::fs::symlink_metadata(self.running_marker())
            .ok()
            .map(|m| m.modified().unwrap_or(std::time::UNIX_EPOCH))
    }

    /// Marks a daemon running on this state (read [`StateFile::last_run_killed`]
    /// first).
    pub fn mark_running(&self) -> std::io::Result<()> {
        let marker = self.running_marker();
        // Only the name counts: on a full filesystem, where the pid cannot be
        // written, an empty mark (a name takes no data block) still is one.
        if write_atomically(&marker, format!("{}\n", std::process::id()).as_bytes()).is_err() {
            crate::own_files::open_regular(&marker, false)?;
        }
        Ok(())
    }

    /// Every change made before `at` has been read from the kernel's queue
    /// and written to the journal: the mark's mtime says so, so that a start
    /// after a kill looks for what was still queued among the files changed
    /// since (their change time) rather than since this daemon's start.
    pub fn mark_read_up_to(&self, at: std::time::SystemTime) -> std::io::Result<()> {
        let marker = crate::own_files::open_regular(&self.running_marker(), false)?;
        marker.set_modified(at)
    }

    /// Clears the mark at a stop.
    pub fn mark_stopped(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.running_marker()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Reads the state. A missing file is an empty state. A state file of ours that
    /// is corrupt is logged, moved aside (`state.toml.corrupt-<unix time>`) and
    /// replaced by an empty state, so the daemon starts with the config alone. A
    /// symlink, a directory, or a file we did not write is refused: it is somebody
    /// else's, and neither moved nor overwritten.
    pub fn load(&self) -> Result<RuntimeState, StateFileError> {
        let bytes = match read_regular(&self.path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(RuntimeState::default()),
            Err(e) => return Err(StateFileError::Read(e)),
        };
        let text = String::from_utf8_lossy(&bytes);
        match toml::from_str::<RuntimeState>(&text) {
            Ok(mut state) => {
                state.drop_bad_delays(&self.path);
                Ok(state)
            }
            Err(e) if text.starts_with(HEADER) => {
                let mut salvaged = salvage(&text);
                salvaged.drop_bad_delays(&self.path);
                self.move_aside(&e.to_string(), salvaged.sources.len());
                // Written back at once: a start that changes nothing would
                // write nothing, and the next one would find no records.
                if salvaged != RuntimeState::default()
                    && let Err(e) = self.save(&salvaged)
                {
                    tracing::error!(
                        "cannot write the salvaged state file {}: {e}",
                        self.path.display()
                    );
                }
                Ok(salvaged)
            }
            Err(e) => Err(StateFileError::NotOurs {
                path: self.path.clone(),
                problem: e
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or("not TOML")
                    .to_string(),
            }),
        }
    }

    fn move_aside(&self, problem: &str, roots_kept: usize) {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = self.path.with_extension(format!("toml.corrupt-{stamp}"));
        let moved = std::fs::rename(&self.path, &aside);
        tracing::error!(
            "state file {} is corrupt ({}); {}; keeping only its entries that still have \
             their type (where {roots_kept} watch root(s) were, removed, paused, added and \
             unsynced watches, speed and delay)",
            self.path.display(),
            problem.trim(),
            match moved {
                Ok(()) => format!("moved aside to {}", aside.display()),
                Err(e) => format!("could not move it aside: {e}"),
            }
        );
    }

    /// Writes the state atomically (0600, never through a symlink).
    pub fn save(&self, state: &RuntimeState) -> std::io::Result<()> {
        let text = toml::to_string(state).map_err(std::io::Error::other)?;
        write_atomically(&self.path, format!("{HEADER}{text}").as_bytes())
    }
}

/// What a corrupt state file still says, entry by entry: where each watch
/// root was (its filesystem, mount point, place, device and the boot of the
/// devices), which watches were removed, being removed, added, paused or left
/// unsynced, and the runtime speed and delay. Without the root records a start
/// with a bind mount not there synced from the directory under it and wiped
/// the mirror; without the others a removed watch fed its old target again, a
/// paused one synced mid-maintenance and an unsynced one lost its changes
/// (found by a black-box attack and a review). An entry is kept only if it has
/// its type; unknown keys are passed over. Nothing when the text is not TOML.
fn salvage(text: &str) -> RuntimeState {
    /// A value that is kept if it has its type and passed over if not.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Maybe<T> {
        Good(T),
        Bad(serde::de::IgnoredAny),
    }
    impl<T> Maybe<T> {
        fn good(self) -> Option<T> {
            match self {
                Maybe::Good(value) => Some(value),
                Maybe::Bad(_) => None,
            }
        }
    }
    type Map<T> = Option<Maybe<BTreeMap<String, Maybe<T>>>>;
    type List<T> = Option<Maybe<Vec<Maybe<T>>>>;
    fn good<T>(value: Option<Maybe<T>>) -> Option<T> {
        value.and_then(Maybe::good)
    }
    /// A watch's runtime settings, field by field: a key of a newer
    /// version in its table costs that key, not the pause (a review).
    #[derive(Deserialize)]
    struct LooseOverride {
        speed: Option<Maybe<u32>>,
        delay: Option<Maybe<f64>>,
        paused: Option<Maybe<bool>>,
    }
    /// A watch added at runtime, field by field (its path is needed).
    #[derive(Deserialize)]
    struct LooseAdded {
        path: String,
        remote_path: Option<Maybe<String>>,
        targets: List<String>,
        excludes: List<String>,
        delay: Option<Maybe<f64>>,
        speed: Option<Maybe<u32>>,
    }
    /// The state file's keys, each read on its own.
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Loose {
        speed: Option<Maybe<u32>>,
        delay: Option<Maybe<f64>>,
        removed: List<String>,
        removing: List<String>,
        added: List<LooseAdded>,
        watch: Map<LooseOverride>,
        sources: Map<u64>,
        mount_points: Map<u64>,
        places: Map<String>,
        boot_id: Option<Maybe<String>>,
        devices: Map<u64>,
        unsynced: List<String>,
    }
    fn map<T>(loose: Map<T>) -> BTreeMap<String, T> {
        loose
            .and_then(Maybe::good)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k, v.good()?)))
            .collect()
    }
    fn list<T>(loose: List<T>) -> Vec<T> {
        loose
            .and_then(Maybe::good)
            .into_iter()
            .flatten()
            .filter_map(Maybe::good)
            .collect()
    }
    let Ok(loose) = toml::from_str::<Loose>(text) else {
        return RuntimeState::default();
    };
    RuntimeState {
        speed: good(loose.speed),
        delay: good(loose.delay),
        removed: list(loose.removed),
        removing: list(loose.removing),
        added: list(loose.added)
            .into_iter()
            .map(|a| AddedWatch {
                path: a.path,
                remote_path: good(a.remote_path).unwrap_or_default(),
                targets: list(a.targets),
                excludes: list(a.excludes),
                delay: good(a.delay),
                speed: good(a.speed),
            })
            .collect(),
        watch: map(loose.watch)
            .into_iter()
            .map(|(path, o)| {
                let settings = WatchOverride {
                    speed: good(o.speed),
                    delay: good(o.delay),
                    paused: good(o.paused).unwrap_or(false),
                };
                (path, settings)
            })
            .collect(),
        sources: map(loose.sources),
        mount_points: map(loose.mount_points),
        places: map(loose.places),
        boot_id: loose.boot_id.and_then(Maybe::good),
        devices: map(loose.devices),
        unsynced: list(loose.unsynced),
    }
}

/// Whether two paths name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::open(dir.path().join("sub/state.toml"), None).unwrap();
        let mut state = RuntimeState {
            speed: Some(500),
            delay: Some(2.5),
            removed: vec!["/srv/old".into()],
            added: vec![AddedWatch {
                path: "/srv/blog".into(),
                remote_path: "".into(),
                targets: vec!["/backup/".into()],
                excludes: vec!["*.tmp".into()],
                delay: None,
                speed: Some(100),
            }],
            ..RuntimeState::default()
        };
        state.watch_mut("/srv/blog").paused = true;
        file.save(&state).unwrap();
        assert_eq!(file.load().unwrap(), state);
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.toml");
        std::fs::write(&path, format!("{HEADER}speed = [oops")).unwrap();
        let state = StateFile::open(path.clone(), None).unwrap().load();
        assert_eq!(state.unwrap(), RuntimeState::default());
        assert!(!path.exists());
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
            .count();
        assert_eq!(aside, 1);
    }

    /// A corrupt state file (a key of a newer version, one wrong value)
    /// still says where each watch root was: without those records, a start
    /// with a bind mount not there synced from the directory under it and
    /// wiped the mirror (found by a black-box attack). They are salvaged,
    /// entry by entry; the rest is moved aside with the file.
    #[test]
    fn a_corrupt_file_keeps_where_the_roots_were() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.toml");
        std::fs::write(
            &path,
            format!(
                "{HEADER}future_key = true\nspeed = \"fast\"\nboot_id = \"b1\"\n\
                 [sources]\n\"/srv/www\" = 17658063163022780095\n\
                 [mount_points]\n\"/srv/www\" = 7\n\
                 [places]\n\"/srv/www\" = \"/data/www\"\n\
                 [devices]\n\"/srv/www\" = 1792\n\"/srv/bad\" = -1\n"
            ),
        )
        .unwrap();
        let state = StateFile::open(path.clone(), None).unwrap().load().unwrap();
        assert_eq!(state.sources.get("/srv/www"), Some(&17658063163022780095));
        assert_eq!(state.mount_points.get("/srv/www"), Some(&7));
        assert_eq!(
            state.places.get("/srv/www").map(String::as_str),
            Some("/data/www")
        );
        assert_eq!(state.devices.get("/srv/www"), Some(&1792));
        assert_eq!(state.devices.get("/srv/bad"), None);
        assert_eq!(state.boot_id.as_deref(), Some("b1"));
        assert_eq!(state.speed, None);
        assert_eq!(
            StateFile::open(path.clone(), None).unwrap().load().unwrap(),
            state,
            "written back"
        );
    }

    /// A corrupt state file (a downgrade's unknown key) still says which
    /// watches were removed, paused or left unsynced: forgotten, a removed
    /// watch fed its old target again, a paused one synced mid-maintenance,
    /// and an unsynced one lost its changes with `initial_sync = false`.
    /// Each entry is kept only if it has its type.
    #[test]
    fn a_corrupt_file_keeps_what_was_removed_paused_added_and_unsynced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.toml");
        std::fs::write(
            &path,
            format!(
                "{HEADER}future_key = true\nspeed = 300\ndelay = \"soon\"\n\
                 removed = [\"/srv/old\", 7]\nremoving = [\"/srv/going\"]\n\
                 unsynced = [\"/srv/www\"]\n\
                 [[added]]\npath = \"/srv/blog\"\nremote_path = \"\"\ntargets = [\"/b/\"]\n\
                 [[added]]\npath = \"/srv/odd\"\nremote_path = \"\"\nshiny = 1\n\
                 [watch.\"/srv/www\"]\npaused = true\n\
                 [watch.\"/srv/new\"]\npaused = true\nshiny = 1\n\
                 [watch.\"/srv/bad\"]\npaused = \"maybe\"\n"
            ),
        )
        .unwrap();
        let state = StateFile::open(path.clone(), None).unwrap().load().unwrap();
        assert_eq!(state.removed, ["/srv/old"]);
        assert_eq!(state.removing, ["/srv/going"]);
        assert_eq!(state.unsynced, ["/srv/www"]);
        assert_eq!(state.speed, Some(300));
        assert_eq!(state.delay, None);
        assert_eq!(
            state
                .added
                .iter()
                .map(|a| a.path.as_str())
                .collect::<Vec<_>>(),
            ["/srv/blog", "/srv/odd"],
            "a key of a newer version costs that key alone"
        );
        assert_eq!(state.added[0].targets, ["/b/"]);
        assert!(state.watch["/srv/www"].paused);
        assert!(state.watch["/srv/new"].paused);
        assert!(!state.watch.get("/srv/bad").is_some_and(|o| o.paused));
        assert_eq!(
            StateFile::open(path, None).unwrap().load().unwrap(),
            state,
            "written back"
        );
    }

    /// A delay that is no number of seconds (negative, not finite, past the
    /// longest) is dropped with the reason said, never used: the daemon
    /// panicked on its first change (a review; the file is ours, but may be
    /// edited by hand or corrupt).
    #[test]
    fn a_delay_that_is_no_number_of_seconds_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.toml");
        std::fs::write(
            &path,
            format!(
                "{HEADER}delay = -1.0\n\
                 [[added]]\npath = \"/srv/blog\"\nremote_path = \"\"\ndelay = nan\n\
                 [watch.\"/srv/www\"]\ndelay = 1e300\npaused = true\n\
                 [watch.\"/srv/ok\"]\ndelay = 2.5\n"
            ),
        )
        .unwrap();
        let state = StateFile::open(path, None).unwrap().load().unwrap();
        assert_eq!(state.delay, None);
        assert_eq!(state.added[0].delay, None);
        assert_eq!(state.watch["/srv/www"].delay, None);
        assert!(state.watch["/srv/www"].paused);
        assert_eq!(state.watch["/srv/ok"].delay, Some(2.5));
    }

    #[test]
    fn a_file_that_is_not_ours_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("inosync.toml");
        std::fs::write(&config, "delay = 1\n[[watch]]\npath = \"/srv\"\n").unwrap();
        let e = StateFile::open(config.clone(), Some(&config)).unwrap_err();
        assert!(e.to_string().contains("is the config file"), "{e}");
        let e = StateFile::open(config.clone(), None)
            .unwrap()
            .load()
            .unwrap_err();
        assert!(e.to_string().contains("not an inosyncd state file"), "{e}");
        assert!(
            std::fs::read_to_string(&config)
                .unwrap()
                .starts_with("delay")
        );
        let state_dir = dir.path().join("statedir");
        std::fs::create_dir(&state_dir).unwrap();
        let e = StateFile::open(state_dir, None)
            .unwrap()
            .load()
            .unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn two_daemons_cannot_share_a_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.toml");
        let _first = StateFile::open(path.clone(), None).unwrap();
        let e = StateFile::open(path, None).unwrap_err();
        assert!(e.to_string().contains("in use by another inosyncd"), "{e}");
    }
}
