//! The control socket's life: created private (or group-shared), a stale file from a
//! crashed daemon replaced, a live daemon never displaced, removed on exit; and the
//! peer check that decides who may steer the daemon.

use std::ffi::CString;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio::net::UnixListener;
use tokio::net::unix::UCred;

use crate::own_files::{Lock, ensure_dir, parent_dir};

/// How long a start waits for another daemon's lock on the socket to go (see
/// `ControlSocket::bind`): one killed a moment ago releases it as it ends.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Who may connect: the daemon's uid, root, and members of `socket_group`.
#[derive(Debug, Clone)]
pub struct Access {
    own_uid: u32,
    group: Option<(String, u32)>,
}

impl Access {
    /// Resolves `socket_group` to its gid; an unknown group is a start-up error.
    pub fn new(socket_group: Option<&str>) -> anyhow::Result<Access> {
        // SAFETY: getuid cannot fail and touches no memory.
        let own_uid = unsafe { libc::getuid() };
        let group = match socket_group {
            None => None,
            Some(name) => Some((name.to_string(), group_id(name)?)),
        };
        Ok(Access { own_uid, group })
    }

    /// Whether the peer may choose what is read and where it is written (`add`,
    /// `remove`, `reload`, forced syncs): root or the daemon's own user only.
    pub fn privileged(&self, cred: &UCred) -> bool {
        cred.uid() == 0 || cred.uid() == self.own_uid
    }

    /// The daemon's uid, for refusals that name who may do what.
    pub fn own_uid(&self) -> u32 {
        self.own_uid
    }

    /// Whether the peer may use the socket.
    pub fn allows(&self, cred: &UCred) -> bool {
        if self.privileged(cred) {
            return true;
        }
        let Some((_, gid)) = &self.group else {
            return false;
        };
        cred.gid() == *gid
            || cred
                .pid()
                .is_some_and(|pid| supplementary_groups(pid).contains(gid))
    }
}

fn group_id(name: &str) -> anyhow::Result<u32> {
    let cname = CString::new(name).context("socket_group contains a NUL byte")?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers point to live, correctly sized buffers owned here.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut group,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        bail!("socket_group {name:?}: no such group");
    }
    Ok(group.gr_gid)
}

/// The peer's supplementary groups, read from `/proc/PID/status`.
fn supplementary_groups(pid: i32) -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A bound control socket, removed from the file system when dropped. The lock
/// beside it (`<socket>.lock`) is held as long as the daemon runs, so a second
/// daemon on the same path is refused before it does anything else.
pub struct ControlSocket {
    path: PathBuf,
    _lock: Lock,
    /// The listener, taken by the server.
    pub listener: Option<UnixListener>,
}

impl ControlSocket {
    /// Binds the socket: directory 0700 (0750 with a group), socket 0600 (0660).
    /// A socket file nobody answers on is stale and replaced; one a daemon answers
    /// on, or one whose lock another daemon holds, makes this start fail; anything
    /// at the path that is not a socket is never removed.
    pub fn bind(path: &Path, access: &Access) -> anyhow::Result<ControlSocket> {
        // Before anything is made for it (its directory, its lock).
        let most = std::mem::size_of::<libc::sockaddr_un>()
            - std::mem::offset_of!(libc::sockaddr_un, sun_path)
            - 1;
        let len = path.as_os_str().len();
        if len > most {
            bail!(
                "control socket path {} is {len} bytes: a Unix socket's path has at most \
                 {most} (use a shorter --socket)",
                path.display()
            );
        }
        let dir = parent_dir(path);
        let group_gid = access.group.as_ref().map(|(_, gid)| *gid);
        if std::fs::symlink_metadata(&dir).is_err() {
            let mode = if group_gid.is_some() { 0o750 } else { 0o700 };
            ensure_dir(&dir, mode)
                .with_context(|| format!("cannot create socket directory {}", dir.display()))?;
            if let Some(gid) = group_gid {
                chown(&dir, None, Some(gid))
                    .with_context(|| format!("cannot chown {}", dir.display()))?;
            }
        }
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        // A daemon killed a moment ago (SIGKILL, then a supervisor's
        // immediate restart) holds the lock until its process has ended,
        // milliseconds later: that is waited for, a live one is refused.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let lock = loop {
            match Lock::try_acquire(&lock_path)
                .with_context(|| format!("cannot lock the control socket {}", path.display()))?
            {
                Some(lock) => break lock,
                None if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                None => bail!(
                    "another inosyncd is already running on {} (it holds {}; stop it, or use \
                     --socket)",
                    path.display(),
                    lock_path.display()
                ),
            }
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                bail!(
                    "{} exists and is not a socket; refusing to replace it (remove it, or use --socket)",
                    path.display()
                );
            }
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => bail!(
                    "another inosyncd is already running on {} (stop it, or use --socket)",
                    path.display()
                ),
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionRefused
                        || e.kind() == io::ErrorKind::NotFound =>
                {
                    tracing::info!("replacing stale socket {}", path.display());
                    std::fs::remove_file(path).with_context(|| {
                        format!("cannot remove stale socket {}", path.display())
                    })?;
                }
                Err(e) => bail!("{} exists and is not a usable socket: {e}", path.display()),
            }
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot bind control socket {}", path.display()))?;
        let mode = if group_gid.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set mode of {}", path.display()))?;
        if let Some(gid) = group_gid {
            chown(path, None, Some(gid))
                .with_context(|| format!("cannot chown {}", path.display()))?;
        }
        Ok(ControlSocket {
            path: path.to_path_buf(),
            _lock: lock,
            listener: Some(listener),
        })
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
