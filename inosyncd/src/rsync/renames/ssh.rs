//! Renames on an ssh target: one ssh command for the whole batch (over the
//! shared ControlMaster connection), started where every child starts
//! (`launch.rs`). The names go NUL-separated on its stdin to a fixed remote
//! script, which answers one line per move.
//!
//! The script never derives a path in a way that changes it: a name is split
//! into its parent and its last component by parameter expansion (which keeps
//! every byte; command substitution would strip trailing newlines, so `d\n`
//! was checked as `d` and then moved through), each parent is entered
//! physically (`cd -P`) and must lie inside the mirror by the shell's own
//! `$PWD`, and the checks and the `mv` then use exactly the same strings:
//! that physical parent and the name.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use tokio::io::AsyncWriteExt;

use super::super::classify::{Confinement, Context, Ending, Listed, classify};
use super::super::job::Job;
use super::super::launch::{Kind, Launched};
use super::super::outcome::RunResult;
use super::super::stderr::Stderr;

/// Reads (old, new) pairs NUL-separated on stdin and answers `ok` or `no` per
/// pair. A pair is renamed only when both last components are names (not
/// empty, `.` or `..`), both parents resolve (physically, `cd -P`) inside the
/// mirror `$R`, the old path exists and the new one does not. POSIX sh and
/// `xargs -0`; GNU `mv -T`, so a directory is never moved *into* one that
/// appeared meanwhile. Names always come as `./path` (a leading `-` is no
/// option then), so each has a parent.
const SCRIPT: &str = r#"R=$PWD && export R && xargs -0 -n 2 sh -c 'within() { cd -P -- "$R" && cd -P -- "$1" 2>/dev/null && case "$PWD/" in "$R"/*) return 0;; esac; return 1; }; named() { case "$1" in ""|.|..) return 1;; esac; }; f=${1##*/}; t=${2##*/}; if named "$f" && named "$t" && within "${1%/*}" && F=$PWD && within "${2%/*}" && T=$PWD && { [ -e "$F/$f" ] || [ -L "$F/$f" ]; } && ! [ -e "$T/$t" ] && ! [ -L "$T/$t" ] && mv -T -- "$F/$f" "$T/$t" 2>/dev/null; then echo ok; else echo no; fi' sh"#;

/// Why the renames over ssh were not done. Every case falls back to the
/// transfer, which is always right (README "How a sync works", "Moves"); the
/// caller logs the text, the one place it becomes a string.
#[derive(Debug, thiserror::Error)]
pub(super) enum SshRenameError {
    /// The destination is not `host:path`.
    #[error("no host in the destination")]
    NoHost,
    /// The remote shell command line is empty.
    #[error("empty remote shell")]
    EmptyShell,
    /// The mirror's path cannot be quoted for the remote shell (a NUL).
    #[error("cannot quote {dir:?} for the remote shell: {reason}")]
    Unquotable {
        /// The mirror's path on the target.
        dir: String,
        /// What shlex refused.
        reason: shlex::QuoteError,
    },
    /// The ssh was refused or could not be started (`launch.rs` says why).
    #[error("{0}")]
    NotStarted(String),
    /// Writing the names to ssh, or waiting for it, failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// ssh gave no answer in time.
    #[error("timed out")]
    TimedOut,
    /// ssh (or the remote script) failed; the classifier's cause.
    #[error("{0}")]
    Failed(String),
    /// The script answered for another number of moves than it was given.
    #[error("{answers} answers for {moves} moves")]
    Answers {
        /// Lines answered.
        answers: usize,
        /// Moves sent.
        moves: usize,
    },
}

/// The remote command: enter the mirror `dir` physically, then the script.
fn remote_command(dir: &str) -> Result<Vec<u8>, SshRenameError> {
    let dir = if dir.is_empty() { "." } else { dir };
    let quoted =
        shlex::bytes::try_quote(dir.as_bytes()).map_err(|reason| SshRenameError::Unquotable {
            dir: dir.to_string(),
            reason,
        })?;
    let mut remote = b"cd -P -- ".to_vec();
    remote.extend_from_slice(&quoted);
    remote.extend_from_slice(b" && ");
    remote.extend_from_slice(SCRIPT.as_bytes());
    Ok(remote)
}

/// What the script reads: each move's old and new path as `./path`, NUL after
/// each.
fn script_input(job: &Job) -> Vec<u8> {
    let mut stdin = Vec::new();
    for m in &job.moves {
        for name in [&m.from, &m.to] {
            stdin.extend_from_slice(b"./");
            stdin.extend_from_slice(name);
            stdin.push(0);
        }
    }
    stdin
}

/// The `[user@]host` ssh is given and the directory of an ssh destination,
/// as rsync reads them: a bracketed IPv6 host is one host, handed to ssh
/// without its brackets.
fn host_and_dir(destination: &str) -> Option<(String, &str)> {
    let colon = crate::config::checks::first_host_colon(destination)?;
    let host = destination[..colon]
        .replacen('[', "", 1)
        .replacen(']', "", 1);
    Some((host, &destination[colon + 1..]))
}

/// Renames the job's moves over ssh; `true` for each one renamed.
pub(super) async fn rename(job: &Job) -> Result<Vec<bool>, SshRenameError> {
    let (host, dir) = host_and_dir(&job.destination).ok_or(SshRenameError::NoHost)?;
    // The remote shell rsync would use, with our connection sharing if any,
    // split as rsync splits it.
    let rsh = job.remote_shell();
    let mut argv: Vec<OsString> = shlex::split(&rsh)
        .unwrap_or_else(|| rsh.split_whitespace().map(String::from).collect())
        .into_iter()
        .map(OsString::from)
        .collect();
    if argv.is_empty() {
        return Err(SshRenameError::EmptyShell);
    }
    argv.push("--".into());
    argv.push(host.into());
    argv.push(OsString::from_vec(remote_command(dir)?));
    let stdin = script_input(job);
    let label = format!("{} -> {}", job.source.display(), job.destination);
    // The same sandbox as the transfer's (ssh may write nothing locally but its
    // shared-connection directory).
    let (mut child, confinement) =
        match job
            .launch
            .spawn(Kind::RemoteShell, job, &argv, Some(&stdin), &label)
        {
            Launched::Running {
                child, confinement, ..
            } => (child, confinement),
            Launched::Pretended => return Ok(vec![false; job.moves.len()]),
            Launched::Refused(why) | Launched::NotStarted(why) | Launched::SourceChanged(why) => {
                return Err(SshRenameError::NotStarted(why));
            }
        };
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(&stdin).await?;
    }
    let out = tokio::time::timeout(
        job.io_timeout.max(std::time::Duration::from_secs(30)),
        child.wait_with_output(),
    )
    .await
    .map_err(|_| SshRenameError::TimedOut)??;
    if !out.status.success() {
        return Err(SshRenameError::Failed(failure(job, &out, confinement)));
    }
    answers(&out.stdout, job.moves.len())
}

/// One `ok`/`no` line per move, in order.
fn answers(stdout: &[u8], moves: usize) -> Result<Vec<bool>, SshRenameError> {
    let answers: Vec<bool> = String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| l == "ok")
        .collect();
    if answers.len() != moves {
        return Err(SshRenameError::Answers {
            answers: answers.len(),
            moves,
        });
    }
    Ok(answers)
}

/// Why the ssh of the renames failed, as the classifier reads it (it says
/// whether the sandbox kept ssh from reading a key).
fn failure(job: &Job, out: &std::process::Output, confinement: Confinement) -> String {
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
        local: false,
        remote_shell: true,
        listed: Listed::Trees,
        guarded: false,
        confinement,
        target_read_only: None,
    };
    match classify(&ending, &stderr, &context).result {
        RunResult::Refused { cause } | RunResult::Failed { cause, .. } => cause,
        other => format!("{}: {other:?}", out.status),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, symlink};
    use std::process::{Command, Stdio};

    use super::super::Move;
    use super::*;

    /// Runs the remote command with a local `sh` (what ssh would run there).
    fn run_script(mirror: &std::path::Path, pairs: &[(&[u8], &[u8])]) -> Vec<bool> {
        let mut job = Job {
            rsync: "rsync".into(),
            source: "/nonexistent".into(),
            destination: format!("h:{}", mirror.display()),
            speed: 0,
            excludes: Vec::new(),
            extra: Vec::new(),
            rsh: None,
            io_timeout: std::time::Duration::ZERO,
            delete_nothing: false,
            keep_deleted: false,
            compare_contents: false,
            paths: Some(Vec::new()),
            moves: Vec::new(),
            split: 1,
            ..Job::default()
        };
        job.moves = pairs
            .iter()
            .map(|(from, to)| Move {
                from: from.to_vec(),
                to: to.to_vec(),
                fallback: Vec::new(),
            })
            .collect();
        let remote = remote_command(&mirror.display().to_string()).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(OsString::from_vec(remote))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&script_input(&job))
            .unwrap();
        let out = child.wait_with_output().unwrap();
        answers(&out.stdout, pairs.len()).unwrap()
    }

    #[test]
    fn a_parent_whose_name_ends_in_a_newline_is_checked_as_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(mirror.join("d")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("f"), "outside").unwrap();
        let inode = std::fs::metadata(outside.join("f")).unwrap().ino();
        symlink(&outside, mirror.join("d\n")).unwrap();
        std::fs::write(mirror.join("-x"), "x").unwrap();
        std::fs::create_dir(mirror.join("sub\n")).unwrap();
        let answers = run_script(
            &mirror,
            &[
                (b"d\n/f", b"d\n/f2"),
                (b"-x", b"sub\n/-y"),
                (b"sub\n", b"."),
                (b"missing", b"z"),
            ],
        );
        assert_eq!(answers, [false, true, false, false]);
        assert_eq!(std::fs::metadata(outside.join("f")).unwrap().ino(), inode);
        assert!(!outside.join("f2").exists());
        assert!(mirror.join("sub\n/-y").exists());
    }

    #[test]
    fn the_ssh_host_is_the_one_rsync_hands_to_ssh() {
        let cases = [
            ("backup@m1:/srv/www/", "backup@m1", "/srv/www/"),
            ("m1:", "m1", ""),
            ("[::1]:/srv/www/", "::1", "/srv/www/"),
            ("root@[2001:db8::1]:srv", "root@2001:db8::1", "srv"),
        ];
        for (destination, host, dir) in cases {
            assert_eq!(
                host_and_dir(destination),
                Some((host.to_string(), dir)),
                "{destination}"
            );
        }
        assert_eq!(host_and_dir("/srv/www"), None);
    }

    #[test]
    fn a_rename_never_replaces_and_never_leaves_the_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path().join("mirror");
        std::fs::create_dir_all(mirror.join("a/sub")).unwrap();
        std::fs::create_dir(mirror.join("taken")).unwrap();
        symlink(dir.path(), mirror.join("escape")).unwrap();
        let answers = run_script(
            &mirror,
            &[
                (b"a", b"taken"),
                (b"a", b"escape/out"),
                (b"escape/mirror", b"x"),
                (b"a", b"b"),
            ],
        );
        assert_eq!(answers, [false, false, false, true]);
        assert!(!dir.path().join("out").exists() && mirror.join("b/sub").is_dir());
    }
}
