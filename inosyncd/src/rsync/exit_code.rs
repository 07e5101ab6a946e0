//! rsync's exit codes in words (from rsync(1)), and what each means for a retry: a
//! log line says why a sync failed rather than a bare number, and a target that is
//! misconfigured is not hammered like one that merely dropped its connection.

use super::outcome::FailureClass;
#[cfg(test)]
use std::time::Duration;

/// The meaning of an rsync exit code.
pub fn meaning(code: i32) -> &'static str {
    match code {
        0 => "success",
        1 => "syntax or usage error",
        2 => "protocol incompatibility",
        3 => "errors selecting input/output files, dirs",
        4 => "requested action not supported",
        5 => "error starting client-server protocol",
        6 => "daemon unable to append to log-file",
        10 => "error in socket I/O",
        11 => "error in file I/O",
        12 => "error in rsync protocol data stream",
        13 => "errors with program diagnostics",
        14 => "error in IPC code",
        20 => "received SIGUSR1 or SIGINT",
        21 => "some error returned by waitpid()",
        22 => "error allocating core memory buffers",
        23 => "partial transfer due to error",
        24 => "partial transfer due to vanished source files",
        25 => "the --max-delete limit stopped deletions",
        30 => "timeout in data send/receive",
        35 => "timeout waiting for daemon connection",
        126 => "rsync binary not executable",
        127 => "rsync binary not found",
        255 => "the remote shell (ssh) failed",
        _ => "unknown rsync exit code",
    }
}

/// The class of a failure rsync reported with `code`: usage, protocol,
/// permission and module errors (1, 2, 3, 4, 5, 6, 13, 25, 126, 127) need an
/// administrator; network and I/O trouble (10, 11, 12, 23, 30, 35, 255, …)
/// usually passes.
pub fn class_of(code: i32) -> FailureClass {
    match code {
        1 | 2 | 3 | 4 | 5 | 6 | 13 | 25 | 126 | 127 => FailureClass::Misconfiguration,
        _ => FailureClass::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_retry_fast_configuration_errors_slowly() {
        for code in [10, 11, 12, 23, 30, 35, 255] {
            assert_eq!(
                class_of(code).first_retry(),
                Duration::from_secs(1),
                "{code}"
            );
        }
        for code in [1, 2, 3, 4, 5, 127] {
            assert!(
                class_of(code).first_retry() >= Duration::from_secs(30),
                "{code}"
            );
        }
        assert_eq!(meaning(255), "the remote shell (ssh) failed");
    }
}
