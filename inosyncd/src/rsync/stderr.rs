//! What rsync's stderr says, read for the engine: the lines that name the cause
//! of a failure (kept for `last_error`, so "No space left on device" is not lost
//! behind rsync's summary line), the paths its errors name (split out of the
//! batch and retried on their own), and the files it saw vanish.

use std::path::Path;

/// At most this many stderr lines are kept from one run.
const KEPT_LINES: usize = 2000;
/// At most this many cause lines go into `last_error`.
const CAUSE_LINES: usize = 3;

/// The stderr of one run, as far as it was kept.
#[derive(Debug, Default, Clone)]
pub struct Stderr {
    lines: Vec<String>,
    dropped: usize,
}

impl Stderr {
    /// Keeps a line (the first [`KEPT_LINES`] of them).
    pub fn push(&mut self, line: String) {
        if self.lines.len() < KEPT_LINES {
            self.lines.push(line);
        } else {
            self.dropped += 1;
        }
    }

    /// rsync's own error lines (`rsync: ...`, `ERROR: ...`, `ABORTING ...`), not
    /// its closing summary; the summary when there is nothing else.
    pub fn cause(&self) -> String {
        let errors: Vec<&str> = self
            .lines
            .iter()
            .map(String::as_str)
            .filter(|l| is_error_line(l))
            .collect();
        let chosen: Vec<&str> = if errors.is_empty() {
            let skip = self.lines.len().saturating_sub(CAUSE_LINES);
            self.lines[skip..].iter().map(String::as_str).collect()
        } else {
            errors.iter().take(CAUSE_LINES).copied().collect()
        };
        let mut cause = chosen.join(" | ");
        let more = errors.len().saturating_sub(CAUSE_LINES) + self.dropped;
        if more > 0 && !errors.is_empty() {
            cause.push_str(&format!(" (and {more} more)"));
        }
        cause
    }

    /// Whether rsync skipped every deletion of a run because of an I/O error
    /// ("IO error encountered -- skipping file deletion"): a full sync that
    /// did so left the target with what the source no longer has.
    pub fn deletions_skipped(&self) -> bool {
        self.lines
            .iter()
            .any(|l| l.contains("skipping file deletion"))
    }

    /// Whether rsync aborted because the tree changed under its sender (a parent
    /// that became a file while it was being listed): a race, not a misconfig.
    pub fn sender_raced(&self) -> bool {
        self.lines
            .iter()
            .any(|l| l.contains("ABORTING due to invalid path from sender"))
    }

    /// Every line kept, in order.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    /// rsync's own error lines (`rsync: ...`, `ERROR: ...`, `ABORTING ...`,
    /// `cannot delete ...`), in order.
    pub fn error_lines(&self) -> impl Iterator<Item = &str> {
        self.lines().filter(|l| is_error_line(l))
    }

    /// Files (relative to the root) whose received part rsync may have put
    /// in its partial directory though the run went on: one whose check failed
    /// ("failed verification -- update put into partial-dir"; in rsync's first
    /// pass it says so only with `--info=name`), which is a file that changed
    /// while it was sent, and so one it could not read to the end ("read errors
    /// mapping") or that vanished before its second pass. Such a file may never
    /// be sent again, and its partial file would stay.
    pub fn partial_kept(&self, source: &Path, destination: &str) -> Vec<Vec<u8>> {
        let verified = self
            .lines
            .iter()
            .filter_map(|l| failed_verification(l))
            .filter(|(_, kept)| *kept)
            .map(|(name, _)| name);
        let unread = self
            .lines
            .iter()
            .filter(|l| {
                l.contains("read errors mapping \"") || l.starts_with("file has vanished: ")
            })
            .flat_map(|l| quoted(l));
        let mut out: Vec<Vec<u8>> = verified
            .chain(unread)
            .filter_map(|name| relative(&unescape(name), source, destination))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Paths (relative to the source root) rsync reported as vanished.
    pub fn vanished(&self, source: &Path) -> Vec<Vec<u8>> {
        self.lines
            .iter()
            .filter(|l| l.starts_with("file has vanished: "))
            .flat_map(|l| quoted(l))
            .filter_map(|name| relative(&unescape(name), source, ""))
            .collect()
    }

    /// Directories rsync named as too deep to list ("filename overflows"): every
    /// entry below them is longer than a path can be, so rsync can never send
    /// them (relative to the source root).
    pub fn too_deep(&self, source: &Path) -> Vec<Vec<u8>> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(OVERFLOW)?.split_once(": "))
            .filter_map(|(_, name)| relative(&unescape(name.trim_end()), source, ""))
            .collect()
    }
}

/// Paths (relative to the source root) that `lines` name: absolute names below
/// the source or a local destination, and relative names.
pub fn named_in_lines<'a>(
    lines: impl Iterator<Item = &'a str>,
    source: &Path,
    destination: &str,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for line in lines {
        for name in names_in(line) {
            if let Some(rel) = relative(&unescape(name), source, destination) {
                out.push(rel);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a line is one of rsync's own error lines.
pub fn is_error_line(line: &str) -> bool {
    (line.starts_with("rsync: ") && !line.starts_with("rsync: rsync "))
        || line.starts_with("ERROR: ")
        || line.starts_with("ABORTING ")
        || line.starts_with("cannot delete")
        || line.starts_with("could not make way for new ")
        || line.starts_with(OVERFLOW)
}

/// How rsync names a directory whose entries are too deep to list (the path
/// follows the colon).
const OVERFLOW: &str = "filename overflows max-path len by ";

/// The names an error line quotes: `"..."` strings, `unlink(x)`/`rmdir(x)` arguments,
/// and what follows `from sender: `.
pub fn names_in(line: &str) -> Vec<&str> {
    let mut names = quoted(line);
    for call in ["unlink(", "rmdir("] {
        if let Some(at) = line.find(call) {
            let after = &line[at + call.len()..];
            if let Some(end) = after.find(')') {
                names.push(&after[..end]);
            }
        }
    }
    if let Some((_, name)) = line.split_once("from sender: ") {
        names.push(name.trim_end());
    }
    if let Some((_, name)) = line
        .strip_prefix(OVERFLOW)
        .and_then(|rest| rest.split_once(": "))
    {
        names.push(name.trim_end());
    }
    if let Some(name) = line.strip_prefix("cannot delete non-empty directory: ") {
        names.push(name.trim_end());
    }
    // Without --force (`delete = false`) a directory is not replaced by a
    // file: "could not make way for new regular file: NAME".
    if let Some(at) = line.find("could not make way for new ")
        && let Some((_, name)) = line[at..].split_once(": ")
    {
        names.push(name.trim_end());
    }
    if line.starts_with("ERROR: ")
        && let Some((name, _)) = failed_verification(line)
    {
        names.push(name);
    }
    names
}

/// What a line quotes: each name between double quotes (see `closing_quote`).
fn quoted(line: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = closing_quote(after) else {
            break;
        };
        names.push(&after[..end]);
        rest = &after[end + 1..];
    }
    names
}

/// Where a quoted name ends. rsync does not escape a `"` inside a name, so the
/// closing quote is the first one followed by what rsync writes after a name
/// (`": `, `" failed`, `" -> `, `" (`, or the end of the line); the first
/// quote when none is.
fn closing_quote(after: &str) -> Option<usize> {
    const FOLLOWS: &[&str] = &["\": ", "\" failed", "\" -> ", "\" ("];
    let mut first = None;
    for (at, _) in after.match_indices('"') {
        let tail = &after[at..];
        if tail == "\"" || FOLLOWS.iter().any(|f| tail.starts_with(f)) {
            return Some(at);
        }
        first.get_or_insert(at);
    }
    first
}

/// A "NAME failed verification -- update discarded / retained / put into
/// partial-dir" line (an ERROR once rsync gave up on the file, a WARNING when
/// it tries again): the name, and whether what was received is kept in the
/// partial directory.
fn failed_verification(line: &str) -> Option<(&str, bool)> {
    let rest = line
        .strip_prefix("ERROR: ")
        .or_else(|| line.strip_prefix("WARNING: "))?;
    let (name, how) = rest.split_once(" failed verification -- update ")?;
    // A daemon's receiver adds its module: `"NAME" (in MODULE)`.
    let name = match name.rsplit_once(" (in ") {
        Some((quoted, _)) => quoted.trim_matches('"'),
        None => name.trim_matches('"'),
    };
    Some((name, how.starts_with("put into partial-dir")))
}

/// rsync prints unprintable bytes as `\#ooo` (octal).
pub fn unescape(name: &str) -> Vec<u8> {
    unescape_bytes(name.as_bytes())
}

/// [`unescape`] of raw bytes (rsync's stdout need not be UTF-8).
pub fn unescape_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'#')
            && let Some(octal) = bytes.get(i + 2..i + 5)
            && octal.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                octal
                    .iter()
                    .fold(0u8, |n, b| n.wrapping_mul(8) + (b - b'0')),
            );
            i += 5;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// A name relative to the watch root: absolute names under the source root or a
/// local destination are cut to their relative part; relative names are kept;
/// anything else (another absolute path) is not ours.
fn relative(name: &[u8], source: &Path, destination: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    if name.is_empty() {
        return None;
    }
    if !name.starts_with(b"/") {
        return Some(without_dot(name.strip_prefix(b"./").unwrap_or(name)));
    }
    let prefixes = [source.as_os_str().as_bytes(), destination.as_bytes()];
    prefixes
        .iter()
        .filter(|p| p.starts_with(b"/"))
        .find_map(|prefix| {
            let prefix = prefix.strip_suffix(b"/").unwrap_or(prefix);
            name.strip_prefix(prefix)?
                .strip_prefix(b"/")
                .map(without_dot)
        })
}

/// A directory named with a trailing `/.` (rsync's `"/mirror/blog/."` for
/// the root) as itself: the root is `""`, never `.`, which listed again
/// would make rsync send every entry of the root (`--dirs`).
fn without_dot(name: &[u8]) -> Vec<u8> {
    if name == b"." {
        return Vec::new();
    }
    name.strip_suffix(b"/.").unwrap_or(name).to_vec()
}

#[cfg(test)]
mod tests;
