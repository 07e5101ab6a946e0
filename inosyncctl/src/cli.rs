//! The command line of `inosyncctl`: its options and subcommands, parsed by
//! clap, which also generates `--help`, the manual page and the completions
//! from these definitions.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Control a running inosyncd: add and remove watches, change the bandwidth limit
/// and the event delay, trigger syncs, pause, and see what it is doing.
#[derive(Debug, Parser)]
#[command(name = "inosyncctl", version, about)]
pub struct Cli {
    /// Control socket of the daemon (default as for inosyncd).
    #[arg(
        short,
        long,
        value_name = "PATH",
        env = "INOSYNC_SOCKET",
        global = true
    )]
    pub socket: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Write the manual page below DIR (DIR/man8/inosyncctl.8; e.g.
    /// /usr/local/share/man) and exit, as `inosyncd --man-pages DIR` does for
    /// its own pages.
    #[arg(long, value_name = "DIR")]
    pub man_pages: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Daemon, watches, targets: state, pending changes, last sync, errors.
    Status {
        /// Show only the watch of this directory, every field, errors whole.
        path: Option<PathBuf>,
        /// Every column, nothing cut, however wide.
        #[arg(long)]
        wide: bool,
    },
    /// Prometheus metrics (text format): syncs, failures, bytes, replication lag.
    Metrics,
    /// Start watching a directory; it gets a full sync first.
    Add {
        /// The directory (relative paths are taken from the current directory).
        path: PathBuf,
        /// Appended to each target (default: nothing with --target, each target is
        /// the destination itself; PATH with the config's default targets).
        #[arg(long, value_name = "P")]
        remote_path: Option<String>,
        /// A destination in rsync syntax (the mirror of PATH itself, unless
        /// --remote-path is given); repeat for more (default: the config's targets).
        #[arg(long = "target", value_name = "T")]
        targets: Vec<String>,
        /// An rsync-style exclude pattern; repeat for more.
        #[arg(long = "exclude", value_name = "PAT")]
        excludes: Vec<String>,
        /// Event delay for this watch, in seconds.
        #[arg(long, value_name = "S", value_parser = seconds)]
        delay: Option<f64>,
        /// Bandwidth limit for this watch, in KB/s (0 = unlimited).
        #[arg(long, value_name = "KBPS")]
        speed: Option<u32>,
    },
    /// Stop watching a directory; its pending changes are synced first.
    Remove {
        /// The watched directory.
        path: PathBuf,
        /// Drop pending changes instead of syncing them.
        #[arg(long)]
        discard: bool,
        /// Give up waiting for the pending changes after this many seconds (the
        /// watch is still removed once they are synced).
        #[arg(long, value_name = "SECONDS", default_value_t = 600.0, value_parser = seconds)]
        timeout: f64,
    },
    /// Show or set the bandwidth limit in KB/s (0 = unlimited); a running transfer
    /// is restarted with the new limit.
    Speed {
        /// The new limit; without it, the current one is shown.
        #[arg(conflicts_with = "reset")]
        kbps: Option<u32>,
        /// Drop the runtime limit: the config's applies again.
        #[arg(long)]
        reset: bool,
        /// Only this watch.
        #[arg(long, value_name = "PATH")]
        watch: Option<PathBuf>,
    },
    /// Show or set the event delay in seconds; pending batches are re-timed.
    Delay {
        /// The new delay; without it, the current one is shown.
        #[arg(allow_negative_numbers = true, value_parser = seconds, conflicts_with = "reset")]
        seconds: Option<f64>,
        /// Drop the runtime delay: the config's applies again.
        #[arg(long)]
        reset: bool,
        /// Only this watch.
        #[arg(long, value_name = "PATH")]
        watch: Option<PathBuf>,
    },
    /// Full sync now, of all watches or of one.
    Sync {
        /// Only this watch.
        path: Option<PathBuf>,
        /// Return only when the sync is done (exit 1 on timeout).
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600.0, value_parser = seconds)]
        timeout: f64,
        /// Accept the source as it is now, even when it is empty while its
        /// targets are not, or on another filesystem than recorded: the mirror is
        /// made equal to it, deletions included. Needs PATH.
        #[arg(long, requires = "path")]
        force: bool,
    },
    /// Return when nothing is pending or running (exit 0), or on timeout (exit 1,
    /// naming each busy watch and target and why).
    Wait {
        /// Only this watch.
        path: Option<PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600.0, value_parser = seconds)]
        timeout: f64,
        /// Show the running transfers meanwhile: a bar on a terminal, lines otherwise.
        #[arg(long)]
        progress: bool,
    },
    /// Hold syncs (of all watches, or one) while still recording changes.
    Pause {
        /// Only this watch.
        path: Option<PathBuf>,
    },
    /// Let held syncs go.
    Resume {
        /// Only this watch.
        path: Option<PathBuf>,
    },
    /// Re-read the config file (as SIGHUP does).
    Reload,
    /// Compare each target with its source by a dry run; list the paths that
    /// differ (exit 4 when some do).
    Verify {
        /// Only this watch.
        path: Option<PathBuf>,
        /// Queue the differing paths for a sync.
        #[arg(long)]
        repair: bool,
        /// Compare contents, not size and mtime (reads every file on both sides).
        #[arg(long)]
        checksum: bool,
        /// Answer within this many seconds. The pairs share them (what a quick
        /// one leaves goes to the next); one that does not answer within its
        /// share is reported as not compared, the others with their results.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600.0, value_parser = seconds)]
        timeout: f64,
    },
    /// Print a shell completion script, e.g. `inosyncctl completions bash >
    /// /etc/bash_completion.d/inosyncctl`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// Whether the command changes what the daemon keeps in its state file
    /// (after which a state file it cannot write is worth a warning).
    pub fn changes_runtime_state(&self) -> bool {
        match self {
            Command::Add { .. }
            | Command::Remove { .. }
            | Command::Pause { .. }
            | Command::Resume { .. }
            | Command::Reload => true,
            Command::Speed { kbps, reset, .. } => kbps.is_some() || *reset,
            Command::Delay { seconds, reset, .. } => seconds.is_some() || *reset,
            _ => false,
        }
    }
}

/// Seconds on the command line: a usage error (exit 2, before the daemon is
/// asked) unless a number from 0 to the daemon's bound
/// ([`inosync_proto::MAX_SECONDS`]). `-0` is 0.
fn seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if (0.0..=inosync_proto::MAX_SECONDS).contains(&value) => Ok(value + 0.0),
        Ok(_) => Err(format!(
            "must be a number of seconds from 0 to {:e}",
            inosync_proto::MAX_SECONDS
        )),
        Err(_) => Err("not a number of seconds".into()),
    }
}
