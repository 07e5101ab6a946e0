//! An rsync stuck on a fifo. rsync's sender opens each regular file of its list
//! with a blocking `open(2)`; a fifo that took the file's place between the
//! listing and the open (a rename onto it) blocks that open until a writer
//! comes, which may be never (`--timeout` does not cover it: no I/O is pending).
//! Seen from outside, a process of the run waits in the kernel's
//! `wait_for_partner`; the run is then stopped and tried again, and the next
//! listing sees the fifo as the special file it is.

/// Whether `pid` or a process below it waits to open a fifo.
pub fn waiting_on_a_fifo(pid: u32) -> bool {
    let mut stack = vec![pid];
    let mut seen = 0;
    while let Some(pid) = stack.pop() {
        seen += 1;
        if seen > 64 {
            break;
        }
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if wchan.trim() == "wait_for_partner" {
            return true;
        }
        stack.extend(children(pid));
    }
    false
}

/// The children of every thread of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_opening_a_fifo_without_a_writer_is_seen_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A shell whose child (cat) blocks opening the fifo.
        let mut shell = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cat '{}' >/dev/null; true", fifo.display()))
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut waiting = false;
        while !waiting && std::time::Instant::now() < deadline {
            waiting = waiting_on_a_fifo(shell.id());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Release it: a writer opens and closes the fifo.
        drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        let _ = shell.wait();
        assert!(waiting);
        assert!(!waiting_on_a_fifo(std::process::id()));
    }
}
