//! The daemon's settings: one model, read from either config format and checked in
//! one place, so that a TOML file and an inosync `.py` file mean the same thing.

mod backend;
pub mod checks;
mod convert;
mod delete_mode;
pub mod events;
mod exclude_file;
pub mod layout;
pub mod lua;
pub mod places;
mod py_format;
mod rsync_args;
mod toml_format;
mod user_file;

use std::path::{Path, PathBuf};

pub use backend::Backend;
pub use checks::{destination, resolve_rsync, same_place};
pub use convert::convert_file;
pub use delete_mode::DeleteMode;
pub use events::EventSet;

/// The TOML reader, for the property tests.
#[cfg(test)]
pub fn toml_format_parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    toml_format::parse(file, text)
}

/// The `.py` reader, for the property tests.
#[cfg(test)]
pub fn py_format_parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    py_format::parse(file, text)
}

/// Why a config was refused. The message names the file, the line and the key, so
/// that an administrator can fix it without reading our source.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Settings that apply to every watch unless the watch overrides them.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file these settings came from; `None` in quick start.
    pub source: Option<PathBuf>,
    /// The rsync binary to run.
    pub rsync: PathBuf,
    /// Raw arguments appended to every rsync command line.
    pub rsync_args: Vec<String>,
    /// Bandwidth limit in KB/s per rsync process; 0 = unlimited.
    pub speed: u32,
    /// Seconds from the first change of a batch to its sync.
    pub delay: f64,
    /// Cap on concurrent rsync processes across all watches and targets.
    pub max_parallel: u32,
    /// Of those, how many may be large transfers (full syncs, trees compared
    /// whole, batches over `engine::lanes`' size): what the cap protects is the
    /// bandwidth and CPU of long transfers, so small batches to many targets do
    /// not queue behind it (README "Config (TOML)").
    pub max_parallel_large: u32,
    /// The inotify events that make a path pending.
    pub events: EventSet,
    /// Exclude patterns applied to every watch (those of `exclude_from`
    /// included).
    pub excludes: Vec<String>,
    /// A file of more exclude patterns for every watch, read at load.
    pub exclude_from: Option<PathBuf>,
    /// Whether what is gone from the source is deleted on the target.
    pub delete: DeleteMode,
    /// Targets of watches that do not name their own.
    pub targets: Vec<String>,
    /// Log to this file instead of stderr.
    pub log_file: Option<PathBuf>,
    /// Members of this group may use the control socket.
    pub socket_group: Option<String>,
    /// Whether each watch gets a full sync when it starts.
    pub initial_sync: bool,
    /// Seconds between safety-net full syncs; 0 = never.
    pub full_sync_interval: f64,
    /// Seconds between dry-run comparisons of every target with its source
    /// (drift is logged and repaired); 0 = never.
    pub verify_interval: f64,
    /// Seconds without data moving before rsync gives up (`--timeout`); 0 = never.
    pub io_timeout: f64,
    /// Share one ssh connection per host between syncs (ControlMaster).
    pub ssh_reuse: bool,
    /// How changes are seen: fanotify filesystem marks or inotify watches.
    pub backend: Backend,
    /// Whether each rsync runs in a Landlock domain.
    pub sandbox: crate::sandbox::Mode,
    /// Where Prometheus scrapes `/metrics` over HTTP, if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// A Prometheus text file rewritten atomically (node_exporter's textfile
    /// collector), if any.
    pub metrics_file: Option<PathBuf>,
    /// The watched trees.
    pub watches: Vec<WatchConfig>,
}

/// One watched tree and how it maps onto its targets.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// Absolute directory, symlinks resolved once at load time.
    pub path: PathBuf,
    /// Appended to each target to form the rsync destination.
    pub remote_path: String,
    /// Patterns added to the global excludes for this tree (those of its
    /// `exclude_from` included).
    pub excludes: Vec<String>,
    /// A file of more exclude patterns for this tree, read at load.
    pub exclude_from: Option<PathBuf>,
    /// Overrides the global `delete`.
    pub delete: Option<DeleteMode>,
    /// Replaces the default targets when set.
    pub targets: Option<Vec<String>>,
    /// Overrides the global delay.
    pub delay: Option<f64>,
    /// Overrides the global speed.
    pub speed: Option<u32>,
    /// Added to the global `rsync_args` for this tree's runs (compression for a
    /// WAN target only, say: lsyncd's per-`sync{}` rsync options).
    pub rsync_args: Vec<String>,
}

impl WatchConfig {
    /// The targets this watch syncs to: its own, or the defaults.
    pub fn effective_targets<'a>(&'a self, config: &'a Config) -> &'a [String] {
        self.targets.as_deref().unwrap_or(&config.targets)
    }

    /// When this tree's deletions reach its targets: its own `delete`, or the
    /// global one.
    pub fn effective_delete(&self, config: &Config) -> DeleteMode {
        self.delete.unwrap_or(config.delete)
    }

    /// A watch of `path` mirrored to `remote_path` with every other setting
    /// taken from the globals.
    pub fn new(path: PathBuf, remote_path: String) -> WatchConfig {
        WatchConfig {
            path,
            remote_path,
            excludes: Vec::new(),
            exclude_from: None,
            delete: None,
            targets: None,
            delay: None,
            speed: None,
            rsync_args: Vec::new(),
        }
    }
}

/// The defaults are those of the original inosync, so that an old config means the
/// same here.
impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            rsync: PathBuf::from("rsync"),
            rsync_args: Vec::new(),
            speed: 0,
            delay: 10.0,
            // Room for one small transfer per target of a web farm at once;
            // large ones stay at 4 (`max_parallel_large`).
            max_parallel: 32,
            max_parallel_large: 4,
            events: EventSet::default(),
            excludes: Vec::new(),
            exclude_from: None,
            delete: DeleteMode::Always,
            targets: Vec::new(),
            log_file: None,
            socket_group: None,
            initial_sync: true,
            full_sync_interval: 0.0,
            // A day: a change the daemon missed heals within one, at a cost an
            // administrator accepts (docs/RELIABILITY.md, "What a verify costs").
            verify_interval: 86_400.0,
            io_timeout: 600.0,
            ssh_reuse: true,
            backend: Backend::Auto,
            sandbox: crate::sandbox::Mode::Auto,
            metrics_listen: None,
            metrics_file: None,
            watches: Vec::new(),
        }
    }
}

/// The largest config file read: far more than thousands of watches need.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

impl Config {
    /// Reads a config file; `*.py` is the inosync format, anything else TOML.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = user_file::read(path, MAX_CONFIG_BYTES).map_err(|e| {
            let not_found = matches!(&e, user_file::UserFileError::Io(io)
                if io.kind() == std::io::ErrorKind::NotFound);
            let hint = if not_found {
                " (no config needed to try it: `inosyncd SOURCE TARGET` mirrors one tree; \
                 see `inosyncd --help`)"
            } else {
                ""
            };
            ConfigError(format!("{}: cannot read config: {e}{hint}", path.display()))
        })?;
        let text = String::from_utf8(text).map_err(|e| {
            ConfigError(format!(
                "{}: config is not valid UTF-8 (byte {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        let mut config = if path.extension().is_some_and(|ext| ext == "py") {
            py_format::parse(path, &text)?
        } else {
            toml_format::parse(path, &text).map_err(|e| {
                if lua::looks_like_lua(&text) {
                    ConfigError(format!(
                        "{}: this is an lsyncd (Lua) config, not TOML: convert it with \
                         `inosyncd --convert {}` and review the output",
                        path.display(),
                        path.display()
                    ))
                } else {
                    e
                }
            })?
        };
        // Each watch's patterns, the global ones with its own, go to every
        // rsync on its command line.
        for watch in &config.watches {
            let mut patterns = config.excludes.clone();
            patterns.extend(watch.excludes.iter().cloned());
            crate::exclude::check_list(&patterns).map_err(|e| {
                ConfigError(format!(
                    "{}: watch {}: {e}",
                    path.display(),
                    watch.path.display()
                ))
            })?;
        }
        // Absolute, so `status` and `reload` name the same file whatever the
        // working directory.
        config.source = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        Ok(config)
    }

    /// Quick start: one watch from the command line, each target the destination
    /// itself. Relative paths are taken from the current directory.
    pub fn quick_start(source: &Path, targets: &[String]) -> Result<Config, ConfigError> {
        let path = checks::watch_dir(source).map_err(|e| ConfigError(format!("SOURCE: {e}")))?;
        let cwd = std::env::current_dir()
            .map_err(|e| ConfigError(format!("cannot read the current directory: {e}")))?;
        let mut resolved = Vec::new();
        for target in targets {
            let target = checks::resolve_local_target(target, &cwd);
            checks::target(&target).map_err(|e| ConfigError(format!("TARGET {target:?}: {e}")))?;
            resolved.push(target);
        }
        // The targets belong to this watch, not to a default list: an `inosyncctl
        // add` later must name its own (a default would place the new mirror
        // inside this one, where this watch's --delete removes it).
        let config = Config {
            watches: vec![WatchConfig {
                targets: Some(resolved),
                ..WatchConfig::new(path, String::new())
            }],
            ..Config::default()
        };
        config.check_watches(|_| "quick start".to_string())?;
        Ok(config)
    }

    /// Each watch's source and destinations, for the layout checks.
    pub fn places(&self, watch: &WatchConfig) -> layout::WatchPlaces {
        layout::WatchPlaces {
            source: watch.path.clone(),
            destinations: watch
                .effective_targets(self)
                .iter()
                .map(|t| destination(t, &watch.remote_path))
                .collect(),
        }
    }

    /// The checks that look at the whole config rather than one key: every watch has
    /// a target, no watch contains another, no destination overlaps a source or
    /// another destination. `locate(i)` names watch `i` in the file.
    fn check_watches(&self, locate: impl Fn(usize) -> String) -> Result<(), ConfigError> {
        let mut layout = layout::Layout::default();
        for (i, watch) in self.watches.iter().enumerate() {
            if watch.effective_targets(self).is_empty() {
                return Err(ConfigError(format!(
                    "{}: watch {} has no target: set `targets` in the watch or at the top level",
                    locate(i),
                    watch.path.display()
                )));
            }
            let args = [&self.rsync_args[..], &watch.rsync_args[..]].concat();
            if let Some(why) = rsync_args::refused(&args) {
                return Err(ConfigError(format!("{}: {why}", locate(i))));
            }
            // Found by a black-box attack: a global `--rsh` for ssh targets took
            // an `rsync://` target over ssh, to the module of that name on the
            // ssh host, and reported success.
            if let Some(shell) = rsync_args::remote_shell_word(&args)
                && let Some(target) = watch
                    .effective_targets(self)
                    .iter()
                    .find(|t| checks::is_daemon_target(t))
            {
                return Err(ConfigError(format!(
                    "{}: rsync_args has {shell:?} and target {target:?} is an rsync daemon: \
                     rsync would reach it through that remote shell (its daemon-over-remote-shell \
                     mode), not at the URL's host and port; give ssh's options in the daemon's \
                     RSYNC_RSH environment instead (README \"ssh targets\")",
                    locate(i)
                )));
            }
            layout.add(i, &self.places(watch)).map_err(|e| match e {
                layout::LayoutError::Watches { other_index, .. } => {
                    ConfigError(format!("{}: {e} ({})", locate(i), locate(other_index)))
                }
                e => ConfigError(format!("{}: {e}", locate(i))),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;

    /// A config that is a fifo (a reload then hung the whole daemon until
    /// someone wrote into it) or far too large (one symlinked to `/dev/zero`
    /// filled the host's memory): refused at once, saying why. Found by a
    /// black-box attack.
    #[test]
    fn a_config_that_is_no_regular_file_or_too_large_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("inosync.toml");
        user_file::make_fifo(&fifo);
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Config::load(&path).map(|_| ()).map_err(|e| e.to_string()));
        });
        let answer = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading a fifo as the config hung");
        let error = answer.expect_err("a fifo was read as a config");
        assert!(error.contains("not a regular file"), "{error}");
        let big = dir.path().join("big.toml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_CONFIG_BYTES + 1)
            .unwrap();
        let error = Config::load(&big).unwrap_err().to_string();
        assert!(error.contains("at most"), "{error}");
        assert!(error.contains("big.toml"), "{error}");
    }
}
