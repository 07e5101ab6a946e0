//! Checks of single values shared by both config formats, returning the problem in
//! words; each format adds the file, line and key.

use std::path::{Path, PathBuf};

/// A watch root must be an existing directory given as an absolute path. Symlinks are
/// resolved once here: the watch follows the directory it pointed to at load time.
pub fn watch_dir(path: &Path) -> Result<PathBuf, String> {
    let resolved = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?
            .join(path)
    };
    let canonical = resolved
        .canonicalize()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !canonical.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    Ok(canonical)
}

/// Like [`watch_dir`] but refuses relative paths: a config file must not mean
/// different trees depending on where the daemon was started.
pub fn absolute_watch_dir(path: &str) -> Result<PathBuf, String> {
    if !Path::new(path).is_absolute() {
        return Err(format!("{path:?} is not an absolute path"));
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
pub fn target(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("target is empty".into());
    }
    if target.starts_with('-') {
        return Err(format!(
            "target {target:?} starts with '-' and would be read as an option"
        ));
    }
    if target.contains('\0') {
        return Err("target contains a NUL byte".into());
    }
    if is_local_target(target) && !target.starts_with('/') {
        return Err(format!("local target {target:?} is not an absolute path"));
    }
    Ok(())
}

/// A watch's mirror is `TARGET + remote_path`: it must lie below its target. A
/// `..` component would climb out of it, lexically (`/../x`, `/a/../../x`) or
/// through whatever the component before it is on the target (a symlink there
/// leads anywhere, and on a remote host the daemon cannot look), so every `..`
/// is refused, wherever a remote path comes in.
pub fn remote_path(value: &str) -> Result<(), String> {
    if value.split('/').any(|component| component == "..") {
        return Err(format!(
            "{value:?} has a \"..\" component: the mirror would lie outside its target \
             (the destination is TARGET + remote_path); name a path below the target"
        ));
    }
    if value.contains('\0') {
        return Err("remote path contains a NUL byte".into());
    }
    Ok(())
}

/// Delays and intervals are seconds; negative or non-finite values are mistakes.
pub fn seconds(value: f64) -> Result<(), String> {
    if (0.0..=1e9).contains(&value) {
        Ok(())
    } else {
        Err(format!("{value} is not a number of seconds >= 0"))
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

/// Resolves the rsync binary (a bare name through PATH), so a missing one is a
/// clear start-up error rather than a failure on the first change.
pub fn resolve_rsync(rsync: &Path) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = if rsync.components().count() > 1 {
        vec![rsync.to_path_buf()]
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(rsync))
            .collect()
    };
    candidates.into_iter().find(|path| path.is_file()).ok_or_else(|| {
        format!(
            "rsync binary {} not found: install rsync (e.g. `apt-get install rsync`) or set `rsync` in the config",
            rsync.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_and_local_targets_are_told_apart() {
        assert!(!is_local_target("host:"));
        assert!(!is_local_target("user@host:/srv/"));
        assert!(!is_local_target("rsync://host/module/"));
        assert!(is_local_target("/backup/a:b"));
        assert!(is_local_target("backup"));
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
