//! rsync-style exclude patterns, matched the way rsync matches them, so that what
//! we skip when watching is exactly what rsync skips when transferring.
//!
//! - a leading `/` anchors the pattern at the watch root;
//! - a trailing `/` makes it match directories only;
//! - a pattern with no other `/` (and no `**`) matches the last path component at
//!   any depth; otherwise it matches the whole path (or, unanchored, any tail of it
//!   that starts at a component boundary);
//! - `*` and `?` do not cross `/`, `**` does, `[...]` is a class, `\` escapes;
//! - a path below an excluded directory is excluded (rsync never descends into it).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

/// Why an exclude list was refused: each config format and the control socket
/// put their own place (file and line, option) before this text, so it names
/// only the pattern and its problem.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExcludeError {
    /// An empty pattern or a bare `/` would exclude nothing or everything.
    #[error("exclude pattern {0:?} matches nothing useful")]
    Useless(String),
    /// rsync reads its exclude list one pattern a line, NUL-free.
    #[error("exclude pattern {0:?} contains a NUL or newline")]
    BadByte(String),
    /// The glob the pattern becomes does not compile.
    #[error("exclude pattern {pattern:?}: {error}")]
    Glob {
        /// The pattern as written.
        pattern: String,
        /// What the glob compiler said.
        error: globset::Error,
    },
    /// The compiled patterns could not be joined into one set.
    #[error("{0}")]
    Set(globset::Error),
    /// rsync reads `+ x` as an include rule, `- x` as an exclude rule and a
    /// lone `!` as "clear the list", also in `--exclude`: the watcher, which
    /// takes patterns only, would skip what rsync sends, or the reverse.
    #[error(
        "exclude pattern {0:?} is an rsync rule, not a pattern (rsync reads `+ ` as include, \
         `- ` as exclude and `!` as clear): inosync takes exclude patterns only; write the \
         pattern without its prefix"
    )]
    Rule(String),
}

/// Checks one pattern without building a set, for config validation.
pub fn check_pattern(pattern: &str) -> Result<(), ExcludeError> {
    if pattern.is_empty() || pattern == "/" {
        return Err(ExcludeError::Useless(pattern.to_string()));
    }
    if pattern.contains('\0') || pattern.contains('\n') {
        return Err(ExcludeError::BadByte(pattern.to_string()));
    }
    if pattern == "!" || pattern.starts_with("+ ") || pattern.starts_with("- ") {
        return Err(ExcludeError::Rule(pattern.to_string()));
    }
    let (glob, _) = translate(pattern);
    build(&glob)
        .map(|_| ())
        .map_err(|error| ExcludeError::Glob {
            pattern: pattern.to_string(),
            error,
        })
}

/// Turns an rsync pattern into a glob over paths relative to the watch root, and
/// whether it is for directories only.
fn translate(pattern: &str) -> (String, bool) {
    let dir_only = pattern.len() > 1 && pattern.ends_with('/');
    let body = if dir_only {
        &pattern[..pattern.len() - 1]
    } else {
        pattern
    };
    // rsync's `dir/***` means the directory and everything in it; our matcher
    // already excludes everything below a matched directory.
    let body = body.strip_suffix("/***").unwrap_or(body);
    let glob = match body.strip_prefix('/') {
        Some(anchored) => anchored.to_string(),
        None => format!("**/{body}"),
    };
    (glob, dir_only)
}

fn build(glob: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(false)
        .build()
}

/// The compiled exclude list of one watch (global patterns plus its own).
#[derive(Debug, Clone)]
pub struct ExcludeSet {
    patterns: Vec<String>,
    /// Patterns that match files and directories.
    any: GlobSet,
    /// Patterns that match directories only (written with a trailing `/`).
    dirs: GlobSet,
}

impl ExcludeSet {
    /// Compiles the patterns; the error names the bad one.
    pub fn new(patterns: &[String]) -> Result<ExcludeSet, ExcludeError> {
        let mut any = GlobSetBuilder::new();
        let mut dirs = GlobSetBuilder::new();
        for pattern in patterns {
            check_pattern(pattern)?;
            let (glob, dir_only) = translate(pattern);
            let compiled = build(&glob).map_err(|error| ExcludeError::Glob {
                pattern: pattern.clone(),
                error,
            })?;
            if dir_only {
                dirs.add(compiled);
            } else {
                any.add(compiled);
            }
        }
        Ok(ExcludeSet {
            patterns: patterns.to_vec(),
            any: any.build().map_err(ExcludeError::Set)?,
            dirs: dirs.build().map_err(ExcludeError::Set)?,
        })
    }

    /// The patterns as written, to pass on to rsync.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a directory renamed from `from` to `to` may have entries
    /// below it excluded at one place and not at the other: a pattern that
    /// names a place (`/d/cache/`, `a/*.log`) and may match below either,
    /// not one that names a name anywhere (`*.log`, `tmp/`), which matches
    /// the same below both.
    pub fn may_differ_below(&self, from: &[u8], to: &[u8]) -> bool {
        self.patterns().iter().any(|pattern| {
            let pattern = pattern.trim_end_matches('/');
            if !pattern.contains('/') && !pattern.contains("**") {
                return false;
            }
            // Not anchored: it may match at any depth.
            let Some(anchored) = pattern.strip_prefix('/') else {
                return true;
            };
            // It matches only paths that start with its literal part.
            let literal = anchored
                .find(['*', '?', '[', '\\'])
                .map_or(anchored, |at| &anchored[..at])
                .as_bytes();
            [from, to].iter().any(|dir| {
                let below = [*dir, b"/"].concat();
                literal.starts_with(&below) || below.starts_with(literal)
            })
        })
    }

    /// Whether `rel` (relative to the watch root, no leading `/`) is excluded, itself
    /// or through an excluded ancestor directory (events of a filesystem-wide
    /// backend arrive from inside excluded directories too).
    pub fn is_excluded(&self, rel: &[u8], is_dir: bool) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        for (i, byte) in rel.iter().enumerate() {
            if *byte == b'/' && i > 0 && self.matches(&rel[..i], true) {
                return true;
            }
        }
        self.matches(rel, is_dir)
    }

    /// Whether some pattern matches directories only (written with a trailing
    /// `/`): then a name's kind decides whether it is excluded.
    pub fn has_dir_only(&self) -> bool {
        !self.dirs.is_empty()
    }

    /// Whether `rel` is excluded as a directory and not as anything else: a
    /// file there is mirrored, a directory is not.
    pub fn hides_dir_only(&self, rel: &[u8]) -> bool {
        self.matches(rel, true) && !self.matches(rel, false)
    }

    /// Whether `rel` itself matches, without looking at its ancestors: enough when
    /// the ancestors are known not to be excluded, as when scanning a tree.
    pub fn matches(&self, rel: &[u8], is_dir: bool) -> bool {
        let candidate = Candidate::new(Path::new(OsStr::from_bytes(rel)));
        self.any.is_match_candidate(&candidate)
            || (is_dir && self.dirs.is_match_candidate(&candidate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> ExcludeSet {
        ExcludeSet::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn anchored_pattern_matches_only_at_root() {
        let s = set(&["/localhost"]);
        assert!(s.is_excluded(b"localhost", true));
        assert!(s.is_excluded(b"localhost/index.html", false));
        assert!(!s.is_excluded(b"a/localhost", true));
        assert!(!s.is_excluded(b"localhost2", false));
    }

    #[test]
    fn basename_pattern_matches_at_any_depth() {
        let s = set(&["*.tmp"]);
        assert!(s.is_excluded(b"x.tmp", false));
        assert!(s.is_excluded(b"a/b/x.tmp", false));
        assert!(!s.is_excluded(b"a/x.tmpl", false));
    }

    #[test]
    fn trailing_slash_matches_directories_only() {
        let s = set(&["/cache/"]);
        assert!(s.is_excluded(b"cache", true));
        assert!(s.is_excluded(b"cache/x", false));
        assert!(!s.is_excluded(b"cache", false));
    }

    #[test]
    fn star_does_not_cross_slash_but_double_star_does() {
        let s = set(&["/a/*/c"]);
        assert!(s.is_excluded(b"a/b/c", false));
        assert!(!s.is_excluded(b"a/b/x/c", false));
        let s = set(&["/a/**/c"]);
        assert!(s.is_excluded(b"a/b/x/c", false));
    }

    #[test]
    fn unanchored_path_pattern_matches_a_tail() {
        let s = set(&["logs/*.log"]);
        assert!(s.is_excluded(b"logs/x.log", false));
        assert!(s.is_excluded(b"srv/logs/x.log", false));
        assert!(!s.is_excluded(b"srvlogs/x.log", false));
    }

    #[test]
    fn non_utf8_names_are_matched() {
        let s = set(&["*.tmp"]);
        assert!(s.is_excluded(b"\xff\xfe.tmp", false));
        assert!(!s.is_excluded(b"\xff\xfe", false));
    }

    #[test]
    fn bad_patterns_are_named() {
        assert!(
            check_pattern("[")
                .unwrap_err()
                .to_string()
                .contains("\"[\"")
        );
        assert!(check_pattern("").is_err());
    }

    #[test]
    fn patterns_that_name_a_place_below_a_renamed_directory_are_told_apart() {
        let differ = |patterns: &[&str], from: &str, to: &str| {
            set(patterns).may_differ_below(from.as_bytes(), to.as_bytes())
        };
        assert!(!differ(&[], "a", "b"));
        assert!(!differ(&["*.log", "tmp/", ".git/"], "a", "b"));
        // Anchored at the root: only below the places they name.
        assert!(!differ(&["/cache/", "/node_modules/"], "a", "b"));
        assert!(differ(&["/d/cache/"], "d", "e"));
        assert!(differ(&["/d/cache/"], "e", "d"));
        assert!(!differ(&["/d/cache/"], "dd", "e"));
        assert!(differ(&["/d/ca*/"], "d", "x"));
        assert!(differ(&["/*/cache/"], "a", "b"));
        // Not anchored, with a slash: anywhere.
        assert!(differ(&["a/*.log"], "x", "y"));
        assert!(differ(&["**/x"], "x", "y"));
    }
}
