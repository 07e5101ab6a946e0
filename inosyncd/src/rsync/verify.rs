//! `verify`: a dry run of a full sync that itemizes what it would change, read
//! back as the paths where a target differs from its source.

use super::classify::{Context, Ending, Listed, classify};
use super::command::Job;
use super::launch::{Kind, Launched};
use super::outcome::RunResult;
use super::stderr::{Stderr, unescape};
use crate::config::checks::is_local_target;

/// One path where the target differs, with rsync's itemized change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// rsync's change summary (`>f.st......`, `*deleting`, `cd+++++++++`, …).
    pub change: String,
    /// Relative to the watch root.
    pub path: Vec<u8>,
}

/// Runs the dry run of `job` (a full sync) and returns what differs. It starts
/// where every child starts (`launch.rs`): in the job's sandbox, after the
/// layout check, and not at all under `--pretend`.
pub async fn compare(job: &Job, checksum: bool) -> Result<Vec<Difference>, String> {
    let argv = job.verify_argv(checksum);
    let label = format!("{} -> {}", job.source.display(), job.destination);
    let (child, confinement) = match job.launch.spawn(Kind::DryRun, job, &argv, None, &label) {
        Launched::Running { child, confinement } => (child, confinement),
        Launched::Pretended => return Err("not compared: --pretend runs nothing".into()),
        Launched::Refused(why) | Launched::NotStarted(why) => return Err(why),
    };
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("cannot wait for {}: {e}", job.rsync.display()))?;
    let mut stderr = Stderr::default();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        stderr.push(line.to_string());
    }
    let ending = match out.status.code() {
        Some(code) => Ending::Exited(code),
        None => Ending::Signalled(out.status.to_string()),
    };
    let context = Context {
        source: &job.source,
        destination: &job.destination,
        local: is_local_target(&job.destination),
        remote_shell: super::ssh_reuse::uses_remote_shell(&job.destination),
        listed: Listed::Whole,
        guarded: false,
        confinement,
    };
    // Synced: what was compared stands (24: files vanished while comparing).
    match classify(&ending, &stderr, &context).result {
        RunResult::Synced => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(parse_line)
            .collect()),
        RunResult::Partial { cause, .. }
        | RunResult::Refused { cause }
        | RunResult::Failed { cause, .. } => Err(format!("the comparison failed: {cause}")),
        other => Err(format!("the comparison failed: {other:?}")),
    }
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
