//! Paths given on the command line are resolved here, against the client's own
//! working directory, before they reach the daemon (which has another one).

use std::path::Path;

use crate::client::CallError;

/// Absolute, with symlinks resolved when the path exists (the daemon keeps watch
/// roots resolved), as a string for the protocol.
pub fn resolve(path: &Path) -> Result<String, CallError> {
    let absolute = std::path::absolute(path)
        .map_err(|e| CallError::Refused(format!("{}: {e}", path.display())))?;
    let resolved = absolute.canonicalize().unwrap_or(absolute);
    resolved
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| CallError::Refused(format!("{}: path is not valid UTF-8", path.display())))
}

/// Like [`resolve`], and the path must be an existing directory.
pub fn existing_dir(path: &Path) -> Result<String, CallError> {
    let resolved = resolve(path)?;
    match std::fs::metadata(&resolved) {
        Ok(meta) if meta.is_dir() => Ok(resolved),
        Ok(_) => Err(CallError::Refused(format!(
            "{}: not a directory",
            path.display()
        ))),
        Err(e) => Err(CallError::Refused(format!("{}: {e}", path.display()))),
    }
}

/// A target as rsync reads it: a relative local one (no `host:` before its
/// first `/`, no `scheme://`) is made absolute here, as the quick start does;
/// remote ones go as they are.
pub fn target(target: &str) -> Result<String, CallError> {
    let remote = target.contains("://")
        || target
            .split_once(':')
            .is_some_and(|(host, _)| !host.contains('/'));
    if remote || target.starts_with('/') || target.starts_with('-') || target.is_empty() {
        return Ok(target.to_string());
    }
    let absolute =
        std::path::absolute(target).map_err(|e| CallError::Refused(format!("{target}: {e}")))?;
    let mut text = absolute
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| CallError::Refused(format!("{target}: path is not valid UTF-8")))?;
    // rsync reads `dir/` and `dir` alike for a destination; the slash kept.
    if target.ends_with('/') && !text.ends_with('/') {
        text.push('/');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_local_targets_become_absolute_and_remote_ones_stay() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            target("mirror/").unwrap(),
            format!("{}/mirror/", here.display())
        );
        for remote in ["host:dir", "user@h:/srv/", "rsync://h/m/", "/abs/dir"] {
            assert_eq!(target(remote).unwrap(), remote);
        }
    }
}
