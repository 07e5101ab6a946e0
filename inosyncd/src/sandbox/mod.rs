//! Kernel-enforced mirror boundaries: each child (rsync, the ssh of the renames)
//! runs in a Landlock domain built for it (`rules.rs`). It may read (and execute)
//! the system (`/usr`, `/lib*`, `/etc`, ...), its source tree, the rsync binary
//! and the ssh files its `--rsh` names (`ssh_files.rs`); it may write, create,
//! remove and rename only beneath a local target directory that lies outside
//! every watched tree, in the ssh connection-sharing directory and on
//! `/dev/null`. The daemon's path checks are the first line; this one holds even
//! when they have a bug, a target's symlink is re-pointed, or an rsync option
//! (`--remove-source-files`, `--backup-dir`, `--log-file`) points outside the
//! mirror (those that are the transfer itself are refused before the run:
//! `rsync_writes.rs`).
//!
//! The ruleset is built in the daemon (read paths opened `O_PATH`, write paths
//! opened without following any symlink); a thread made for one child calls
//! `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self`, starts the child
//! (which inherits its domain) and ends: the daemon's other threads are never
//! restricted, and no fork copies the daemon.

mod rsync_writes;
mod rules;
mod source_view;
mod ssh_files;

pub use rsync_writes::outside as writes_outside;
pub use rules::{Rules, RunPaths};
pub use source_view::{ViewError, available as source_view_available, place as source_view_place};

/// The files a remote shell command names (keys, configs), for the source
/// view's choice of place.
pub fn remote_shell_files(command: &str) -> Vec<std::path::PathBuf> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    ssh_files::ssh_files(command, home.as_deref())
}

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
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

/// The `sandbox` setting (README "The sandbox").
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

/// Why there is no sandbox (or no `sandbox` setting): the config formats, the
/// start-up error and the log print these texts as they are.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A `sandbox` word that names no mode.
    #[error("unknown sandbox {0:?}: use \"auto\", \"off\" or \"required\"")]
    UnknownMode(String),
    /// `sandbox = "required"` on a kernel without Landlock: the daemon refuses
    /// to start rather than run unconfined.
    #[error(
        "sandbox = \"required\", but this kernel has no Landlock (Linux 5.13+, with \
         landlock among the lsm= boot parameter's modules)"
    )]
    Required,
    /// The kernel refused the ruleset or one of its rules.
    #[error("cannot build the Landlock ruleset: {0}")]
    Ruleset(landlock::RulesetError),
    /// The ruleset was created but the kernel enforces none of it.
    #[error("this kernel has no Landlock")]
    NoLandlock,
}

impl FromStr for Mode {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Mode, SandboxError> {
        match s {
            "auto" => Ok(Mode::Auto),
            "off" => Ok(Mode::Off),
            "required" => Ok(Mode::Required),
            other => Err(SandboxError::UnknownMode(other.to_string())),
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
pub fn decide(mode: Mode, kernel: Option<u32>) -> Result<Option<u32>, SandboxError> {
    match (mode, kernel) {
        (Mode::Off, _) => Ok(None),
        (Mode::Required, None) => Err(SandboxError::Required),
        (_, abi) => Ok(abi),
    }
}

/// A built domain, shared by the runs of one job.
#[derive(Debug, Clone)]
pub struct Domain(Arc<OwnedFd>);

fn read_rules(
    paths: &[std::path::PathBuf],
    access: BitFlags<AccessFs>,
) -> impl Iterator<Item = Result<PathBeneath<PathFd>, landlock::RulesetError>> + '_ {
    // Paths that do not exist (no /lib32 here, no ~/.ssh) are simply not rules.
    paths.iter().filter_map(move |path| {
        PathFd::new(path)
            .ok()
            .map(|fd| Ok(PathBeneath::new(fd, access)))
    })
}

fn write_rules(
    paths: &[std::path::PathBuf],
    access: BitFlags<AccessFs>,
) -> impl Iterator<Item = Result<PathBeneath<OwnedFd>, landlock::RulesetError>> + '_ {
    // A path that is not where it was resolved to (a symlink put on its way
    // since) is not a rule: nothing is granted through a link.
    paths.iter().filter_map(move |path| {
        open_no_symlinks(path)
            .ok()
            .map(|fd| Ok(PathBeneath::new(fd, access)))
    })
}

/// Opens `path` (`O_PATH`) without following a symlink in any component.
fn open_no_symlinks(path: &Path) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("NUL in path"))?;
    // SAFETY: open_how is plain data; zeroed is its empty value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 reads the NUL-terminated path and the open_how we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl Domain {
    /// Builds the ruleset in the daemon; `Err` says why it could not be.
    pub fn build(rules: &Rules) -> Result<Domain, SandboxError> {
        let all = AccessFs::from_all(HANDLED);
        let read = AccessFs::from_read(HANDLED);
        let created = Ruleset::default()
            .handle_access(all)
            .and_then(|r| r.create())
            .and_then(|r| r.add_rules(read_rules(&rules.read, read)))
            .and_then(|r| r.add_rules(write_rules(&rules.write, all)))
            .map_err(SandboxError::Ruleset)?;
        let fd: Option<OwnedFd> = created.into();
        fd.map(|fd| Domain(Arc::new(fd)))
            .ok_or(SandboxError::NoLandlock)
    }

    /// Restricts the calling thread: it, and every process it starts from
    /// now on, may do only what the ruleset grants. A thread's Landlock domain
    /// and its no-new-privileges flag are its own; the daemon's other threads
    /// keep their access.
    fn restrict_this_thread(&self) -> std::io::Result<()> {
        // SAFETY: plain syscalls on a descriptor this domain owns.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, self.0.as_raw_fd(), 0u32) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Starts `command` in `domain` and, when `source` is given, in a mount
/// namespace where that source's symlinks are not followed
/// (`source_view.rs`): from a thread made for it, which enters both and then
/// starts the child (which inherits them) and ends. The child is started by
/// `posix_spawn` (the thread's memory is shared until exec, nothing is
/// copied): a fork of the daemon with a hook that restricts the child between
/// fork and exec cost sixteen targets' rsyncs about 10 ms (README
/// "Performance"). With neither, the calling thread starts it.
pub fn spawn(
    domain: Option<&Domain>,
    source: Option<&Path>,
    command: &mut tokio::process::Command,
) -> Result<tokio::process::Child, SpawnError> {
    if domain.is_none() && source.is_none() {
        return command.spawn().map_err(SpawnError::Start);
    }
    // The child is registered with the runtime's reaper (a runtime thread
    // calls this: `launch.rs` runs on the blocking pool).
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| SpawnError::Start(std::io::Error::other(e)))?;
    std::thread::scope(|scope| {
        let started = std::thread::Builder::new()
            .name("inosyncd-confined-spawn".into())
            .spawn_scoped(scope, || {
                let _runtime = runtime.enter();
                if let Some(source) = source {
                    source_view::enter(source).map_err(|e| match e {
                        ViewError::Source(..) => SpawnError::SourceView(e),
                        ViewError::Mount(_) => SpawnError::View(e),
                    })?;
                }
                if let Some(domain) = domain {
                    domain.restrict_this_thread().map_err(SpawnError::Start)?;
                }
                command.spawn().map_err(SpawnError::Start)
            })
            .map_err(SpawnError::Start)?;
        started.join().unwrap_or_else(|_| {
            Err(SpawnError::Start(std::io::Error::other(
                "the thread starting it panicked",
            )))
        })
    })
}

/// Why [`spawn`] started nothing.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The source could not be shown without its symlinks (it was removed,
    /// renamed or replaced by a symlink a moment ago): a race with the
    /// source's writers, retried soon.
    #[error("{0}")]
    SourceView(ViewError),
    /// The kernel refused the view for this source although it allowed one
    /// at start: it needs an administrator.
    #[error("{0}")]
    View(ViewError),
    /// The child (or the thread starting it) could not be started.
    #[error("{0}")]
    Start(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_without_landlock_refuses_auto_goes_on_off_is_off() {
        assert!(
            decide(Mode::Required, None)
                .unwrap_err()
                .to_string()
                .contains("required")
        );
        assert_eq!(decide(Mode::Required, Some(7)).ok(), Some(Some(7)));
        assert_eq!(decide(Mode::Auto, None).ok(), Some(None));
        assert_eq!(decide(Mode::Auto, Some(3)).ok(), Some(Some(3)));
        assert_eq!(decide(Mode::Off, Some(7)).ok(), Some(None));
    }

    #[test]
    fn names_round_trip() {
        for name in ["auto", "off", "required"] {
            assert_eq!(name.parse::<Mode>().unwrap().to_string(), name);
        }
        assert!(
            "on".parse::<Mode>()
                .unwrap_err()
                .to_string()
                .contains("\"on\"")
        );
    }
}
