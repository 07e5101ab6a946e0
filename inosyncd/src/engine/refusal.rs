//! Why the engine refused a control request (or a reload, or a runtime watch it
//! could not restore). The engine keeps the cause typed; the text becomes a
//! string only where it leaves the daemon: the control socket's `Refused`
//! (`control.rs`), the log and `status`. Administrators and the end-to-end
//! tests read these texts (README "Operating at runtime"), so each
//! is worded exactly as it always was.

use std::path::PathBuf;

use super::source::SourceError;
use crate::config::ConfigError;
use crate::config::checks::CheckError;
use crate::config::layout::LayoutError;
use crate::exclude::ExcludeError;

/// A refused request, in the words the administrator reads.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// As many verifies run as may at once (each runs an rsync per target).
    #[error(
        "{0} verifies are running already (each compares every target with an rsync); \
         try again when one has ended"
    )]
    VerifyBusy(usize),
    /// The path names no watch (after resolving symlinks).
    #[error("{0} is not watched")]
    NotWatched(String),
    /// Nothing can be synced or waited for: the watch's root is missing.
    #[error("{path}: source missing: {why}")]
    SourceMissing {
        /// The watch root.
        path: String,
        /// Why it is missing.
        why: String,
    },
    /// A target holds back an empty source (README "How a sync works").
    #[error(
        "{path}: source missing for {destination}: the source is empty while the target is not"
    )]
    EmptySource {
        /// The watch root.
        path: String,
        /// The destination that holds it back.
        destination: String,
    },
    /// `add` refused, with the path as the administrator gave it.
    #[error("cannot add {path}: {problem}")]
    CannotAdd {
        /// The path asked for.
        path: String,
        /// Why.
        problem: Box<Refusal>,
    },
    /// `add` of a watch whose removal waits for its last changes.
    #[error(
        "{0} is still being removed: its last changes are not synced yet (`inosyncctl \
         status` shows it as removing); add it again once it is gone, or drop them with \
         `inosyncctl remove --discard {0}` first"
    )]
    StillRemoving(String),
    /// `add` without `--target` where there are no default targets.
    #[error(
        "cannot add {path}: no --target given and {}: say where it goes, \
         `inosyncctl add {path} --target DEST` (DEST is the mirror itself)",
        no_defaults(*.quick_start)
    )]
    NoTarget {
        /// The path asked for.
        path: String,
        /// Started without a config file.
        quick_start: bool,
    },
    /// A bad `--target`.
    #[error("--target: {0}")]
    Target(CheckError),
    /// A bad `--exclude`.
    #[error("--exclude: {0}")]
    Exclude(ExcludeError),
    /// A bad `--delay`.
    #[error("--delay: {0}")]
    Delay(CheckError),
    /// A bad `--remote-path`.
    #[error("--remote-path: {0}")]
    RemotePath(CheckError),
    /// A value the config checks refuse (the watch root, a delay, the rsync
    /// binary of a reloaded config).
    #[error("{0}")]
    Check(CheckError),
    /// The global and the watch's own excludes do not compile together.
    #[error("{0}")]
    Excludes(ExcludeError),
    /// The watch or its destinations overlap a watched tree or a destination.
    #[error("{0}")]
    Layout(LayoutError),
    /// The root is not the tree to mirror.
    #[error("{0}")]
    Source(SourceError),
    /// The watcher could not watch the tree.
    #[error("cannot watch {}: {error}", path.display())]
    CannotWatch {
        /// The watch root.
        path: PathBuf,
        /// What the watcher said.
        error: std::io::Error,
    },
    /// The watch went away between finding it and changing it.
    #[error("watch vanished")]
    Vanished,
    /// `sync --force` mirrors one watch's empty source, never all of them.
    #[error("sync --force needs the PATH of one watch")]
    ForceNeedsPath,
    /// `reload` in a quick start.
    #[error("started without a config file (quick start): nothing to reload")]
    NoConfigFile,
    /// The config file read by `reload` is refused; the old one stays.
    #[error("{0}")]
    Config(ConfigError),
}

/// Why `add` found no default targets.
fn no_defaults(quick_start: bool) -> &'static str {
    if quick_start {
        "a quick start has no default targets"
    } else {
        "the config has no default targets"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words administrators (and scripts) read, pinned whole.
    #[test]
    fn refusals_read_as_they_always_did() {
        let cases = [
            (
                Refusal::NoTarget {
                    path: "/srv/a".into(),
                    quick_start: true,
                },
                "cannot add /srv/a: no --target given and a quick start has no default \
                 targets: say where it goes, `inosyncctl add /srv/a --target DEST` (DEST is \
                 the mirror itself)",
            ),
            (
                Refusal::NoTarget {
                    path: "/srv/a".into(),
                    quick_start: false,
                },
                "cannot add /srv/a: no --target given and the config has no default \
                 targets: say where it goes, `inosyncctl add /srv/a --target DEST` (DEST is \
                 the mirror itself)",
            ),
            (
                Refusal::CannotAdd {
                    path: "/srv/a".into(),
                    problem: Box::new(Refusal::Target(CheckError::OptionTarget("-x".into()))),
                },
                "cannot add /srv/a: --target: target \"-x\" starts with '-' and would be read \
                 as an option",
            ),
            (
                Refusal::NotWatched("/srv/b".into()),
                "/srv/b is not watched",
            ),
            (
                Refusal::SourceMissing {
                    path: "/srv/a".into(),
                    why: "gone".into(),
                },
                "/srv/a: source missing: gone",
            ),
            (
                Refusal::EmptySource {
                    path: "/srv/a".into(),
                    destination: "/m/a".into(),
                },
                "/srv/a: source missing for /m/a: the source is empty while the target is not",
            ),
            (
                Refusal::ForceNeedsPath,
                "sync --force needs the PATH of one watch",
            ),
            (
                Refusal::NoConfigFile,
                "started without a config file (quick start): nothing to reload",
            ),
            (
                Refusal::VerifyBusy(4),
                "4 verifies are running already (each compares every target with an rsync); \
                 try again when one has ended",
            ),
            (
                Refusal::Delay(CheckError::Seconds(-1.0)),
                "--delay: -1 is not a number of seconds from 0 to 1e9",
            ),
        ];
        for (refusal, text) in cases {
            assert_eq!(refusal.to_string(), text);
        }
    }
}
