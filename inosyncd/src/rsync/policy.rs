//! What every child of the daemon is started under, decided once at start:
//! `--pretend`, the Landlock ABI, `sandbox = "required"`, the ssh directory,
//! the owner mark, and the watched trees no child may write into. Kept apart
//! from the starting itself (`launch.rs`) because every job carries it
//! (`job.rs`), and the starting reads the job.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::sandbox::Mode;

/// How children are started for the whole daemon's life.
#[derive(Debug, Default)]
pub struct Policy {
    /// `--pretend`: log what would run, run nothing.
    pub(super) pretend: bool,
    /// The Landlock ABI children are confined with, when they are.
    pub(super) sandbox_abi: Option<u32>,
    /// `sandbox = "required"`: a child that cannot be confined is not started.
    pub(super) required: bool,
    /// Children that read the source see it in a mount namespace where its
    /// symlinks are not followed (`sandbox::source_view`): the sandbox is on
    /// and the daemon may make mount namespaces (root).
    pub(super) source_view: bool,
    /// Where ssh keeps its shared connections (writable in the sandbox).
    pub(super) ssh_dir: Option<PathBuf>,
    /// The daemon's control socket, marked on every child (`left_running`).
    pub(super) owner: Option<OsString>,
    /// Where each local target resolved when it was first written to (see
    /// [`Policy::moved_target`]), until a reload.
    targets: Mutex<HashMap<String, PathBuf>>,
}

impl Policy {
    /// Decides the policy from the `sandbox` setting and what the kernel offers;
    /// `Err` when `required` cannot be had (the start is refused with it).
    pub fn decide(mode: Mode, pretend: bool, ssh_dir: Option<PathBuf>) -> anyhow::Result<Policy> {
        let abi = crate::sandbox::kernel_abi().map(|v| v as u32);
        let sandbox_abi = crate::sandbox::decide(mode, abi).map_err(anyhow::Error::msg)?;
        match (sandbox_abi, mode) {
            _ if pretend => {}
            (Some(abi), _) => tracing::info!(
                "every rsync runs in a Landlock sandbox (ABI {abi}): it writes only below its \
                 local target"
            ),
            (None, Mode::Off) => {
                tracing::info!("sandbox = \"off\": rsync runs with the daemon's full access")
            }
            (None, _) => tracing::warn!(
                "this kernel has no Landlock: rsync runs unconfined (sandbox = \"auto\")"
            ),
        }
        let source_view = mode != Mode::Off && !pretend && source_view_logged();
        Ok(Policy {
            pretend,
            sandbox_abi,
            required: mode == Mode::Required,
            source_view,
            ssh_dir,
            owner: None,
            targets: Mutex::default(),
        })
    }

    /// Where the local target `destination` resolved when it was first
    /// written to, when it resolves to `resolved` now, somewhere else (the
    /// mirror's directory, or one above it, replaced by a symlink: rsync would
    /// write, and delete, wherever it leads); remembers it otherwise. A reload
    /// takes the new places ([`Policy::retarget`]): an administrator who moved a
    /// mirror on purpose says so. Found by a black-box attack.
    pub(super) fn moved_target(&self, destination: &str, resolved: &Path) -> Option<PathBuf> {
        let mut known = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        match known.get(destination) {
            Some(first) if first != resolved => Some(first.clone()),
            Some(_) => None,
            None => {
                known.insert(destination.to_string(), resolved.to_path_buf());
                None
            }
        }
    }

    /// Takes `resolved` as the place the local target `destination` leads to
    /// (a reload, `add` or `remove`: the place it leads to now is the one
    /// meant); whether it led elsewhere before (the new place then holds
    /// none of the mirror, or an old one, and needs a full sync).
    pub fn retarget(&self, destination: &str, resolved: &Path) -> bool {
        let mut known = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        match known.get_mut(destination) {
            Some(first) if first != resolved => {
                *first = resolved.to_path_buf();
                true
            }
            _ => false,
        }
    }

    /// A reload names the local target `old` otherwise (`new`, the same
    /// directory): where it was first written to is kept under the new name.
    pub fn respell(&self, old: &str, new: &str) {
        let mut known = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(first) = known.remove(old) {
            known.insert(new.to_string(), first);
        }
    }

    /// Marks every child with `owner`, the daemon's control socket, so that a
    /// restart can stop what a killed daemon left running.
    pub fn owned_by(mut self, owner: Option<OsString>) -> Policy {
        self.owner = owner;
        self
    }

    /// The Landlock ABI children are confined with, if they are.
    pub fn sandbox_abi(&self) -> Option<u32> {
        self.sandbox_abi
    }

    /// Whether nothing is ever run (`--pretend`).
    pub fn pretend(&self) -> bool {
        self.pretend
    }
}

/// What a job's children are started with: the daemon's policy and the
/// watched trees no child may write into.
#[derive(Debug, Clone, Default)]
pub struct Launcher {
    pub(super) policy: Arc<Policy>,
    pub(super) roots: Arc<[PathBuf]>,
}

impl Launcher {
    /// A launcher under `policy` that keeps every child out of `roots`.
    pub fn new(policy: Arc<Policy>, roots: Arc<[PathBuf]>) -> Launcher {
        Launcher { policy, roots }
    }

    /// Whether nothing is ever run (`--pretend`): local renames ask too.
    pub fn pretend(&self) -> bool {
        self.policy.pretend
    }
}

/// Whether this daemon can show its children the source with its symlinks
/// not followed (`sandbox::source_view`), said in the start-up log either way.
fn source_view_logged() -> bool {
    match crate::sandbox::source_view_available() {
        Ok(()) => {
            tracing::info!(
                "rsync reads each source in a mount namespace of its own where the \
                 source's symlinks are not followed"
            );
            true
        }
        Err(e) => {
            tracing::info!(
                "rsync reads the sources as this daemon sees them ({e}): a directory of a \
                 source swapped for a symlink at the moment rsync opens it can be read \
                 through (README \"Safety\"; a daemon run as root is protected)"
            );
            false
        }
    }
}
