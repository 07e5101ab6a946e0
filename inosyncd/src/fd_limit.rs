//! The descriptor limit. A daemon that watches trees and runs rsync children
//! needs descriptors for inotify, fanotify, Landlock rulesets, pipes and
//! sockets; a soft limit of 1,024 (the usual default) can run out while the
//! hard limit allows far more. The soft limit is raised to the hard one at
//! start, as systemd's `LimitNOFILE` would; nothing else is changed.

/// Why the limit was left as it was; only logged, the daemon starts anyway.
#[derive(Debug, thiserror::Error)]
pub enum FdLimitError {
    /// The limits could not be read.
    #[error("getrlimit: {0}")]
    Read(std::io::Error),
    /// The kernel refused the new soft limit.
    #[error("setrlimit to {wanted}: {error}")]
    Raise {
        /// The hard limit asked for.
        wanted: u64,
        /// What the kernel said.
        error: std::io::Error,
    },
}

/// Raises the soft RLIMIT_NOFILE to the hard limit. Returns the limits before
/// and after (soft), or why they could not be read or changed.
pub fn raise() -> Result<(u64, u64), FdLimitError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(FdLimitError::Read(std::io::Error::last_os_error()));
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur >= limit.rlim_max {
        return Ok((before, before));
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(FdLimitError::Raise {
            wanted: limit.rlim_max,
            error: std::io::Error::last_os_error(),
        });
    }
    Ok((before, limit.rlim_cur))
}
