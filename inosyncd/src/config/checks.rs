//! Checks of single values shared by both config formats, returning the problem in
//! words; each format adds the file, line and key.

use std::path::{Path, PathBuf};

/// Why a single value was refused, in words; each format (and the control
/// socket) puts its own place before it, so the text names no file or key.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A relative watch root is taken from the current directory, which could
    /// not be read.
    #[error("cannot read the current directory: {0}")]
    CurrentDir(std::io::Error),
    /// The watch root could not be resolved (missing, unreadable).
    #[error("{}: {error}", path.display())]
    Unresolved {
        /// The path as given.
        path: PathBuf,
        /// Why it could not be resolved.
        error: std::io::Error,
    },
    /// The watch root is a file or something else that is not a directory.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A config file's watch root must not depend on the daemon's directory.
    #[error("{0:?} is not an absolute path")]
    NotAbsolute(String),
    /// rsync would get no destination.
    #[error("target is empty")]
    EmptyTarget,
    /// rsync would read the target as an option.
    #[error("target {0:?} starts with '-' and would be read as an option")]
    OptionTarget(String),
    /// A NUL cannot be passed in an argument.
    #[error("target contains a NUL byte")]
    NulInTarget,
    /// A relative local target would depend on the daemon's directory.
    #[error("local target {0:?} is not an absolute path")]
    RelativeTarget(String),
    /// The mirror would lie outside its target.
    #[error(
        "{0:?} has a \"..\" component: the mirror would lie outside its target \
         (the destination is TARGET + remote_path); name a path below the target"
    )]
    ClimbingRemotePath(String),
    /// A NUL cannot be passed in an argument.
    #[error("remote path contains a NUL byte")]
    NulInRemotePath,
    /// Negative, too large or not a number.
    #[error(
        "{} is not a number of seconds from 0 to {:e}",
        shown_seconds(*.0),
        inosync_proto::MAX_SECONDS
    )]
    Seconds(f64),
    /// Neither the path given nor any directory of PATH has the rsync binary.
    #[error(
        "rsync binary {} not found: install rsync (e.g. `apt-get install rsync`) or set `rsync` in the config",
        .0.display()
    )]
    NoRsync(PathBuf),
}

/// A watch root must be an existing directory given as an absolute path. Symlinks are
/// resolved once here: the watch follows the directory it pointed to at load time.
pub fn watch_dir(path: &Path) -> Result<PathBuf, CheckError> {
    let resolved = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(CheckError::CurrentDir)?
            .join(path)
    };
    let canonical = resolved
        .canonicalize()
        .map_err(|error| CheckError::Unresolved {
            path: path.to_path_buf(),
            error,
        })?;
    if !canonical.is_dir() {
        return Err(CheckError::NotADirectory(path.to_path_buf()));
    }
    Ok(canonical)
}

/// Like [`watch_dir`] but refuses relative paths: a config file must not mean
/// different trees depending on where the daemon was started.
pub fn absolute_watch_dir(path: &str) -> Result<PathBuf, CheckError> {
    if !Path::new(path).is_absolute() {
        return Err(CheckError::NotAbsolute(path.to_string()));
    }
    watch_dir(Path::new(path))
}

/// True when rsync would read `target` as a local path rather than `host:` or
/// `rsync://`: a colon before the first slash makes it remote.
pub fn is_local_target(target: &str) -> bool {
    if target.starts_with("rsync://") {
        return false;
    }
    match (target.find(':'), target.find('/')) {
        (Some(colon), Some(slash)) => slash < colon,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// True when rsync reaches `target` through an rsync daemon's own protocol
/// (`rsync://host/module/`, any case, or `host::module`): as rsync reads it,
/// the first colon of a remote target doubled, a bracketed IPv6 host read
/// whole (`[2001:db8::1]::module`).
pub fn is_daemon_target(target: &str) -> bool {
    if strip_rsync_url(target).is_some() {
        return true;
    }
    !is_local_target(target)
        && first_host_colon(target).is_some_and(|colon| target[colon + 1..].starts_with(':'))
}

/// What follows `rsync://` (any case, as rsync reads it).
pub(super) fn strip_rsync_url(target: &str) -> Option<&str> {
    target
        .get(..8)
        .filter(|prefix| prefix.eq_ignore_ascii_case("rsync://"))
        .map(|_| &target[8..])
}

/// The colon that ends the host of `host:path` or `host::module`, skipping a
/// bracketed IPv6 host at the start or after `user@`.
pub fn first_host_colon(target: &str) -> Option<usize> {
    let bytes = target.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' if i == 0 || bytes[i - 1] == b'@' => i += target[i..].find(']')?,
            b':' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Quick start takes local targets relative to the current directory, as rsync would.
pub fn resolve_local_target(target: &str, cwd: &Path) -> String {
    if is_local_target(target) && !target.starts_with('/') {
        let mut joined = cwd.join(target).to_string_lossy().into_owned();
        if target.ends_with('/') && !joined.ends_with('/') {
            joined.push('/');
        }
        joined
    } else {
        target.to_string()
    }
}

/// A target is passed to rsync as one argument; refuse what rsync would misread.
pub fn target(target: &str) -> Result<(), CheckError> {
    if target.is_empty() {
        return Err(CheckError::EmptyTarget);
    }
    if target.starts_with('-') {
        return Err(CheckError::OptionTarget(target.to_string()));
    }
    if target.contains('\0') {
        return Err(CheckError::NulInTarget);
    }
    if is_local_target(target) && !target.starts_with('/') {
        return Err(CheckError::RelativeTarget(target.to_string()));
    }
    Ok(())
}

/// A watch's mirror is `TARGET + remote_path`: it must lie below its target. A
/// `..` component would climb out of it, lexically (`/../x`, `/a/../../x`) or
/// through whatever the component before it is on the target (a symlink there
/// leads anywhere, and on a remote host the daemon cannot look), so every `..`
/// is refused, wherever a remote path comes in.
pub fn remote_path(value: &str) -> Result<(), CheckError> {
    if value.split('/').any(|component| component == "..") {
        return Err(CheckError::ClimbingRemotePath(value.to_string()));
    }
    if value.contains('\0') {
        return Err(CheckError::NulInRemotePath);
    }
    Ok(())
}

/// Delays and intervals are seconds; negative or non-finite values are mistakes.
pub fn seconds(value: f64) -> Result<(), CheckError> {
    if (0.0..=inosync_proto::MAX_SECONDS).contains(&value) {
        Ok(())
    } else {
        Err(CheckError::Seconds(value))
    }
}

/// The rsync destination of a watch on a target: `TARGET + remote_path`, as in
/// inosync (`user@host:` + `/var/www/`), without doubling the slash between them.
pub fn destination(target: &str, remote_path: &str) -> String {
    if target.ends_with('/') && remote_path.starts_with('/') {
        format!("{target}{}", &remote_path[1..])
    } else {
        format!("{target}{remote_path}")
    }
}

/// Whether two spellings of a target or destination name one directory for
/// certain: a local one as the kernel resolves it now (`/m/t/`, `/m//t`,
/// `/m/./t` and a symlink to it are one), a remote one by user, host and
/// path with empty and `.` components dropped (`rsync://h/m/` and
/// `rsync://h/m`, `h:dir/` and `h:dir`). `h:` (the home directory) and `h:/`
/// (the root) are not alike, nor are a remote `..` and what it might lead
/// to. A reload keeps a target spelled otherwise, with its pending changes.
pub fn same_place(a: &str, b: &str) -> bool {
    a == b || super::places::same_directory(a, b)
}

/// Resolves the rsync binary (a bare name through PATH), so a missing one is a
/// clear start-up error rather than a failure on the first change.
pub fn resolve_rsync(rsync: &Path) -> Result<PathBuf, CheckError> {
    let candidates: Vec<PathBuf> = if rsync.components().count() > 1 {
        vec![rsync.to_path_buf()]
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(rsync))
            .collect()
    };
    candidates
        .into_iter()
        .find(|path| path.is_file())
        .ok_or_else(|| CheckError::NoRsync(rsync.to_path_buf()))
}

/// A number of seconds as an error shows it: a huge one in exponent form, not
/// three hundred digits.
fn shown_seconds(value: f64) -> String {
    if value.is_finite() && value.abs() < 1e9 {
        value.to_string()
    } else {
        format!("{value:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_spelled_with_or_without_trailing_slashes_is_one_place() {
        assert!(same_place("/m/t/", "/m/t"));
        assert!(same_place("/m/t//", "/m/t"));
        assert!(same_place("rsync://h/m/", "rsync://h/m"));
        assert!(same_place("h:dir/", "h:dir"));
        assert!(!same_place("h:/", "h:"));
        assert!(!same_place("/", "/m"));
        assert!(!same_place("/m/t", "/m/u"));
    }

    #[test]
    fn a_place_spelled_with_empty_or_dot_components_is_one_place() {
        assert!(same_place("/m//t", "/m/./t/"));
        assert!(same_place("rsync://H/m//./x", "rsync://h:873/m/x/"));
        assert!(same_place("h::m/x", "h::m//x/"));
        assert!(same_place("u@h:/srv//www/.", "u@h:/srv/www"));
        assert!(same_place("h:dir/./x", "h:dir/x"));
        // Another user, a remote `..`, home against root: not known alike.
        assert!(!same_place("u@h:/srv", "v@h:/srv"));
        assert!(!same_place("u@h:/srv", "h:/srv"));
        assert!(!same_place("h:/srv/a/../b", "h:/srv/b"));
        assert!(!same_place("h:srv", "h:/srv"));
        // A root directory named `~`; a module that `--port` may send elsewhere.
        assert!(!same_place("h:x", "h:/~/x"));
        assert!(!same_place("h::m/x", "rsync://h/m/x"));
        assert!(!same_place("/m/t", "h:/m/t"));
    }

    #[test]
    fn a_local_place_is_compared_as_the_kernel_resolves_it() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let spelled = |rest: &str| format!("{}/{rest}", dir.path().display());
        assert!(same_place(&spelled("link/"), &spelled("real")));
        assert!(same_place(&spelled("x/../real"), &spelled("real")));
        assert!(!same_place(&spelled("link/x"), &spelled("real")));
    }

    #[test]
    fn remote_and_local_targets_are_told_apart() {
        assert!(!is_local_target("host:"));
        assert!(!is_local_target("user@host:/srv/"));
        assert!(!is_local_target("rsync://host/module/"));
        assert!(is_local_target("/backup/a:b"));
        assert!(is_local_target("backup"));
        assert!(is_daemon_target("rsync://host/module/"));
        assert!(is_daemon_target("user@host::module/dir"));
        assert!(!is_daemon_target("host:dir::x"));
        assert!(!is_daemon_target("/backup/a::b"));
        assert!(!is_daemon_target("host:/srv/"));
        assert!(is_daemon_target("[2001:db8::1]::backup/"));
        assert!(is_daemon_target("user@[2001:db8::1]::m"));
        assert!(is_daemon_target("RSYNC://host/module/"));
        assert!(!is_daemon_target("[::1]:/srv/"));
        assert!(!is_daemon_target("user@[::1]:backup"));
    }

    #[test]
    fn bad_targets_are_refused() {
        assert!(target("-e sh").is_err());
        assert!(target("").is_err());
        assert!(target("relative/dir").is_err());
        assert!(target("/abs/dir").is_ok());
        assert!(target("user@host:").is_ok());
    }

    #[test]
    fn remote_paths_that_climb_out_of_the_target_are_refused() {
        for climbing in ["/../x", "../x", "/a/../../x", "..", "a/..", "/a/../b"] {
            assert!(remote_path(climbing).is_err(), "{climbing}");
        }
        for fine in ["", "/", "/var/www/", "www", "a..b/", "/.../x", "./x"] {
            assert!(remote_path(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn destination_joins_like_inosync() {
        assert_eq!(destination("user1@a:", "/var/www/"), "user1@a:/var/www/");
        assert_eq!(destination("/backup/", "/var/www/"), "/backup/var/www/");
        assert_eq!(destination("/backup", "/var/www/"), "/backup/var/www/");
        assert_eq!(destination("/backup/", ""), "/backup/");
    }
}
