//! The processes a test's daemons and servers started, found in `/proc`: the
//! rsync runs a daemon leads (each in a process group of its own), everything
//! an sshd or an rsync daemon forked for its connections, and ssh's shared
//! connections. Faults are injected by signalling them.

use std::fs;
use std::path::Path;

/// One process as `/proc/PID/stat` and `/proc/PID/cmdline` show it.
#[derive(Debug, Clone)]
pub struct Process {
    /// Its id.
    pub pid: u32,
    /// Its parent's id.
    pub ppid: u32,
    /// Its process group.
    pub pgrp: u32,
    /// Its command line, arguments joined by spaces (what `ps` shows; ssh's
    /// shared connection sets its own title there).
    pub cmdline: String,
}

/// Every process now (those that vanish while reading are skipped).
pub fn all() -> Vec<Process> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read)
        .collect()
}

fn read(pid: u32) -> Option<Process> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default();
    Some(Process {
        pid,
        ppid,
        pgrp,
        cmdline,
    })
}

/// The direct children of `pid`.
pub fn children(pid: u32) -> Vec<Process> {
    all().into_iter().filter(|p| p.ppid == pid).collect()
}

/// Every descendant of `pid` (children, their children, ...), whatever
/// process group or session they moved to.
pub fn descendants(pid: u32) -> Vec<Process> {
    let everyone = all();
    let mut found: Vec<Process> = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        for p in everyone.iter().filter(|p| p.ppid == parent) {
            parents.push(p.pid);
            found.push(p.clone());
        }
    }
    found
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: plain kill(2) on a process a test started (or one of its own
    // children); a pid that is gone is an error we ignore.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Sends `signal` to every process of group `pgrp`.
pub fn signal_group(pgrp: u32, signal: i32) {
    if pgrp > 1 {
        // SAFETY: kill(2) on a process group a test's daemon created.
        unsafe { libc::kill(-(pgrp as libc::pid_t), signal) };
    }
}

/// The process groups the daemon `daemon_pid` leads its children in (each
/// rsync run, each ssh of the renames): one per direct child.
pub fn child_groups(daemon_pid: u32) -> Vec<u32> {
    let mut groups: Vec<u32> = children(daemon_pid)
        .into_iter()
        .filter(|p| p.pgrp == p.pid)
        .map(|p| p.pgrp)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// `pid`'s descendants, one a line with their state and where they wait
/// (`/proc/PID/wchan`), for a test that found a daemon busy for too long.
pub fn describe_tree(pid: u32) -> String {
    descendants(pid)
        .iter()
        .map(|p| {
            let stat = fs::read_to_string(format!("/proc/{}/stat", p.pid)).unwrap_or_default();
            let state = stat
                .rfind(')')
                .and_then(|i| stat.get(i + 2..i + 3))
                .unwrap_or("?")
                .to_string();
            let wchan = fs::read_to_string(format!("/proc/{}/wchan", p.pid)).unwrap_or_default();
            let cmdline: String = p.cmdline.chars().take(200).collect();
            format!(
                "  {} (parent {}, {state}, {wchan}): {cmdline}",
                p.pid, p.ppid
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits (up to 20 s) until no rsync process names `dir` on its command line
/// any more: a receiver may outlive its sender by a moment while it puts its
/// partial file away. Whether they were gone in time.
pub fn wait_for_writers_gone(dir: &Path) -> bool {
    let dir = dir.display().to_string();
    crate::poll_until(std::time::Duration::from_secs(20), || {
        !all()
            .iter()
            .any(|p| p.cmdline.contains("rsync") && p.cmdline.contains(&dir))
    })
}

/// ssh's shared connections (`ControlMaster`) whose control sockets lie in
/// `dir`: ssh titles them `ssh: DIR/NAME [mux]`.
pub fn control_masters(dir: &Path) -> Vec<Process> {
    let prefix = format!("ssh: {}/", dir.display());
    all()
        .into_iter()
        .filter(|p| p.cmdline.starts_with(&prefix) && p.cmdline.ends_with("[mux]"))
        .collect()
}

/// Kills a daemon a test started by hand (`Command::spawn`) and the process
/// groups of its children. Its rsyncs outlive it otherwise: one still copying
/// into the test's target while the temporary directory is removed makes the
/// removal fail, and the directory stays (a full suite left
/// `/tmp/inosync-e2e-*` directories with targets written after their removal).
/// The daemon is stopped first, so that it starts no run between the listing
/// of its children and its end.
pub fn kill_with_children(child: &mut std::process::Child) {
    signal(child.id(), libc::SIGSTOP);
    let groups = child_groups(child.id());
    let _ = child.kill();
    let _ = child.wait();
    for group in groups {
        signal_group(group, libc::SIGKILL);
    }
}
