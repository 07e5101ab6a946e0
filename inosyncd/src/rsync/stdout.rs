//! rsync's stdout: the overall progress of a transfer (`--info=progress2`, for
//! `status`) and its closing statistics (the bytes sent, for the log line).
//! Anything else the user asked for (`-v`) is read and dropped, so rsync never
//! blocks on a full pipe (see also `stdout_file`).

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::outcome::Progress;

/// Reads `stdout` (a pipe) to its end on a task of its own, publishing
/// progress lines on `progress`; the task returns the bytes rsync said it
/// sent. A transfer's stdout is a memory file instead where the kernel allows
/// (`stdout_file`): this is for the other runs, and the fallback.
///
/// rsync writes a progress line after every file: a walk of 2,000 small
/// files to 16 targets is 32,000 lines. Only the newest line of each read is
/// parsed, and what `status` sees is renewed at most every
/// [`PROGRESS_EVERY`] (it shows a transfer once it has run for a second).
pub fn read(
    mut stdout: impl AsyncRead + Unpin + Send + 'static,
    progress: watch::Sender<Option<Progress>>,
) -> JoinHandle<Option<u64>> {
    tokio::spawn(async move {
        let mut lines = Lines::default();
        let mut chunk = vec![0u8; 16 * 1024];
        let mut published: Option<Instant> = None;
        loop {
            // A line held back is published once its time comes, even when
            // rsync says nothing more for a while.
            let due = published
                .filter(|_| lines.unpublished.is_some())
                .map(|at| at + PROGRESS_EVERY);
            let n = tokio::select! {
                read = stdout.read(&mut chunk) => match read {
                    Ok(n) if n > 0 => n,
                    _ => break,
                },
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => 0,
            };
            lines.take(&chunk[..n]);
            if published.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) && lines.publish(&progress)
            {
                published = Some(Instant::now());
            }
        }
        lines.sent
    })
}

/// How often what `status` shows of a transfer's progress is renewed.
pub(super) const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What has been read of rsync's output so far.
#[derive(Debug, Default)]
pub(super) struct Lines {
    /// The bytes rsync said it sent (its closing statistics).
    pub(super) sent: Option<u64>,
    /// The start of a line whose end has not come yet.
    pending: Vec<u8>,
    /// The newest progress not yet published.
    unpublished: Option<Progress>,
}

impl Lines {
    /// Reads `bytes`, the next of rsync's output.
    pub(super) fn take(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let (read, newest) = read_lines(&self.pending, &mut self.sent);
        self.pending.drain(..read);
        self.unpublished = newest.or(self.unpublished.take());
        // A line without an end this long is not rsync's: drop it.
        if self.pending.len() > 64 * 1024 {
            self.pending.clear();
        }
    }

    /// Publishes the newest progress read, if any since the last; whether
    /// there was one.
    pub(super) fn publish(&mut self, progress: &watch::Sender<Option<Progress>>) -> bool {
        match self.unpublished.take() {
            Some(now) => {
                progress.send_replace(Some(now));
                true
            }
            None => false,
        }
    }
}

/// Reads the complete lines at the start of `text` (progress lines end in
/// '\r', the statistics in '\n'): the bytes sent go to `sent`. Returns how many
/// bytes were read and the newest progress among them.
fn read_lines(text: &[u8], sent: &mut Option<u64>) -> (usize, Option<Progress>) {
    let mut read = 0;
    let mut progress_lines = Vec::new();
    while let Some(len) = text[read..].iter().position(|b| *b == b'\r' || *b == b'\n') {
        let line = &text[read..read + len];
        // Looked at as bytes: a first sync prints a line per directory, and
        // only the newest progress line is read as text.
        if line.trim_ascii_start().starts_with(b"sent ") {
            if let Some(bytes) = parse_sent(&String::from_utf8_lossy(line)) {
                *sent = Some(bytes);
            }
        } else if looks_like_progress(line) {
            progress_lines.push(read..read + len);
        }
        read += len + 1;
    }
    // Newest first: a name `-v` printed may look like progress, and is passed.
    let newest = progress_lines
        .into_iter()
        .rev()
        .find_map(|range| parse_progress(&String::from_utf8_lossy(&text[range])));
    (read, newest)
}

/// A cheap first look: a progress line holds a percentage and a rate.
fn looks_like_progress(line: &[u8]) -> bool {
    line.contains(&b'%') && line.windows(2).any(|pair| pair == b"/s")
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
    use super::{parse_progress, parse_sent, read_lines};

    #[test]
    fn only_the_newest_progress_of_a_read_is_kept_and_the_statistics_are_not_missed() {
        let text = b"  1,000  10%  1.00kB/s  0:00:09 (xfr#1, to-chk=9/10)\r\
              5,000  50%  2.00kB/s  0:00:05 (xfr#5, to-chk=5/10)\r\
sent 5,120 bytes  received 35 bytes  10,310.00 bytes/sec\n\
  9,000  90%";
        let mut sent = None;
        let (read, newest) = read_lines(text, &mut sent);
        let newest = newest.unwrap();
        assert_eq!((newest.bytes_done, newest.percent), (5_000, 50));
        assert_eq!(sent, Some(5_120));
        // The line without its end waits for the next read.
        assert_eq!(&text[read..], b"9,000  90%");
        let (read, newest) = read_lines(b"file.txt\n", &mut sent);
        assert_eq!((read, newest.is_none()), (9, true));
        // A name that `-v` prints after the newest progress line, with a
        // percent sign and a slash-s in it, does not hide that line.
        let text =
            b"  5,000  50%  2.00kB/s  0:00:05 (xfr#5, to-chk=5/10)\r\nassets/50%off/sale.png\n";
        let (_, newest) = read_lines(text, &mut sent);
        assert_eq!(newest.map(|p| p.bytes_done), Some(5_000));
    }

    #[tokio::test]
    async fn a_progress_line_held_back_is_published_when_rsync_goes_quiet() {
        let (mut rsync, stdout) = tokio::io::duplex(4096);
        let (progress, seen) = tokio::sync::watch::channel(None);
        let task = super::read(stdout, progress);
        use tokio::io::AsyncWriteExt;
        rsync
            .write_all(b"  1,000  10%  1.00kB/s  0:00:09 (xfr#1, to-chk=9/10)\r")
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        rsync
            .write_all(b"  2,000  20%  1.00kB/s  0:00:08 (xfr#2, to-chk=8/10)\r")
            .await
            .unwrap();
        // rsync says nothing more for a while (a deletion pass, a big file's
        // checksum): what `status` shows catches up all the same.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let shown = seen.borrow().as_ref().map(|p| p.bytes_done);
        assert_eq!(shown, Some(2_000));
        drop(rsync);
        assert_eq!(task.await.unwrap(), None);
    }

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
