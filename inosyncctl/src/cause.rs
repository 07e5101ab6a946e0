//! An rsync failure as an administrator reads it: the cause first (rsync's
//! own error line, `mkdir "/srv/x" failed: Not a directory (20)`), the exit
//! code and its meaning after it. The daemon's `last_error` starts with the
//! generic `rsync exited with 11 (error in file I/O): rsync: [Receiver] ...`,
//! which in a narrow column leaves no room for what went wrong.

/// The first line of `error` with rsync's cause moved to the front; an error
/// of another shape (a refusal, a daemon message) is returned as it is.
pub fn cause_first(error: &str) -> String {
    let first = error.lines().next().unwrap_or_default();
    let Some(rest) = first.strip_prefix("rsync exited with ") else {
        return first.to_string();
    };
    let Some((code_and_meaning, cause)) = rest.split_once("): ") else {
        return first.to_string();
    };
    let exit = match code_and_meaning.split_once(" (") {
        Some((code, meaning)) => format!("rsync exit {code}, {meaning}"),
        None => format!("rsync exit {code_and_meaning}"),
    };
    format!("{} [{exit}]", without_rsync_prefixes(cause))
}

/// `rsync: [Receiver] mkdir ...` as `mkdir ...`: the program and its role
/// say nothing the column does not already say.
fn without_rsync_prefixes(line: &str) -> &str {
    let mut line = line.trim();
    loop {
        if let Some(rest) = line.strip_prefix("rsync: ") {
            line = rest;
        } else if line.starts_with('[')
            && let Some((_, rest)) = line.split_once("] ")
        {
            line = rest;
        } else {
            return line;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_comes_first() {
        assert_eq!(
            cause_first(
                "rsync exited with 11 (error in file I/O): rsync: [Receiver] mkdir \"/srv/x\" \
                 failed: Not a directory (20)\nrsync error: ..."
            ),
            "mkdir \"/srv/x\" failed: Not a directory (20) [rsync exit 11, error in file I/O]"
        );
        assert_eq!(
            cause_first("rsync exited with 10 (error in socket I/O)"),
            "rsync exited with 10 (error in socket I/O)"
        );
        assert_eq!(
            cause_first("refused by the sandbox: x"),
            "refused by the sandbox: x"
        );
    }
}
