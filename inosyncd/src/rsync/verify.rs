//! `verify`: a dry run of a full sync that itemizes what it would change, read
//! back as the paths where a target differs from its source.

use std::process::Stdio;

use tokio::process::Command;

use super::command::Job;
use super::stderr::unescape;

/// One path where the target differs, with rsync's itemized change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// rsync's change summary (`>f.st......`, `*deleting`, `cd+++++++++`, …).
    pub change: String,
    /// Relative to the watch root.
    pub path: Vec<u8>,
}

/// Runs the dry run of `job` (a full sync) and returns what differs.
pub async fn compare(job: &Job, checksum: bool) -> Result<Vec<Difference>, String> {
    let argv = job.verify_argv(checksum);
    let mut command = Command::new(&argv[0]);
    // A dry run writes nothing; it runs in the job's domain all the same.
    if let Some(domain) = &job.sandbox {
        domain.confine(&mut command);
    }
    let out = command
        .args(&argv[1..])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot start {}: {e}", job.rsync.display()))?;
    // 24: files vanished while comparing; what was compared stands.
    if !out.status.success() && out.status.code() != Some(24) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("the comparison failed ({}): {last}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_line)
        .collect())
}

/// One `%i %n` line; `None` for lines that are not itemized changes, and for a
/// directory whose only difference is its mtime (kept loosely, see the README).
fn parse_line(line: &str) -> Option<Difference> {
    let (change, name) = if let Some(name) = line.strip_prefix("*deleting") {
        ("*deleting".to_string(), name.trim_start())
    } else {
        let (flags, name) = line.split_at_checked(11)?;
        let name = name.strip_prefix(' ')?;
        let kind = flags.as_bytes().get(1)?;
        if !b"fdLDS".contains(kind) || !b"<>ch.*".contains(flags.as_bytes().first()?) {
            return None;
        }
        let attrs = &flags[2..];
        if *kind == b'd'
            && flags.starts_with('.')
            && attrs.chars().all(|c| c == '.' || c == 't' || c == ' ')
        {
            return None;
        }
        (flags.to_string(), name)
    };
    let name = name.strip_suffix('/').unwrap_or(name);
    if name.is_empty() || name == "." {
        return None;
    }
    Some(Difference {
        change,
        path: unescape(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itemized_lines_are_read() {
        let lines = [
            ">f.st...... docs/a b",
            "*deleting   old/thing",
            "cd+++++++++ new dir/",
            ".d..t...... only-time/",
            ".f...p..... mode\\#012change",
            "cL+++++++++ link",
            "created directory /m/x",
            "",
        ];
        let found: Vec<(String, String)> = lines
            .iter()
            .filter_map(|l| parse_line(l))
            .map(|d| (d.change, String::from_utf8_lossy(&d.path).into_owned()))
            .collect();
        let expected: Vec<(String, String)> = [
            (">f.st......", "docs/a b"),
            ("*deleting", "old/thing"),
            ("cd+++++++++", "new dir"),
            (".f...p.....", "mode\nchange"),
            ("cL+++++++++", "link"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(found, expected);
    }
}
