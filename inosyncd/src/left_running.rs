//! What a killed predecessor left running. Each rsync (and ssh) the daemon
//! starts has a process group of its own, so a daemon killed by the OOM killer
//! or a crash leaves them running. One still sending an old version of a file
//! when the restarted daemon has already mirrored the new one would put the old
//! version back afterwards, and no event would tell. Every child carries the
//! control socket's path in its environment ([`MARK`]); a daemon that has just
//! taken that socket (so no other daemon owns it) stops every process group
//! that carries it before it starts anything.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

/// The environment variable that names the daemon (by its control socket)
/// that started a process.
pub const MARK: &str = "INOSYNC_DAEMON";

/// How long stopped groups get to end after SIGTERM (rsync moves what it
/// received to its partial directory) before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// Stops the process groups of every process marked as started by the daemon
/// of `owner` (the control socket's path), and returns how many there were.
/// Called once the socket is ours, before any child is started.
pub fn stop_left_running(owner: &OsStr) -> usize {
    let groups = marked_groups(owner);
    if groups.is_empty() {
        return 0;
    }
    tracing::warn!(
        "stopping {} process group(s) a previous inosyncd on this socket left running \
         (it was killed): what they were sending is sent again by the initial sync",
        groups.len()
    );
    signal_groups(&groups, libc::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while groups.iter().any(|g| group_alive(*g)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_groups(&groups, libc::SIGKILL);
    groups.len()
}

/// The process groups of the processes whose environment holds
/// `MARK=owner`, ours excluded. Only processes whose real user is the
/// daemon's count (its children run as it): another user may put the mark in
/// an environment of theirs, never make us signal their processes (the owner
/// of `/proc/PID` would not do: it is root for a process that is not
/// dumpable, such as one started from a setuid program). Processes that cannot be
/// read (gone meanwhile) are not ours.
fn marked_groups(owner: &OsStr) -> BTreeSet<i32> {
    let mut wanted = format!("{MARK}=").into_bytes();
    wanted.extend_from_slice(owner.as_bytes());
    let me = std::process::id();
    // SAFETY: geteuid(2) cannot fail.
    let uid = unsafe { libc::geteuid() };
    // SAFETY: getpgrp(2) cannot fail.
    let own_group = unsafe { libc::getpgrp() };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| real_uid(*pid) == Some(uid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == wanted))
        })
        // SAFETY: getpgid(2) on a pid; a process gone meanwhile gives -1.
        .map(|pid| unsafe { libc::getpgid(pid as libc::pid_t) })
        .filter(|group| *group > 1 && *group != own_group)
        .collect()
}

/// The real user id of `pid` (the first of the `Uid:` line of its status).
fn real_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn signal_groups(groups: &BTreeSet<i32>, signal: i32) {
    for group in groups {
        // SAFETY: kill(2) on a process group that carried our mark.
        unsafe { libc::kill(-group, signal) };
    }
}

/// Whether any process is left in `group` (a zombie not yet reaped counts).
fn group_alive(group: i32) -> bool {
    // SAFETY: signal 0 only checks that the group exists.
    unsafe { libc::kill(-group, 0) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// A marked process in its own group is stopped; one marked for another
    /// socket, not marked, or another user's, is left alone.
    #[test]
    fn only_groups_marked_for_this_socket_are_stopped() {
        let owner = format!("/tmp/inosync-test-{}.sock", std::process::id());
        let spawn = |mark: Option<&str>| {
            let mut command = std::process::Command::new("sleep");
            command.arg("30").process_group(0);
            if let Some(mark) = mark {
                command.env(MARK, mark);
            }
            command.spawn().expect("start sleep")
        };
        let mut ours = spawn(Some(&owner));
        let other = spawn(Some("/elsewhere.sock"));
        let unmarked = spawn(None);
        // As root: another user's process with our mark is not ours.
        // SAFETY: geteuid(2) cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let mut foreign = root.then(|| {
            let mut command = std::process::Command::new("sleep");
            command
                .arg("30")
                .process_group(0)
                .env(MARK, &owner)
                .uid(65534)
                .gid(65534);
            command.spawn().expect("start sleep as nobody")
        });
        assert_eq!(stop_left_running(OsStr::new(&owner)), 1);
        assert!(ours.wait().is_ok_and(|s| !s.success()));
        let mut left = vec![
            (other, "another socket's child"),
            (unmarked, "an unmarked process"),
        ];
        left.extend(foreign.take().map(|f| (f, "another user's process")));
        for (child, what) in &mut left {
            assert!(matches!(child.try_wait(), Ok(None)), "{what} stopped");
        }
        for (child, _) in &mut left {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
