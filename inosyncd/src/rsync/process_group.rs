//! What is left of a run's process group once its first process has ended.
//! rsync's own processes end before it, so normally nothing is; but a wrapper
//! named by `rsync = ` can die and leave the rsync it started, and a receiver
//! can outlive a sender that was killed. The daemon has moved on (the run is
//! over, retried or done), so such a process would go on writing beside the
//! next run: it is stopped.

use std::time::Duration;

/// How long the leftovers get after SIGTERM (a receiver moves what it got to
/// its partial directory) before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// Stops what is left of `group`, the process group of a child that has ended
/// and been reaped, and says whether anything was.
///
/// The leader is reaped, but while any member lives the kernel gives the
/// group's id to no new process; with none left, `kill` finds nothing, unless
/// the id was handed out again in the moments since the reap, which takes a
/// wrap of the whole pid space.
pub async fn end_group(group: u32) -> bool {
    if !running(group).await {
        return false;
    }
    signal(group, libc::SIGTERM);
    let deadline = tokio::time::Instant::now() + GRACE;
    while running(group).await && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if running(group).await {
        signal(group, libc::SIGKILL);
    }
    true
}

/// [`members_running`] off the runtime's threads: it may read every
/// `/proc/PID/stat` of a busy host.
async fn running(group: u32) -> bool {
    // SAFETY: signal 0 only checks that the group has a process (the common
    // case, an empty group, costs no thread).
    if unsafe { libc::kill(-(group as libc::pid_t), 0) } != 0 {
        return false;
    }
    tokio::task::spawn_blocking(move || members_running(group))
        .await
        .unwrap_or(false)
}

fn signal(group: u32, signal: i32) {
    // SAFETY: kill(2) on the group a child of ours led (see `end_group`).
    unsafe { libc::kill(-(group as libc::pid_t), signal) };
}

/// Whether a process of `group` still runs. A zombie does not count: an
/// orphan's parent may be an init that does not reap.
fn members_running(group: u32) -> bool {
    // SAFETY: signal 0 only checks that the group has a process.
    if unsafe { libc::kill(-(group as libc::pid_t), 0) } != 0 {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| running_in(&stat, group))
}

/// Whether a `/proc/PID/stat` line is of a live (not zombie) process in
/// `group`. The command name in parentheses may hold anything, so the fields
/// are read after its last `)`: state, parent, group.
fn running_in(stat: &str, group: u32) -> bool {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next();
    let pgrp = fields.nth(1).and_then(|f| f.parse::<u32>().ok());
    state != Some("Z") && pgrp == Some(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_after_the_command_name() {
        assert!(running_in("42 (rsync) S 1 40 40 0 -1", 40));
        assert!(!running_in("42 (rsync) Z 1 40 40 0 -1", 40));
        assert!(!running_in("42 (rsync) S 1 41 41 0 -1", 40));
        assert!(running_in("42 (a) b) 7 c) R 1 40 40 0", 40));
        assert!(!running_in("garbage", 40));
    }
}
