//! `-d`: fork to the background only once start-up has succeeded, so that a bad
//! config, a busy socket or a missing directory is reported on the terminal with a
//! non-zero exit, not lost in a log.
//!
//! The fork happens before any thread exists; the parent then waits on a pipe for
//! the child's verdict: "ready", or the error that stopped it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;

/// The child's end of the pipe: says "ready" or why start-up failed.
pub struct Readiness(File);

impl Readiness {
    /// Start-up succeeded: the parent exits 0 and the terminal is released.
    pub fn ready(mut self) {
        let _ = self.0.write_all(b"\0");
        detach_stdio();
    }

    /// Start-up failed: the parent prints this and exits 1.
    pub fn failed(mut self, message: &str) {
        let _ = self.0.write_all(message.as_bytes());
    }
}

/// Forks. Returns in the child (now a session leader) with its readiness pipe; the
/// parent never returns: it exits with the child's verdict.
pub fn fork() -> anyhow::Result<Readiness> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        anyhow::bail!("cannot create pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned only here.
    let (mut read_end, write_end) =
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet (the runtime is built after this).
    match unsafe { libc::fork() } {
        -1 => anyhow::bail!("cannot fork: {}", std::io::Error::last_os_error()),
        0 => {
            drop(read_end);
            // SAFETY: plain syscall in the child.
            unsafe { libc::setsid() };
            Ok(Readiness(write_end))
        }
        _ => {
            drop(write_end);
            let mut verdict = Vec::new();
            let _ = read_end.read_to_end(&mut verdict);
            match verdict.as_slice() {
                [0, ..] => std::process::exit(0),
                [] => {
                    eprintln!("inosyncd: the daemon exited during start-up (see its log)");
                    std::process::exit(1)
                }
                message => {
                    eprintln!("inosyncd: {}", String::from_utf8_lossy(message));
                    std::process::exit(1)
                }
            }
        }
    }
}

/// Points stdin/stdout/stderr at /dev/null so the daemon holds no terminal.
fn detach_stdio() {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    use std::os::fd::AsRawFd;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which we own.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
}
