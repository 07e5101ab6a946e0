//! A transfer's stdout as a memory file (`memfd_create`) that the daemon reads
//! every [`PROGRESS_EVERY`] and once more when rsync has exited, rather than a
//! pipe. rsync prints a progress line after every file and every directory: a
//! first sync of 50,000 directories is 50,000 lines, 3.5 MB. Through a pipe each
//! line woke the daemon (0.23 s of its CPU on 2 cores, beside rsync); written to
//! a file it wakes nobody (0.15 s), and that first sync was ready in 2.28 s
//! instead of 2.37 s (README "Performance"). What has been read is given back
//! to the kernel (a hole punched), so a long run's output holds no memory.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::process::Stdio;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::outcome::Progress;
use super::stdout::{Lines, PROGRESS_EVERY};

/// What is read of it at most every [`PROGRESS_EVERY`] while rsync runs.
const READ_PER_TICK: u64 = 8 << 20;

/// Read bytes are given back once this many have gathered.
const GIVE_BACK_EVERY: u64 = 1 << 20;

/// rsync's stdout, kept in memory.
#[derive(Debug)]
pub struct OutputFile(File);

impl OutputFile {
    /// A new, empty one; `None` where the kernel makes none (the caller pipes
    /// stdout instead).
    pub fn new() -> Option<OutputFile> {
        // Never executable (kernels since 6.3 ask for it to be said; older
        // ones refuse the flag, and get the call without it).
        let create = |flags| {
            // SAFETY: a plain system call with a NUL-terminated name; the
            // descriptor it returns is owned from here on.
            unsafe { libc::memfd_create(c"inosync-rsync-stdout".as_ptr(), flags) }
        };
        let mut fd = create(libc::MFD_CLOEXEC | libc::MFD_NOEXEC_SEAL);
        if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            fd = create(libc::MFD_CLOEXEC);
        }
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just returned open and is owned by no one else.
        Some(OutputFile(File::from(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// The child's stdout: the same file (written at its own offset, which
    /// reading here never moves).
    pub fn for_child(&self) -> std::io::Result<Stdio> {
        Ok(Stdio::from(self.0.try_clone()?))
    }

    /// Reads what rsync wrote on a task of its own, every [`PROGRESS_EVERY`]
    /// and once more after `exited` (sent or dropped), publishing progress on
    /// `progress`; the task returns the bytes rsync said it sent.
    pub fn read(
        self,
        progress: watch::Sender<Option<Progress>>,
        mut exited: oneshot::Receiver<()>,
    ) -> JoinHandle<Option<u64>> {
        tokio::spawn(async move {
            let mut lines = Lines::default();
            let mut offset = 0u64;
            let mut given_back = 0u64;
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let last = tokio::select! {
                    _ = &mut exited => true,
                    () = tokio::time::sleep(PROGRESS_EVERY) => false,
                };
                // At most this much a tick while rsync runs, so a run that
                // prints without end (`--debug=ALL`) never holds a runtime
                // thread; all that is left once it has exited.
                let mut budget = if last { u64::MAX } else { READ_PER_TICK };
                while budget > 0 {
                    match self.0.read_at(&mut chunk, offset) {
                        Ok(0) => break,
                        Ok(n) => {
                            offset += n as u64;
                            budget = budget.saturating_sub(n as u64);
                            lines.take(&chunk[..n]);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                lines.publish(&progress);
                if offset - given_back >= GIVE_BACK_EVERY {
                    given_back = self.give_back(offset);
                }
                if last {
                    return lines.sent;
                }
            }
        })
    }

    /// Gives the pages before `offset` (all read) back to the kernel; how far
    /// that reaches now. Where holes cannot be punched, the file keeps them.
    fn give_back(&self, offset: u64) -> u64 {
        let end = offset & !4095;
        let Ok(len) = libc::off_t::try_from(end) else {
            return 0;
        };
        // SAFETY: a plain system call on a descriptor this owns.
        let punched = unsafe {
            libc::fallocate(
                self.0.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                0,
                len,
            )
        };
        if punched == 0 { end } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn progress_is_read_while_rsync_writes_and_the_statistics_after_it_exits() {
        let output = OutputFile::new().expect("memfd");
        let mut rsync = output.0.try_clone().unwrap();
        let (progress, seen) = watch::channel(None);
        let (exited, on_exit) = oneshot::channel();
        let task = output.read(progress, on_exit);
        // About 3 MB of progress lines, as a large first sync prints.
        let line = b"  1,000  10%  1.00kB/s  0:00:09 (xfr#1, to-chk=9/10)\r";
        for _ in 0..60_000 {
            rsync.write_all(line).unwrap();
        }
        rsync
            .write_all(b"  2,000  20%  1.00kB/s  0:00:08 (xfr#2, ir-chk=8/10)\r")
            .unwrap();
        tokio::time::sleep(PROGRESS_EVERY * 3).await;
        assert_eq!(seen.borrow().as_ref().map(|p| p.bytes_done), Some(2_000));
        // What was read holds no memory any more.
        let blocks = rsync.metadata().unwrap().blocks();
        assert!(blocks * 512 < 1 << 20, "{blocks} blocks kept");
        rsync
            .write_all(b"\nsent 5,120 bytes  received 35 bytes  10,310.00 bytes/sec\n")
            .unwrap();
        exited.send(()).unwrap();
        assert_eq!(task.await.unwrap(), Some(5_120));
    }
}
