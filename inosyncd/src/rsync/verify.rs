//! `verify`: a dry run of a full sync that itemizes what it would change, read
//! back as the paths where a target differs from its source.

use super::classify::{Context, Ending, Listed, classify};
use super::job::Job;
use super::launch::{Kind, Launched};
use super::outcome::RunResult;
use super::stderr::{Stderr, unescape_bytes};
use crate::config::checks::is_local_target;

/// One path where the target differs, with rsync's itemized change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// rsync's change summary (`>f.st......`, `*deleting`, `cd+++++++++`, …).
    pub change: String,
    /// Relative to the watch root.
    pub path: Vec<u8>,
}

/// Why a target could not be compared with its source. Its text is what
/// `status` and the log show (README "Operating at runtime": `verify`), in
/// the words `status` uses for the same target's transfers.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// `--pretend` starts no child, the dry run included.
    #[error("not compared: --pretend runs nothing")]
    Pretend,
    /// The dry run was refused or could not start (`launch.rs` says why).
    #[error("{0}")]
    NotStarted(String),
    /// Waiting for the dry run failed.
    #[error("cannot wait for {rsync}: {error}")]
    Wait {
        /// The rsync binary.
        rsync: String,
        /// What the wait returned.
        error: std::io::Error,
    },
    /// rsync failed, was refused, or could not compare everything: the
    /// classifier's cause.
    #[error("{0}")]
    Failed(String),
    /// rsync compared all but the paths its errors name (exit 23): the
    /// classifier's cause.
    #[error("{0}")]
    Partial(String),
    /// The dry run ended some other way (its outcome's label).
    #[error("the comparison ended as {0}")]
    Ended(&'static str),
}

/// Runs the dry run of `job` (a full sync) and returns what differs. It starts
/// where every child starts (`launch.rs`): in the job's sandbox, after the
/// layout check, and not at all under `--pretend`.
pub async fn compare(job: &Job, checksum: bool) -> Result<Vec<Difference>, CompareError> {
    dry_run(job, &job.verify_argv(checksum), None).await
}

/// Runs `argv` (a dry run of `job` that itemizes with [`ITEM_TAG`]), with
/// `stdin` on its standard input, and returns what it would change.
pub(super) async fn dry_run(
    job: &Job,
    argv: &[std::ffi::OsString],
    stdin: Option<&[u8]>,
) -> Result<Vec<Difference>, CompareError> {
    let label = format!("{} -> {}", job.source.display(), job.destination);
    let (child, confinement) = match job.launch.spawn(Kind::DryRun, job, argv, stdin, &label) {
        Launched::Running {
            child, confinement, ..
        } => (child, confinement),
        Launched::Pretended => return Err(CompareError::Pretend),
        Launched::Refused(why) | Launched::NotStarted(why) | Launched::SourceChanged(why) => {
            return Err(CompareError::NotStarted(why));
        }
    };
    // A dry run given up on (its time share ran out: this future is dropped)
    // takes its whole process group with it: the ssh under it, waiting on a
    // host that never answers, would be left behind.
    let mut child = child;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Written beside the wait, which reads what rsync prints; closed at
        // its end (rsync reads its rules to the end first).
        let input = input.to_vec();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = pipe.write_all(&input).await;
        });
    }
    let mut group = GroupOnDrop(child.id());
    let out = child
        .wait_with_output()
        .await
        .map_err(|error| CompareError::Wait {
            rsync: job.rsync.display().to_string(),
            error,
        });
    if let Some(leader) = group.0.take() {
        super::process_group::end_group(leader).await;
    }
    let out = out?;
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
        target_read_only: None,
    };
    // Synced: what was compared stands (24: files vanished while comparing).
    match classify(&ending, &stderr, &context).result {
        RunResult::Synced => Ok(out
            .stdout
            .split(|b| *b == b'\n')
            .filter_map(parse_line)
            .collect()),
        // The cause in the words `status` uses for the same target.
        RunResult::Partial { cause, .. } => Err(CompareError::Partial(cause)),
        RunResult::Refused { cause } | RunResult::Failed { cause, .. } => {
            Err(CompareError::Failed(cause))
        }
        other => Err(CompareError::Ended(other.label())),
    }
}

/// What starts each itemized line of a verify's dry run (`--out-format`):
/// no other line rsync prints on stdout starts so, and a name never spans
/// lines (rsync writes a newline in a name as `\#012`).
pub(super) const ITEM_TAG: &str = "inosync-item:";

/// One line of the dry run's stdout: `ITEM_TAG`, the 11 characters of `%i`
/// (`*deleting` padded with spaces), one space, then the name exactly as rsync
/// wrote it (its `\#ooo` escapes undone; nothing trimmed: a name may start
/// with spaces). `None` for other lines, and for a directory whose only
/// difference is its mtime (kept loosely, see the README).
fn parse_line(line: &[u8]) -> Option<Difference> {
    let item = line.strip_prefix(ITEM_TAG.as_bytes())?;
    let (flags, name) = item.split_at_checked(11)?;
    let name = name.strip_prefix(b" ")?;
    let flags = std::str::from_utf8(flags).ok()?;
    let change = if flags.trim_end() == "*deleting" {
        "*deleting".to_string()
    } else {
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
        flags.to_string()
    };
    let name = name.strip_suffix(b"/").unwrap_or(name);
    if name.is_empty() || name == b"." {
        return None;
    }
    Some(Difference {
        change,
        path: unescape_bytes(name),
    })
}

/// Kills the process group of a dry run whose future is dropped before the
/// run was reaped (its leader not reaped, the group id is still ours).
struct GroupOnDrop(Option<u32>);

impl Drop for GroupOnDrop {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            // SAFETY: kill(2) on the group of a child not reaped yet.
            unsafe { libc::kill(-(group as libc::pid_t), libc::SIGKILL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dry run given up on leaves nothing of its process group running
    /// (the dropped child alone was killed, its own children went on).
    #[tokio::test]
    async fn a_dry_run_given_up_on_takes_its_process_group_with_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let source = root.join("src");
        std::fs::create_dir(&source).unwrap();
        let pid_file = root.join("helper.pid");
        let script = root.join("hanging-rsync");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nsleep 60 &\necho $! > '{}'\nsleep 60\n",
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let job = Job {
            rsync: script,
            source,
            destination: format!("{}/mirror/", root.display()),
            ..Job::default()
        };
        let given_up =
            tokio::time::timeout(std::time::Duration::from_secs(1), compare(&job, false)).await;
        assert!(given_up.is_err(), "the dry run ended by itself");
        let helper: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let alive = || {
            std::fs::read_to_string(format!("/proc/{helper}/stat")).is_ok_and(|stat| {
                !stat
                    .rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alive() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!alive(), "the dry run's helper {helper} still runs");
    }

    #[test]
    fn itemized_lines_are_read_exactly() {
        let lines: [&[u8]; 12] = [
            b"inosync-item:>f.st...... docs/a b",
            b"inosync-item:*deleting   old/thing",
            b"inosync-item:*deleting     two-leading-spaces",
            b"inosync-item:cd+++++++++ new dir/",
            b"inosync-item:.d..t...... only-time/",
            b"inosync-item:.f...p..... mode\\#012change",
            b"inosync-item:*deleting   a\\#134#012b",
            b"inosync-item:*deleting   raw \xff byte",
            b"inosync-item:cL+++++++++ link",
            b">f+++++++++ untagged",
            b"created directory /m/x",
            b"",
        ];
        let found: Vec<(String, Vec<u8>)> = lines
            .iter()
            .filter_map(|l| parse_line(l))
            .map(|d| (d.change, d.path))
            .collect();
        let expected: Vec<(String, Vec<u8>)> = [
            (">f.st......", &b"docs/a b"[..]),
            ("*deleting", b"old/thing"),
            ("*deleting", b"  two-leading-spaces"),
            ("cd+++++++++", b"new dir"),
            (".f...p.....", b"mode\nchange"),
            ("*deleting", b"a\\#012b"),
            ("*deleting", b"raw \xff byte"),
            ("cL+++++++++", b"link"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_vec()))
        .collect();
        assert_eq!(found, expected);
    }
}
