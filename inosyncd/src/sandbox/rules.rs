//! What one child may touch: read (and execute) the system, its source tree,
//! the rsync binary, `~/.ssh` and the files its remote shell names; write only
//! below a local target that lies outside every watched tree, in the ssh
//! connection-sharing directory and on `/dev/null`.

use std::path::{Path, PathBuf};

use super::ssh_files::ssh_files;

/// System directories every rsync and ssh needs to read and run from.
pub(super) const SYSTEM: &[&str] = &[
    "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/opt", "/proc", "/run", "/dev",
];

/// What a child runs against, as the rules need it.
#[derive(Debug, Clone, Copy)]
pub struct RunPaths<'a> {
    /// The rsync binary.
    pub rsync: &'a Path,
    /// The watch root it reads.
    pub source: &'a Path,
    /// The local target, resolved and made; `None` for a remote one.
    pub target: Option<&'a Path>,
    /// The remote shell command rsync or the renames run (its files are read).
    pub remote_shell: &'a str,
    /// Where ssh keeps its shared connections.
    pub ssh_dir: Option<&'a Path>,
    /// Every watched tree (canonical): nothing below, above or at one, nor at
    /// the source, is ever writable.
    pub protected: &'a [PathBuf],
}

/// What one child may touch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Read and execute beneath each.
    pub read: Vec<PathBuf>,
    /// Everything beneath each: real paths (symlinks resolved), opened without
    /// following any, so a link re-pointed after these were made grants
    /// nothing.
    pub write: Vec<PathBuf>,
    /// The local target overlaps a watched tree and got no write access: every
    /// write below it is refused.
    pub target_withheld: bool,
}

impl Rules {
    /// The rules of one child. A target that is a watched tree, lies inside one
    /// or holds one (a layout the daemon refuses, should its checks ever miss
    /// one, or a link re-pointed since) gets no write access at all: Landlock
    /// grants by union and cannot take a tree back out of a writable one.
    pub fn for_run(run: &RunPaths) -> Rules {
        let mut rules = Rules::default();
        rules.read.extend(SYSTEM.iter().map(PathBuf::from));
        rules.read.push(run.source.to_path_buf());
        rules.read.push(run.rsync.to_path_buf());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if let Some(home) = &home {
            rules.read.push(home.join(".ssh"));
        }
        rules
            .read
            .extend(ssh_files(run.remote_shell, home.as_deref()));
        let real = |p: &Path| std::fs::canonicalize(p).ok();
        rules.write.extend(run.ssh_dir.and_then(real));
        rules.write.push(PathBuf::from("/dev/null"));
        if let Some(target) = run.target.and_then(real) {
            // Watched trees are canonical from the moment they are added: compared
            // by component, with no look-up per tree.
            let protected = run
                .protected
                .iter()
                .map(PathBuf::as_path)
                .chain(std::iter::once(run.source))
                .any(|tree| tree.starts_with(&target) || target.starts_with(tree));
            if protected {
                rules.target_withheld = true;
            } else {
                rules.write.push(target);
            }
        }
        rules
            .write
            .extend(test_writable().as_deref().and_then(real));
        rules
    }
}

/// Debug builds only: one more writable path (the test suite's rsync wrappers
/// log their command lines beside the trees they sync).
fn test_writable() -> Option<PathBuf> {
    if cfg!(debug_assertions) {
        std::env::var_os("INOSYNC_TEST_SANDBOX_WRITABLE").map(PathBuf::from)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<'a>(target: Option<&'a Path>, protected: &'a [PathBuf]) -> RunPaths<'a> {
        RunPaths {
            rsync: Path::new("/usr/bin/rsync"),
            source: Path::new("/nonexistent/srv/www"),
            target,
            remote_shell: "ssh -p 2222 -i/etc/inosync/key -oUserKnownHostsFile=/var/lib/x/known",
            ssh_dir: None,
            protected,
        }
    }

    #[test]
    fn only_a_local_target_is_writable_and_ssh_files_are_readable() {
        let remote = Rules::for_run(&run(None, &[]));
        assert_eq!(remote.write, [PathBuf::from("/dev/null")]);
        assert!(!remote.target_withheld);
        assert!(remote.read.contains(&PathBuf::from("/etc/inosync/key")));
        assert!(remote.read.contains(&PathBuf::from("/var/lib/x/known")));
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().canonicalize().unwrap().join("mirror");
        std::fs::create_dir(&mirror).unwrap();
        let local = Rules::for_run(&run(Some(&mirror), &[]));
        assert!(!local.target_withheld);
        assert!(local.write.contains(&mirror));
        assert!(local.read.contains(&PathBuf::from("/nonexistent/srv/www")));
    }

    #[test]
    fn a_target_inside_holding_or_at_a_watched_tree_gets_no_write() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let tree = root.join("tree");
        std::fs::create_dir_all(tree.join("inner")).unwrap();
        let link = root.join("link");
        std::os::unix::fs::symlink(tree.join("inner"), &link).unwrap();
        let protected = [tree.clone()];
        for target in [tree.join("inner"), link, root.clone(), tree] {
            let rules = Rules::for_run(&run(Some(&target), &protected));
            assert!(rules.target_withheld, "{}", target.display());
            assert_eq!(rules.write, [PathBuf::from("/dev/null")]);
        }
    }
}
