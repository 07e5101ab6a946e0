//! The command line (README "Command line").

use std::path::PathBuf;

use clap::Parser;

/// Keep directory trees mirrored to rsync targets in near real time.
///
/// Without SOURCE, watches come from the config file. With SOURCE and TARGET, one
/// tree is mirrored to each TARGET (rsync syntax: host:, user@host:/dir,
/// rsync://host/module/, or a local directory) with no config file needed.
#[derive(Debug, Parser)]
#[command(name = "inosyncd", version, about, long_about)]
pub struct Cli {
    /// Config file: TOML, or an inosync `.py` config. Default
    /// /etc/inosync/inosync.toml when no SOURCE is given.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Fork to the background once start-up has succeeded.
    #[arg(short, long)]
    pub daemon: bool,

    /// With --daemon: write the daemon's pid here.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Never call rsync; log each command line that would run.
    #[arg(short, long)]
    pub pretend: bool,

    /// Debug logging; -vv for trace.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Control socket. Default /run/inosync/inosyncd.sock as root,
    /// $XDG_RUNTIME_DIR/inosync/inosyncd.sock otherwise.
    #[arg(short, long, value_name = "PATH", env = "INOSYNC_SOCKET")]
    pub socket: Option<PathBuf>,

    /// Where runtime changes are kept (used by the runtime-control commands).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Validate the config, print the effective settings, exit 0 (valid) or 1.
    #[arg(long)]
    pub check: bool,

    /// Write the manual pages below DIR (DIR/man8/inosyncd.8,
    /// DIR/man5/inosync.toml.5; e.g. /usr/local/share/man) and exit.
    #[arg(long, value_name = "DIR")]
    pub man_pages: Option<PathBuf>,

    /// Print an inosync (FILE.py) or lsyncd (FILE.lua) config as the
    /// equivalent TOML and exit; watch paths missing here are warnings.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "source", "check"])]
    pub convert: Option<PathBuf>,

    /// Seconds from the first change to its sync; overrides the config's `delay`
    /// (handy in quick start, where there is no config).
    #[arg(long, value_name = "SECONDS")]
    pub delay: Option<f64>,

    /// How changes are seen: auto, inotify or fanotify; overrides the config's
    /// `backend` (handy in quick start, where there is no config).
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<crate::config::Backend>,

    /// Quick start: the directory to watch.
    #[arg(value_name = "SOURCE", requires = "targets")]
    pub source: Option<PathBuf>,

    /// Quick start: where SOURCE is mirrored to (each is the destination itself).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
}
