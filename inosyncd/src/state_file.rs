//! The state file: runtime changes made with `inosyncctl` (add, remove, speed,
//! delay, pause), kept across restarts. Written atomically (temp file, fsync,
//! rename, fsync of the directory) so a crash leaves the old or the new version,
//! never half of one. A corrupt file is reported and moved aside: it never stops the
//! config's watches from starting.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// Watches added with `inosyncctl add`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<AddedWatch>,
    /// Per-watch settings changed at runtime, by watch path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watch: BTreeMap<String, WatchOverride>,
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
}

/// Where the state lives.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file at `path` (not read yet).
    pub fn new(path: PathBuf) -> StateFile {
        StateFile { path }
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

    /// Reads the state. A missing file is an empty state; an unreadable or corrupt
    /// one is logged, moved aside (`state.toml.corrupt-<unix time>`) and replaced by
    /// an empty state, so the daemon starts with the config alone.
    pub fn load(&self) -> RuntimeState {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return RuntimeState::default(),
            Err(e) => {
                self.move_aside(&format!("cannot read it: {e}"));
                return RuntimeState::default();
            }
        };
        match toml::from_str(&text) {
            Ok(state) => state,
            Err(e) => {
                self.move_aside(&e.to_string());
                RuntimeState::default()
            }
        }
    }

    fn move_aside(&self, problem: &str) {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = self.path.with_extension(format!("toml.corrupt-{stamp}"));
        let moved = std::fs::rename(&self.path, &aside);
        tracing::error!(
            "state file {} is corrupt ({}); {}; starting from the config alone",
            self.path.display(),
            problem.trim(),
            match moved {
                Ok(()) => format!("moved aside to {}", aside.display()),
                Err(e) => format!("could not move it aside: {e}"),
            }
        );
    }

    /// Writes the state atomically.
    pub fn save(&self, state: &RuntimeState) -> std::io::Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let text = toml::to_string(state).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("toml.tmp");
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(b"# Runtime changes made with inosyncctl; written by inosyncd.\n")?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        std::fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("sub/state.toml"));
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
        assert_eq!(file.load(), state);
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.toml");
        std::fs::write(&path, "speed = [oops").unwrap();
        let state = StateFile::new(path.clone()).load();
        assert_eq!(state, RuntimeState::default());
        assert!(!path.exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(aside.len(), 1);
        assert!(aside[0].file_name().to_string_lossy().contains("corrupt"));
    }
}
