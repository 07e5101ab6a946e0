//! Stopping a child: SIGTERM first (rsync puts what it received in its partial
//! directory, see `leftovers`, and the target's file stays whole), SIGKILL if
//! it does not go; and the watchdog that stops an rsync that
//! hangs where `--timeout` cannot see it (a remote shell that never connects, a
//! process stuck on a dead mount).

use std::time::{Duration, Instant};

/// How long rsync gets to exit after SIGTERM (it puts its partial file away then)
/// before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// SIGTERM, then SIGKILL after [`STOP_GRACE`], to the run's whole process
/// group (each child leads its own, see `launch`): rsync's own children, or a
/// wrapper's, must not live on holding its pipes (or stuck where rsync was).
pub async fn stop_child(
    child: &mut tokio::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    let group = child.id();
    if let Some(pid) = group {
        // SAFETY: kill(2) on the process group our own child leads; it has not
        // been reaped yet, so the group id is still ours.
        unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGTERM) };
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if let Some(pid) = group {
                // SAFETY: as above (the leader still runs: not reaped).
                unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
            }
            let _ = child.kill().await;
            child.wait().await
        }
    }
}

/// Stops an rsync whose bytes read and written (`/proc/PID/io`) do not change
/// for twice the I/O timeout.
pub struct Watchdog {
    pid: Option<u32>,
    /// How long a child may move no data.
    pub limit: Duration,
    /// How often to look.
    pub period: Duration,
    last_io: Option<u64>,
    quiet_since: Instant,
}

impl Watchdog {
    /// A watchdog for child `pid` run with `--timeout=io_timeout` (0: none).
    pub fn new(pid: Option<u32>, io_timeout: Duration) -> Watchdog {
        let limit = if io_timeout.is_zero() {
            Duration::MAX
        } else {
            io_timeout.saturating_mul(2)
        };
        Watchdog {
            pid,
            limit,
            period: (limit / 10).clamp(Duration::from_millis(200), Duration::from_secs(30)),
            last_io: None,
            quiet_since: Instant::now(),
        }
    }

    /// Whether the child has moved no data for the limit (looked at now).
    pub fn stalled(&mut self) -> bool {
        if self.limit == Duration::MAX {
            return false;
        }
        let io = self.pid.and_then(process_io);
        if io != self.last_io {
            self.last_io = io;
            self.quiet_since = Instant::now();
            return false;
        }
        self.quiet_since.elapsed() >= self.limit
    }
}

/// Bytes read plus written by a process, from `/proc/PID/io`.
fn process_io(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(field("rchar:")? + field("wchar:")?)
}
