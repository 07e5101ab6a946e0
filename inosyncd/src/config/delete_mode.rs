//! `delete = true | false | "startup" | "running"` (README "Config (TOML)"):
//! whether what is gone from the source is deleted on the target, with lsyncd's
//! meanings, so that an archive mirror can keep what the source dropped.

use std::fmt;

/// When files missing from the source are deleted on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteMode {
    /// Always: the target is an exact mirror (the default).
    #[default]
    Always,
    /// Never: not in full syncs, deletion runs, verify repairs or in place of
    /// a rename; a target-only file is kept on purpose, not drift.
    Never,
    /// Only in the initial full sync of a watch, not for later changes.
    Startup,
    /// Only for changes seen while running, not in any full sync.
    Running,
}

impl DeleteMode {
    /// Whether a full sync deletes: always for `true`, and the initial one for
    /// `"startup"`. Other full syncs (requested, periodic, after lost events or
    /// a verify) stand in for no particular change, so they delete only when
    /// the target is meant to be an exact mirror.
    pub fn full_sync_deletes(self, initial: bool) -> bool {
        match self {
            DeleteMode::Always => true,
            DeleteMode::Startup => initial,
            DeleteMode::Never | DeleteMode::Running => false,
        }
    }

    /// Whether a change seen while running (a path deleted or renamed away)
    /// is deleted on the target.
    pub fn changes_delete(self) -> bool {
        matches!(self, DeleteMode::Always | DeleteMode::Running)
    }

    /// The TOML spelling, as `--check` and `--convert` print it.
    pub fn toml(self) -> &'static str {
        match self {
            DeleteMode::Always => "true",
            DeleteMode::Never => "false",
            DeleteMode::Startup => "\"startup\"",
            DeleteMode::Running => "\"running\"",
        }
    }

    /// Reads a string value (`"true"`, `"false"`, `"startup"`, `"running"`).
    pub fn from_word(word: &str) -> Result<DeleteMode, UnknownDeleteMode> {
        match word {
            "true" => Ok(DeleteMode::Always),
            "false" => Ok(DeleteMode::Never),
            "startup" => Ok(DeleteMode::Startup),
            "running" => Ok(DeleteMode::Running),
            other => Err(UnknownDeleteMode(other.to_string())),
        }
    }
}

/// A `delete` word that names no mode; the format puts the file, line and key
/// before it, and the text lists the ones that exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a delete mode: use true, false, \"startup\" or \"running\"")]
pub struct UnknownDeleteMode(pub String);

impl fmt::Display for DeleteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.toml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_delete_where_lsyncd_does() {
        use DeleteMode::*;
        assert!(Always.full_sync_deletes(true) && Always.full_sync_deletes(false));
        assert!(Always.changes_delete());
        assert!(!Never.full_sync_deletes(true) && !Never.changes_delete());
        assert!(Startup.full_sync_deletes(true) && !Startup.full_sync_deletes(false));
        assert!(!Startup.changes_delete());
        assert!(!Running.full_sync_deletes(true) && Running.changes_delete());
    }

    #[test]
    fn words_read_back() {
        for mode in [
            DeleteMode::Always,
            DeleteMode::Never,
            DeleteMode::Startup,
            DeleteMode::Running,
        ] {
            assert_eq!(
                DeleteMode::from_word(mode.toml().trim_matches('"')),
                Ok(mode)
            );
        }
        assert!(DeleteMode::from_word("yes").is_err());
    }
}
