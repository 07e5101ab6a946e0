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
