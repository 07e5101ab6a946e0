//! Which kernel interface reports changes (`backend`, README "Backends: fanotify and inotify").

use std::fmt;
use std::str::FromStr;

/// The administrator's choice of change-notification backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// fanotify where the watch's filesystem can be marked, inotify otherwise;
    /// decided per watch and logged with the reason.
    #[default]
    Auto,
    /// One inotify watch per directory, as every peer does.
    Inotify,
    /// One fanotify filesystem mark per filesystem; a watch that cannot have
    /// one is refused rather than silently watched another way.
    Fanotify,
}

/// A `backend` word that names none; the text lists the ones that exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {0:?}: use \"auto\", \"inotify\" or \"fanotify\"")]
pub struct UnknownBackend(pub String);

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        match s {
            "auto" => Ok(Backend::Auto),
            "inotify" => Ok(Backend::Inotify),
            "fanotify" => Ok(Backend::Fanotify),
            other => Err(UnknownBackend(other.to_string())),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Auto => "auto",
            Backend::Inotify => "inotify",
            Backend::Fanotify => "fanotify",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_typo_is_named() {
        for name in ["auto", "inotify", "fanotify"] {
            assert_eq!(name.parse::<Backend>().unwrap().to_string(), name);
        }
        let err = "fanotfy".parse::<Backend>().unwrap_err();
        assert!(err.to_string().contains("\"fanotfy\""), "{err}");
    }
}
