//! rsync-style exclude patterns, matched the way rsync matches them, so that what
//! we skip when watching is exactly what rsync skips when transferring.
//!
//! - a leading `/` anchors the pattern at the watch root;
//! - a trailing `/` makes it match directories only;
//! - a pattern with no other `/` (and no `**`) matches the last path component at
//!   any depth; otherwise it matches the whole path (or, unanchored, any tail of it
//!   that starts at a component boundary);
//! - `*` and `?` do not cross `/`, `**` does, `[...]` is a class, `\` escapes
//!   in a pattern with a wildcard (`*`, `?`, `[`), while a pattern without one is
//!   literal, backslashes included; braces are literal;
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
    /// rsync's `**` inside a name (`a**b`, `***` but for a trailing `/***`)
    /// matches across `/`; the matcher the watcher uses takes `**` only as
    /// a whole path component, and would skip what rsync sends.
    #[error(
        "exclude pattern {0:?} has `**` inside a name: inosync takes `**` only as a whole \
         path component (`**/x`, `a/**/b`, `a/**`) or in a trailing `/***`"
    )]
    DoubleStarInName(String),
    /// rsync's receiving side refuses a filter rule of 5,120 bytes or more,
    /// and a pattern longer than any path (4,096 bytes) is a mistake unless
    /// it is made of classes or escapes.
    #[error(
        "exclude pattern {start:?}… is {len} bytes: inosync takes at most {MAX_PATTERN_BYTES} \
         bytes (the longest path; rsync refuses a rule of 5120)"
    )]
    TooLong {
        /// The pattern's first characters.
        start: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Every pattern goes to every rsync on its command line, which the
    /// kernel limits: past that, every run would fail "Argument list too
    /// long".
    #[error(
        "{count} exclude patterns of {bytes} bytes in all: rsync's command line holds at most \
         {budget} bytes of them (a quarter of this system's ARG_MAX); cover several names \
         with one pattern (`*`, `dir/`)"
    )]
    TooMany {
        /// How many patterns one watch has (the global ones and its own).
        count: usize,
        /// What they take on the command line (each with its pointer).
        bytes: usize,
        /// What they may take ([`list_budget`]).
        budget: usize,
    },
}

/// The longest exclude pattern taken: `PATH_MAX`, the longest path.
pub const MAX_PATTERN_BYTES: usize = 4096;
/// The most bytes one watch's exclude patterns may take on rsync's command
/// line (`--exclude=`, a NUL and a pointer each): a quarter of `ARG_MAX`
/// (512 KiB under the default 8 MiB stack limit), beside a quarter for the
/// listed paths and an eighth for the held ones (`rsync::command`).
pub fn list_budget() -> usize {
    crate::rsync::arg_max() / 4
}

/// Checks that a watch's whole exclude list (the global patterns and its
/// own) fits on rsync's command line.
pub fn check_list(patterns: &[String]) -> Result<(), ExcludeError> {
    let bytes: usize = patterns
        .iter()
        .map(|p| "--exclude=".len() + p.len() + 1 + std::mem::size_of::<usize>())
        .sum();
    let budget = list_budget();
    if bytes > budget {
        return Err(ExcludeError::TooMany {
            count: patterns.len(),
            bytes,
            budget,
        });
    }
    Ok(())
}

/// Checks one pattern without building a set, for config validation.
pub fn check_pattern(pattern: &str) -> Result<(), ExcludeError> {
    if pattern.is_empty() || pattern == "/" {
        return Err(ExcludeError::Useless(pattern.to_string()));
    }
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(ExcludeError::TooLong {
            start: pattern.chars().take(40).collect(),
            len: pattern.len(),
        });
    }
    if pattern.contains('\0') || pattern.contains('\n') {
        return Err(ExcludeError::BadByte(pattern.to_string()));
    }
    if pattern == "!" || pattern.starts_with("+ ") || pattern.starts_with("- ") {
        return Err(ExcludeError::Rule(pattern.to_string()));
    }
    if has_double_star_in_a_name(pattern) {
        return Err(ExcludeError::DoubleStarInName(pattern.to_string()));
    }
    let (Some(glob), _) = translate(pattern) else {
        return Ok(());
    };
    build(&glob)
        .map(|_| ())
        .map_err(|error| ExcludeError::Glob {
            pattern: pattern.to_string(),
            error,
        })
}

/// Whether `**` stands anywhere but as a whole path component (or in the
/// trailing `/***`): a name with it matches across `/` in rsync.
fn has_double_star_in_a_name(pattern: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    let pattern = pattern.strip_suffix("/***").unwrap_or(pattern);
    pattern
        .split('/')
        .any(|component| component.contains("**") && component != "**")
}

/// Turns an rsync pattern into a glob over paths relative to the watch root
/// (`None` when rsync's matcher never matches it), and whether it is for
/// directories only.
fn translate(pattern: &str) -> (Option<String>, bool) {
    // `dir/***` is the directory `dir` (only a directory, as `dir/` is) and
    // everything in it; our matcher excludes everything below a matched
    // directory already.
    let (body, dir_only) = match pattern.strip_suffix("/***") {
        Some(dir) if !dir.is_empty() => (dir, true),
        _ if pattern.len() > 1 && pattern.ends_with('/') => (&pattern[..pattern.len() - 1], true),
        _ => (pattern, false),
    };
    // Wildcards are looked for in the whole pattern: `a\b/***` is one with
    // them, whose backslash escapes, as rsync reads it.
    let wild = pattern.contains(['*', '?', '[']);
    let (anchored, body) = match body.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let glob = as_glob(body, wild).map(|body| if anchored { body } else { format!("**/{body}") });
    (glob, dir_only)
}

/// The glob that matches what rsync matches with `body`. rsync reads a
/// pattern without `*`, `?` or `[` as a literal string (a backslash is a
/// character like any other there) and uses its wildcard matcher, where a
/// backslash escapes the next character, also in a `[...]` class, only for
/// the others; braces mean nothing to it, while the glob compiler reads
/// `{a,b}` as alternatives. `None` for a pattern rsync's matcher never
/// matches (a class not closed, an unknown `[:name:]`, a backslash last).
fn as_glob(body: &str, wild: bool) -> Option<String> {
    let chars: Vec<char> = body.chars().collect();
    let mut glob = String::with_capacity(body.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' if wild => {
                push_literal(&mut glob, *chars.get(i)?);
                i += 1;
            }
            '[' if wild => {
                let (members, used) = class(&chars[i..])?;
                glob.push_str(&members?);
                i += used;
            }
            '*' | '?' if wild => glob.push(c),
            _ => push_literal(&mut glob, c),
        }
    }
    Some(glob)
}

/// `c` as a glob that matches only itself.
fn push_literal(glob: &mut String, c: char) {
    if matches!(
        c,
        '\\' | '{' | '}' | ',' | '[' | ']' | '*' | '?' | '!' | '^' | '-'
    ) {
        glob.push('\\');
    }
    glob.push(c);
}

/// The class that starts after a `[` at `rest`, read as rsync's wildcard
/// matcher reads it, and how many characters it took: `!` or `^` negates, a
/// `]` first is a member, `\` escapes, `a-z` is a range, `[:digit:]` and its
/// kin are the ASCII classes (a `[:` not closed by `:]` before the next `]`
/// is a `[`), and no class ever matches `/`. It is written for the glob
/// compiler, which takes no escapes in a class (a `]` goes first, a `-`
/// last); `Some((None, _))` when it can match nothing, `None` when rsync
/// gives up on it (not closed, an unknown `[:name:]`).
fn class(rest: &[char]) -> Option<(Option<String>, usize)> {
    let mut i = 0;
    let negated = matches!(rest.first(), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges: Vec<(char, char)> = Vec::new();
    let mut first = true;
    loop {
        let mut c = *rest.get(i)?;
        i += 1;
        if c == ']' && !first {
            break;
        }
        first = false;
        if c == '[' && rest.get(i) == Some(&':') {
            let close = rest[i + 1..].iter().position(|&c| c == ']')?;
            let name_end = i + 1 + close;
            if close >= 1 && rest[name_end - 1] == ':' {
                let name: String = rest[i + 1..name_end - 1].iter().collect();
                ranges.extend(posix_class(&name)?);
                i = name_end + 1;
                continue;
            }
            ranges.push(('[', '['));
            continue;
        }
        if c == '\\' {
            c = *rest.get(i)?;
            i += 1;
        }
        match (rest.get(i), rest.get(i + 1)) {
            (Some('-'), Some(end)) if *end != ']' => {
                let mut end = *end;
                i += 2;
                if end == '\\' {
                    end = *rest.get(i)?;
                    i += 1;
                }
                ranges.push((c, end));
            }
            _ => ranges.push((c, c)),
        }
    }
    Some((class_glob(ranges, negated), i))
}

/// A class of `ranges` (negated or not) for the glob compiler, never
/// matching `/` (rsync's never do); `None` when nothing can match it.
fn class_glob(ranges: Vec<(char, char)>, negated: bool) -> Option<String> {
    // Characters that mean something in a glob class, and ranges that
    // reach one: listed one by one, each put where it means itself.
    const SPECIAL: [char; 6] = [']', '-', '!', '^', '\\', '['];
    let mut chars: Vec<char> = Vec::new();
    let mut spans: Vec<(char, char)> = Vec::new();
    for (lo, hi) in ranges {
        if lo > hi {
            continue;
        }
        let small = (hi as u32 - lo as u32) < 256;
        let touches = SPECIAL.iter().chain(&['/']).any(|s| (lo..=hi).contains(s));
        if lo == hi || (small && touches) {
            chars.extend((lo..=hi).filter(|c| *c != '/'));
        } else if (lo..=hi).contains(&'/') {
            spans.push((lo, '.'));
            spans.push(('0', hi));
        } else if SPECIAL.contains(&lo) || SPECIAL.contains(&hi) {
            // A huge range from or to a special character: not written.
            return None;
        } else {
            spans.push((lo, hi));
        }
    }
    if negated {
        chars.push('/');
    }
    chars.sort_unstable();
    chars.dedup();
    if chars.is_empty() && spans.is_empty() {
        return None;
    }
    let bracket = chars.contains(&']');
    let dash = chars.contains(&'-');
    let leading: Vec<char> = chars
        .iter()
        .copied()
        .filter(|c| matches!(c, '!' | '^'))
        .collect();
    let plain: Vec<char> = chars
        .iter()
        .copied()
        .filter(|c| !matches!(c, ']' | '-' | '!' | '^'))
        .collect();
    if !negated && !bracket && plain.is_empty() && spans.is_empty() {
        // Only `!`, `^` and `-`: each alone is a literal outside a class.
        let mut alternatives: Vec<String> = Vec::new();
        for c in leading.iter().chain(dash.then_some(&'-')) {
            let mut literal = String::new();
            push_literal(&mut literal, *c);
            alternatives.push(literal);
        }
        return match alternatives.len() {
            1 => alternatives.pop(),
            // `[-!]`: a `-` first is a member, and `!` then is not first.
            _ => Some(format!("[-{}]", leading.iter().collect::<String>())),
        };
    }
    let mut glob = String::from(if negated { "[!" } else { "[" });
    if bracket {
        glob.push(']');
    }
    glob.extend(plain.iter());
    for (lo, hi) in spans {
        glob.push(lo);
        glob.push('-');
        glob.push(hi);
    }
    // Not first now: something came before them.
    glob.extend(leading.iter());
    if dash {
        glob.push('-');
    }
    glob.push(']');
    Some(glob)
}

/// The ranges of a `[:name:]` class in the C locale rsync matches in;
/// `None` for a name rsync does not know either (it gives up on the
/// pattern).
fn posix_class(name: &str) -> Option<Vec<(char, char)>> {
    let ranges: &[(char, char)] = match name {
        "alpha" => &[('a', 'z'), ('A', 'Z')],
        "digit" => &[('0', '9')],
        "alnum" => &[('a', 'z'), ('A', 'Z'), ('0', '9')],
        "upper" => &[('A', 'Z')],
        "lower" => &[('a', 'z')],
        "xdigit" => &[('0', '9'), ('a', 'f'), ('A', 'F')],
        "space" => &[(' ', ' '), ('\t', '\r')],
        "blank" => &[(' ', ' '), ('\t', '\t')],
        "cntrl" => &[('\0', '\u{1f}'), ('\u{7f}', '\u{7f}')],
        "print" => &[(' ', '~')],
        "graph" => &[('!', '~')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        _ => return None,
    };
    Some(ranges.to_vec())
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
        check_list(patterns)?;
        let mut any = GlobSetBuilder::new();
        let mut dirs = GlobSetBuilder::new();
        for pattern in patterns {
            check_pattern(pattern)?;
            // One rsync never matches (it gives up on it) excludes nothing.
            let (Some(glob), dir_only) = translate(pattern) else {
                continue;
            };
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
    fn a_pattern_longer_than_any_path_is_refused() {
        assert!(check_pattern(&"x".repeat(MAX_PATTERN_BYTES)).is_ok());
        let refused = check_pattern(&"é".repeat(MAX_PATTERN_BYTES)).unwrap_err();
        assert!(refused.to_string().contains("8192 bytes"), "{refused}");
    }

    #[test]
    fn a_list_past_rsyncs_command_line_is_refused() {
        // 32 bytes each on the command line.
        let per_pattern = 32;
        let fits: Vec<String> = (0..list_budget() / per_pattern)
            .map(|i| format!("c-{i:05}-*.tmp"))
            .collect();
        assert!(check_list(&fits).is_ok());
        let many: Vec<String> = (0..list_budget() / per_pattern + 1)
            .map(|i| format!("c-{i:05}-*.tmp"))
            .collect();
        let Err(refused) = ExcludeSet::new(&many) else {
            panic!("20,000 patterns taken");
        };
        assert!(
            refused
                .to_string()
                .starts_with(&format!("{} exclude patterns", many.len())),
            "{refused}"
        );
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
        assert!(check_pattern("").unwrap_err().to_string().contains("\"\""));
        assert!(
            check_pattern("+ x")
                .unwrap_err()
                .to_string()
                .contains("\"+ x\"")
        );
        // A range written backwards matches nothing, in rsync as here.
        assert!(check_pattern("*.[z-a]").is_ok());
        assert!(!set(&["*.[z-a]"]).is_excluded(b"x.m", false));
    }

    /// A class that is not closed is one rsync gives up on: it matches
    /// nothing, there as here (it was refused; rsync takes it).
    #[test]
    fn a_class_not_closed_matches_nothing() {
        let s = set(&["[", "x[ab", "*["]);
        assert!(!s.is_excluded(b"[", false));
        assert!(!s.is_excluded(b"x[ab", false));
        assert!(!s.is_excluded(b"xa", false));
    }

    /// rsync reads a pattern without `*`, `?` or `[` as a literal string,
    /// backslashes included, and braces are never special to it (checked
    /// against rsync 3.2.7: `--exclude='a\.x'` skips a file named `a\.x`
    /// and sends `a.x`). The watcher took the backslash for an escape and
    /// dropped the changes of `a.x` and `#hash`, which rsync's full sync
    /// mirrors (a black-box attack).
    #[test]
    fn a_pattern_without_wildcards_is_literal_backslashes_and_braces_included() {
        let s = set(&["a\\.x", "\\#hash", "b{c,d}"]);
        assert!(!s.is_excluded(b"a.x", false));
        assert!(s.is_excluded(b"a\\.x", false));
        assert!(!s.is_excluded(b"#hash", false));
        assert!(s.is_excluded(b"d/\\#hash", false));
        assert!(!s.is_excluded(b"bc", false));
        assert!(!s.is_excluded(b"bd", false));
        assert!(s.is_excluded(b"b{c,d}", false));
    }

    /// With a wildcard a backslash escapes the next character, as rsync's
    /// wildmatch reads it; braces stay literal.
    #[test]
    fn a_pattern_with_wildcards_escapes_by_backslash_and_keeps_braces_literal() {
        let s = set(&["\\*.log", "x\\.l*", "*.{log,tmp}", "[a]{b,c}"]);
        assert!(s.is_excluded(b"*.log", false));
        assert!(!s.is_excluded(b"y.log", false));
        assert!(s.is_excluded(b"x.log", false));
        assert!(!s.is_excluded(b"x\\.log", false));
        assert!(s.is_excluded(b"x.{log,tmp}", false));
        assert!(!s.is_excluded(b"y.tmp", false));
        assert!(s.is_excluded(b"a{b,c}", false));
        assert!(!s.is_excluded(b"ab", false));
        let s = set(&["[\\]]x"]);
        assert!(s.is_excluded(b"]x", false));
        assert!(!s.is_excluded(b"\\x", false));
    }

    /// The matcher against rsync itself: names and patterns generated from
    /// the characters either reads specially (wildcards, classes, escapes,
    /// braces, negation, ranges, `[:digit:]`), each pattern given to a real
    /// `rsync --list-only --exclude`; what rsync leaves out must be what the
    /// matcher excludes. A pattern the matcher refuses is skipped (counted:
    /// refused patterns fail at start or reload with their name, they never
    /// match otherwise than rsync).
    #[test]
    fn agrees_with_rsync_on_generated_names_and_patterns() {
        // Name characters first (the first 17), then pattern pieces.
        const ALPHABET: &[&str] = &[
            "a",
            "b",
            "x",
            ".",
            "1",
            "\\",
            "[",
            "]",
            "*",
            "?",
            "-",
            "!",
            "^",
            "{",
            "}",
            ",",
            ":",
            "[:digit:]",
            "[!a]",
            "[a-b]",
            "**",
            "/",
            "\\!",
            "[\\!-]",
            "[a\\]-c]",
            "[+\\--0]",
            "[[:punct:]]",
            "[[:a]",
            "x[!a]",
            "[/]",
            "/***",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        let name = |next: &mut dyn FnMut(usize) -> usize| loop {
            let len = 1 + next(4);
            let name: String = (0..len).map(|_| ALPHABET[next(17)]).collect();
            if name != "." && name != ".." {
                return name;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        // (path, is a directory): flat names, and directories with a few
        // entries each, for what a class or a `*` must not match (`/`).
        let mut paths = std::collections::BTreeMap::new();
        while paths.len() < 60 {
            paths.insert(name(&mut next), false);
        }
        for _ in 0..10 {
            let parent = name(&mut next);
            if paths.contains_key(&parent) {
                continue;
            }
            paths.insert(parent.clone(), true);
            for _ in 0..3 {
                paths.insert(format!("{parent}/{}", name(&mut next)), false);
            }
        }
        for (path, is_dir) in &paths {
            let at = dir.path().join(path);
            if *is_dir {
                std::fs::create_dir(&at).unwrap();
            } else {
                std::fs::write(&at, "").unwrap();
            }
        }
        let (mut compared, mut refused, mut wrong) = (0, 0, Vec::new());
        for _ in 0..400 {
            let len = 1 + next(5);
            let pattern: String = (0..len).map(|_| ALPHABET[next(ALPHABET.len())]).collect();
            if pattern == "!" || pattern.starts_with('!') || pattern == "/" || pattern == "/***" {
                continue;
            }
            let Ok(matcher) = ExcludeSet::new(std::slice::from_ref(&pattern)) else {
                refused += 1;
                continue;
            };
            let out = std::process::Command::new("rsync")
                .args(["-r", "--list-only"])
                .arg(format!("--exclude={pattern}"))
                .arg(format!("{}/", dir.path().display()))
                .output()
                .expect("rsync, which the daemon needs, runs");
            assert!(out.status.success(), "{pattern:?}: {out:?}");
            let sent: std::collections::BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|line| line.split_whitespace().nth(4).map(str::to_string))
                .collect();
            for (path, is_dir) in &paths {
                let ours = matcher.is_excluded(path.as_bytes(), *is_dir);
                if ours != sent.contains(path) {
                    compared += 1;
                } else {
                    wrong.push(format!("{pattern:?} on {path:?}: rsync sends it: {ours}"));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} disagreements, e.g. {:#?}",
            wrong.len(),
            &wrong[..wrong.len().min(12)]
        );
        assert!(
            compared > 8_000 && refused < 200,
            "{compared} compared, {refused} refused"
        );
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
