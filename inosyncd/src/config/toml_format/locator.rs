//! Where in the config file a key is: `file:line: key` before every error,
//! so an administrator goes straight to the line.

use std::path::Path;

use toml::Spanned;

use crate::config::ConfigError;

/// Turns byte offsets into `file:line: key` prefixes.
pub(super) struct Locator<'a> {
    file: &'a Path,
    /// Where each line after the first starts: a line number is a binary
    /// search, not a count from the top (a config with 10,000 watches names
    /// each one's line).
    line_starts: Vec<usize>,
}

impl Locator<'_> {
    pub(super) fn new<'a>(file: &'a Path, text: &str) -> Locator<'a> {
        Locator {
            file,
            line_starts: text.match_indices('\n').map(|(i, _)| i + 1).collect(),
        }
    }

    pub(super) fn at<T>(&self, spanned: &Spanned<T>, key: &str) -> String {
        let line = self
            .line_starts
            .partition_point(|start| *start <= spanned.span().start)
            + 1;
        format!("{}:{line}: {key}", self.file.display())
    }

    pub(super) fn error<T>(
        &self,
        spanned: &Spanned<T>,
        key: &str,
        problem: impl std::fmt::Display,
    ) -> ConfigError {
        ConfigError(format!("{}: {problem}", self.at(spanned, key)))
    }
}
