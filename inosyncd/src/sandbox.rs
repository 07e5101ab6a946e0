//! Kernel-enforced mirror boundaries: each rsync runs in a Landlock domain built
//! for its job. It may read (and execute) the system (`/usr`, `/lib*`, `/etc`,
//! ...), its source tree, the rsync binary and the ssh files its `--rsh` names;
//! it may write, create, remove and rename only beneath a local target directory,
//! in the ssh connection-sharing directory and on `/dev/null`. The daemon's path
//! checks are the first line; this one holds even when they have a bug or an
//! rsync option (`--remove-source-files`, `--backup-dir`, `--log-file`) points
//! outside the mirror.
//!
//! The ruleset is built in the daemon (paths opened `O_PATH`); the child only
//! calls `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self` between fork
//! and exec, both async-signal-safe.

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use landlock::{
    ABI, Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
};

/// The access rights handled: those of Landlock ABI 7, the newest tested here
/// (a later one adds rights, such as connecting to Unix sockets, that ssh's
/// shared connections need and that were never tried). Older kernels handle
/// what they know (best effort).
const HANDLED: ABI = ABI::V7;

/// `sandbox` (README, "The sandbox: rsync writes only below its target").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// On where the kernel supports Landlock; the ABI level is logged at start.
    #[default]
    Auto,
    /// Never.
    Off,
    /// Refuse to start without it.
    Required,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "off" => Ok(Mode::Off),
            "required" => Ok(Mode::Required),
            other => Err(format!(
                "unknown sandbox {other:?}: use \"auto\", \"off\" or \"required\""
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Auto => "auto",
            Mode::Off => "off",
            Mode::Required => "required",
        })
    }
}

/// The Landlock ABI the kernel offers, if any (`landlock_create_ruleset` with
/// `LANDLOCK_CREATE_RULESET_VERSION`).
pub fn kernel_abi() -> Option<i64> {
    // SAFETY: the version query takes no attributes and changes nothing.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    (version > 0).then_some(version)
}

/// Whether rsync runs confined, and at which ABI: `Err` when `required` cannot
/// be had (the start is refused with it).
pub fn decide(mode: Mode, kernel: Option<u32>) -> Result<Option<u32>, String> {
    match (mode, kernel) {
        (Mode::Off, _) => Ok(None),
        (Mode::Required, None) => Err(
            "sandbox = \"required\", but this kernel has no Landlock (Linux 5.13+, with \
             landlock among the lsm= boot parameter's modules)"
                .into(),
        ),
        (_, abi) => Ok(abi),
    }
}

/// System directories every rsync and ssh needs to read and run from.
const SYSTEM: &[&str] = &[
    "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/opt", "/proc", "/run", "/dev",
];

/// What one run may touch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Read and execute beneath each.
    pub read: Vec<PathBuf>,
    /// Everything beneath each.
    pub write: Vec<PathBuf>,
}

impl Rules {
    /// The rules of a run of `rsync` from `source` to `destination`, with these
    /// extra rsync arguments (whose `--rsh` may name ssh key files) and the ssh
    /// connection-sharing directory. A local destination is created first: a
    /// rule needs an existing directory.
    pub fn for_run(
        rsync: &Path,
        source: &Path,
        destination: &str,
        extra: &[String],
        rsh: Option<&str>,
        ssh_dir: Option<&Path>,
    ) -> Rules {
        let mut rules = Rules::default();
        rules.read.extend(SYSTEM.iter().map(PathBuf::from));
        rules.read.push(source.to_path_buf());
        rules.read.push(rsync.to_path_buf());
        if let Some(home) = std::env::var_os("HOME") {
            rules.read.push(Path::new(&home).join(".ssh"));
        }
        for command in extra
            .iter()
            .filter_map(|a| a.strip_prefix("--rsh=").or_else(|| a.strip_prefix("-e")))
            .chain(rsh)
        {
            rules.read.extend(ssh_files(command));
        }
        if let Some(dir) = ssh_dir {
            rules.write.push(dir.to_path_buf());
        }
        rules.write.push(PathBuf::from("/dev/null"));
        if destination.starts_with('/') {
            let target = Path::new(destination.trim_end_matches('/'));
            let target = if target.as_os_str().is_empty() {
                PathBuf::from("/")
            } else {
                target.to_path_buf()
            };
            // A target that holds the source (a layout the daemon refuses, unless
            // its check has a bug) gets no write access at all: Landlock grants
            // by union and cannot take the source back out of the target.
            let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            if !real(source).starts_with(real(&target)) {
                rules.write.push(target);
            }
        }
        if let Some(extra) = test_writable() {
            rules.write.push(extra);
        }
        rules
    }
}

/// Key, config and known-hosts files an ssh command line names (`-i`, `-F`,
/// `-o IdentityFile=`, `-o UserKnownHostsFile=`): ssh must read them.
fn ssh_files(command: &str) -> Vec<PathBuf> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut files = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let value = match *word {
            "-i" | "-F" => words.get(i + 1).copied(),
            "-o" => words.get(i + 1).and_then(|o| {
                let (key, value) = o.split_once('=')?;
                ["identityfile", "userknownhostsfile", "certificatefile"]
                    .contains(&key.to_ascii_lowercase().as_str())
                    .then_some(value)
            }),
            _ => None,
        };
        if let Some(value) = value.filter(|v| v.starts_with('/')) {
            files.push(PathBuf::from(value));
        }
    }
    files
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

/// A built domain, shared by the runs of one job.
#[derive(Debug, Clone)]
pub struct Domain(Arc<OwnedFd>);

fn rules_for(
    paths: &[PathBuf],
    access: BitFlags<AccessFs>,
) -> impl Iterator<Item = Result<PathBeneath<PathFd>, landlock::RulesetError>> + '_ {
    // Paths that do not exist (no /lib32 here, no ~/.ssh) are simply not rules.
    paths.iter().filter_map(move |path| {
        PathFd::new(path)
            .ok()
            .map(|fd| Ok(PathBeneath::new(fd, access)))
    })
}

impl Domain {
    /// Builds the ruleset in the daemon; `Err` says why it could not be.
    pub fn build(rules: &Rules) -> Result<Domain, String> {
        let all = AccessFs::from_all(HANDLED);
        let read = AccessFs::from_read(HANDLED);
        let created = Ruleset::default()
            .handle_access(all)
            .and_then(|r| r.create())
            .and_then(|r| r.add_rules(rules_for(&rules.read, read)))
            .and_then(|r| r.add_rules(rules_for(&rules.write, all)))
            .map_err(|e| format!("cannot build the Landlock ruleset: {e}"))?;
        let fd: Option<OwnedFd> = created.into();
        fd.map(|fd| Domain(Arc::new(fd)))
            .ok_or_else(|| "this kernel has no Landlock".to_string())
    }

    /// Restricts the calling process (the forked child, before exec): only
    /// async-signal-safe calls.
    ///
    /// # Safety
    /// Call only in a child between fork and exec.
    unsafe fn restrict_child(fd: i32) -> std::io::Result<()> {
        // SAFETY: plain syscalls on a descriptor the child inherited.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Makes `command`'s child enter this domain between fork and exec (the
    /// hook makes it fork rather than posix_spawn).
    pub fn confine(&self, command: &mut tokio::process::Command) {
        let fd = self.0.as_raw_fd();
        // SAFETY: restrict_child makes only async-signal-safe syscalls.
        unsafe {
            command.pre_exec(move || Domain::restrict_child(fd));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_files_named_on_the_command_line_are_readable() {
        let files = ssh_files(
            "ssh -p 2222 -i /etc/inosync/key -o UserKnownHostsFile=/var/lib/x/known -o BatchMode=yes -F relative",
        );
        assert_eq!(
            files,
            [
                PathBuf::from("/etc/inosync/key"),
                PathBuf::from("/var/lib/x/known")
            ]
        );
    }

    #[test]
    fn only_a_local_target_is_writable() {
        let remote = Rules::for_run(
            Path::new("/usr/bin/rsync"),
            Path::new("/srv/www"),
            "host:/srv/www/",
            &[],
            None,
            None,
        );
        assert_eq!(remote.write, [PathBuf::from("/dev/null")]);
        let local = Rules::for_run(
            Path::new("/usr/bin/rsync"),
            Path::new("/srv/www"),
            "/mnt/mirror/www/",
            &[],
            None,
            Some(Path::new("/run/inosync/ssh")),
        );
        assert!(local.write.contains(&PathBuf::from("/mnt/mirror/www")));
        assert!(local.read.contains(&PathBuf::from("/srv/www")));
        assert!(!local.write.contains(&PathBuf::from("/srv/www")));
    }

    #[test]
    fn required_without_landlock_refuses_auto_goes_on_off_is_off() {
        assert!(
            decide(Mode::Required, None)
                .unwrap_err()
                .contains("required")
        );
        assert_eq!(decide(Mode::Required, Some(7)), Ok(Some(7)));
        assert_eq!(decide(Mode::Auto, None), Ok(None));
        assert_eq!(decide(Mode::Auto, Some(3)), Ok(Some(3)));
        assert_eq!(decide(Mode::Off, Some(7)), Ok(None));
    }

    #[test]
    fn names_round_trip() {
        for name in ["auto", "off", "required"] {
            assert_eq!(name.parse::<Mode>().unwrap().to_string(), name);
        }
        assert!("on".parse::<Mode>().unwrap_err().contains("\"on\""));
    }
}
