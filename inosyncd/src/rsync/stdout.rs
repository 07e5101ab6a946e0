//! rsync's stdout: the overall progress of a transfer (`--info=progress2`, for
//! `status`) and its closing statistics (the bytes sent, for the log line).
//! Anything else the user asked for (`-v`) is read and dropped, so rsync never
//! blocks on a full pipe.

use tokio::io::AsyncReadExt;
use tokio::process::ChildStdout;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::outcome::Progress;

/// Reads `stdout` to its end on a task of its own, publishing progress lines on
/// `progress`; the task returns the bytes rsync said it sent.
pub fn read(
    mut stdout: ChildStdout,
    progress: watch::Sender<Option<Progress>>,
) -> JoinHandle<Option<u64>> {
    tokio::spawn(async move {
        // Progress lines end in '\r', the statistics in '\n'.
        let mut sent = None;
        let mut pending = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&chunk[..n]);
            while let Some(end) = pending.iter().position(|b| *b == b'\r' || *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                if let Some(bytes) = parse_sent(&line) {
                    sent = Some(bytes);
                } else if let Some(now) = parse_progress(&line) {
                    progress.send_replace(Some(now));
                }
            }
            // A line without an end this long is not rsync's: drop it.
            if pending.len() > 64 * 1024 {
                pending.clear();
            }
        }
        sent
    })
}

/// One `--info=progress2` line: `  1,234,567  45%   12.34MB/s    0:00:05 (xfr#1, to-chk=0/1)`.
fn parse_progress(line: &str) -> Option<Progress> {
    let mut words = line.split_whitespace();
    let bytes = words.next()?;
    let percent = words.next()?.strip_suffix('%')?.parse::<u8>().ok()?;
    let rate = words.next()?;
    let eta = words.next()?;
    if !rate.ends_with("/s") || !eta.contains(':') {
        return None;
    }
    let digits: String = bytes.chars().filter(char::is_ascii_digit).collect();
    Some(Progress {
        bytes_done: digits.parse().ok()?,
        percent: percent.min(100),
        rate: rate.to_string(),
        eta: eta.to_string(),
    })
}

/// The byte count of rsync's `sent 1,234 bytes  received 35 bytes ...` line.
fn parse_sent(line: &str) -> Option<u64> {
    let rest = line.trim_start().strip_prefix("sent ")?;
    let number = rest.split_whitespace().next()?;
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if number.contains('.') || digits.is_empty() || !rest.contains(" bytes") {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{parse_progress, parse_sent};

    #[test]
    fn progress_lines_are_read() {
        let p = parse_progress("     52,428,800  45%    1.00MB/s    0:00:27 (xfr#0, to-chk=1/2)")
            .unwrap();
        assert_eq!((p.bytes_done, p.percent), (52_428_800, 45));
        assert_eq!((p.rate.as_str(), p.eta.as_str()), ("1.00MB/s", "0:00:27"));
        assert!(parse_progress("sent 1 bytes").is_none());
        assert!(parse_progress("file.txt").is_none());
    }

    #[test]
    fn sent_bytes_are_read_from_rsync_stats() {
        assert_eq!(
            parse_sent("sent 1,234 bytes  received 35 bytes  2,538.00 bytes/sec"),
            Some(1234)
        );
        assert_eq!(parse_sent("sent 99 bytes  received 12 bytes"), Some(99));
        assert_eq!(parse_sent("sent.txt"), None);
        assert_eq!(parse_sent("total size is 5  speedup is 0.05"), None);
    }
}
