//! Verify's dry runs yield to everything else on the machine: each runs at
//! the lowest CPU priority (`nice` 19) and the lowest best-effort I/O priority
//! (`ionice -c2 -n7`; best effort, not idle, so a disk that is never idle
//! still lets it finish). Set between fork and exec; rsync's own children
//! (the receiver of a local target) inherit both. An ssh or `rsync://`
//! target's side runs as its host decides.

/// Lowers the priorities of the child `command` starts.
pub fn lowest(command: &mut tokio::process::Command) {
    // SAFETY: the hook calls only setpriority(2) and ioprio_set(2), which are
    // async-signal-safe system calls, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            lower_self();
            Ok(())
        });
    }
}

/// `nice` 19 and I/O class best effort, level 7, for the calling process. A
/// refusal leaves the priority as it was: the comparison still runs.
fn lower_self() {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_BE: libc::c_long = 2;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    const LOWEST_BE_LEVEL: libc::c_long = 7;
    // SAFETY: plain system calls on the calling process, no pointers.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0 as libc::c_long,
            (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | LOWEST_BE_LEVEL,
        );
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_child_runs_niced_at_the_lowest_io_priority() {
        let mut command = tokio::process::Command::new("sh");
        command.args(["-c", "cut -d' ' -f19 /proc/$$/stat; ionice -p $$"]);
        super::lowest(&mut command);
        let out = command.output().await.expect("run sh");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("19\n"), "{text}");
        assert!(text.contains("best-effort: prio 7"), "{text}");
    }
}
