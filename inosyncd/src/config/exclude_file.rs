//! `exclude_from = "FILE"` (README "Config (TOML)"): exclude patterns kept in a
//! file of their own, one a line as rsync's `--exclude-from` reads them, so a
//! list shared with other tools (or an lsyncd `excludeFrom`) needs no copying.
//! Read at start, `--check` and every reload.

use std::path::Path;

use super::user_file::UserFileError;

/// The largest exclude file read (a million short patterns).
pub const MAX_BYTES: u64 = 16 << 20;

use crate::exclude::ExcludeError;

/// Why an exclude file was refused; the TOML format puts the key's file and
/// line before this text, which names the exclude file (and its bad line).
#[derive(Debug, thiserror::Error)]
pub enum ExcludeFileError {
    /// The file would depend on the daemon's directory.
    #[error("{0:?} is not an absolute path")]
    NotAbsolute(String),
    /// It could not be read.
    #[error("cannot read {file}: {error}")]
    Unreadable {
        /// The file as named in the config.
        file: String,
        /// Why.
        error: std::io::Error,
    },
    /// rsync reads patterns as text; so do we.
    #[error("{file} is not valid UTF-8 (byte {valid_up_to})")]
    NotUtf8 {
        /// The file as named in the config.
        file: String,
        /// Where the first bad byte is.
        valid_up_to: usize,
    },
    /// Not a regular file (a fifo, `/dev/zero`): reading it could block or
    /// never end, and the daemon reads it on every reload.
    #[error("{file} is not a regular file")]
    NotAFile {
        /// The file as named in the config.
        file: String,
    },
    /// Larger than any exclude list: refused rather than read into memory.
    #[error("{file} is {size} bytes; an exclude file may have at most {MAX_BYTES}")]
    TooLarge {
        /// The file as named in the config.
        file: String,
        /// Its size.
        size: u64,
    },
    /// A line's pattern is refused as `excludes` would refuse it.
    #[error("{file}:{line}: {error}")]
    BadPattern {
        /// The file as named in the config.
        file: String,
        /// The line, from 1.
        line: usize,
        /// Why the pattern is refused.
        error: ExcludeError,
    },
}

/// The patterns of an exclude file: every line but blank ones and comments
/// (`#` or `;` first, as rsync has it). Patterns are checked as `excludes` are.
/// The error names the file (and the line of a bad pattern).
pub fn read(file: &str) -> Result<Vec<String>, ExcludeFileError> {
    if !Path::new(file).is_absolute() {
        return Err(ExcludeFileError::NotAbsolute(file.to_string()));
    }
    let bytes = super::user_file::read(Path::new(file), MAX_BYTES).map_err(|e| match e {
        UserFileError::Io(error) => ExcludeFileError::Unreadable {
            file: file.to_string(),
            error,
        },
        UserFileError::NotAFile => ExcludeFileError::NotAFile {
            file: file.to_string(),
        },
        UserFileError::TooLarge { size, .. } => ExcludeFileError::TooLarge {
            file: file.to_string(),
            size,
        },
    })?;
    let text = String::from_utf8(bytes).map_err(|e| ExcludeFileError::NotUtf8 {
        file: file.to_string(),
        valid_up_to: e.utf8_error().valid_up_to(),
    })?;
    parse(file, &text)
}

/// [`read`] on text already in memory.
fn parse(file: &str, text: &str) -> Result<Vec<String>, ExcludeFileError> {
    let mut patterns = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        crate::exclude::check_pattern(line).map_err(|error| ExcludeFileError::BadPattern {
            file: file.to_string(),
            line: i + 1,
            error,
        })?;
        patterns.push(line.to_string());
    }
    Ok(patterns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "# cache\n*.tmp\n\n; old style\n/cache/\r\n   \nname with space\n";
        assert_eq!(
            parse("x", text).unwrap(),
            ["*.tmp", "/cache/", "name with space"]
        );
    }

    #[test]
    fn rsync_rules_are_refused_naming_the_line() {
        for line in ["+ important.log", "- *.log", "!"] {
            let err = parse("x", &format!("*.tmp\n{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("x:2:") && err.contains("rsync rule"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_fifo_or_a_device_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        super::super::user_file::make_fifo(&fifo);
        for file in [fifo.to_str().unwrap(), "/dev/zero"] {
            let err = read(file).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let err = read("/nonexistent/inosync-excludes")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/inosync-excludes"), "{err}");
        assert!(
            read("relative.txt")
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
    }
}
