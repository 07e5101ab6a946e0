//! What a finished run means, decided in one pure function from how the child
//! ended and what it printed on stderr: synced, partly synced with the paths to
//! hold, refused by the sandbox (or by the layout check before it started),
//! failed by class, stopped. Every caller matches on the result; none reads an
//! exit code again. The table in `tests.rs` holds every case the daemon knows.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::exit_code::{class_of, meaning};
use super::outcome::{FailureClass, RunResult};
use super::stderr::{Stderr, named_in_lines, names_in, unescape};

#[cfg(test)]
mod tests;

/// How a child ended, as its supervisor saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Not started: the layout check or the sandbox refused it first.
    Refused(String),
    /// Could not be started (no such binary, `sandbox = "required"` without a
    /// domain).
    NotStarted(String),
    /// Not started: the source changed under the start (removed, moved or
    /// replaced by a symlink a moment ago).
    SourceChanged(String),
    /// `--pretend`: logged, never run.
    Pretended,
    /// Stopped on request.
    Stopped,
    /// Stopped by the watchdog after moving no data for this long.
    Hung(Duration),
    /// Stopped while it waited to open a fifo that took a listed file's place
    /// (see `stuck`).
    StuckOnFifo,
    /// Exited by itself with this code.
    Exited(i32),
    /// Killed by a signal that was not ours.
    Signalled(String),
    /// Its exit could not be waited for.
    Lost(String),
}

/// Which paths a run was given, which decides what can be held.
#[derive(Debug, Clone, Copy)]
pub enum Listed<'a> {
    /// A full sync: every path rsync's errors name is the run's.
    Whole,
    /// A batch of changed paths: a named path is held when it is listed, lies
    /// below a listed one or has one below it.
    Paths(&'a [Vec<u8>]),
    /// Made directories walked, and files beside them (see `made.rs`): a
    /// named path in or above them is held itself (what the batch had below
    /// a held directory goes again, listed: `engine/pair/run.rs`).
    Walked(&'a [Vec<u8>]),
    /// Trees compared whole (after renames): nothing is held (a tree root held
    /// alone would be retried without its contents, and an error makes rsync
    /// skip the tree's deletions, which only a retry of the whole does).
    Trees,
    /// Trees compared whole that delete nothing (`delete = false`): a named
    /// path is held, the rest arrived (nothing was skipped for it). A
    /// directory that a file replaces in the source is named so: without
    /// `--force` rsync does not delete it, and the file waits, held, in status.
    KeptTrees,
}

/// The sandbox a run was in, as far as reading its errors goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement {
    /// Not sandboxed: an EACCES is the filesystem's.
    None,
    /// Sandboxed; `target_writable` is false when the local target resolved
    /// into a watched tree and got no write access at all.
    Sandboxed {
        /// Whether rsync may write below its local target.
        target_writable: bool,
    },
}

/// What the classifier knows about the run besides its ending.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The watch root.
    pub source: &'a Path,
    /// The destination as given to rsync.
    pub destination: &'a str,
    /// Whether the destination is a local directory (else rsync's receiver runs
    /// on another host, outside this sandbox).
    pub local: bool,
    /// Whether rsync reaches the destination through ssh.
    pub remote_shell: bool,
    /// The paths the run was given.
    pub listed: Listed<'a>,
    /// A full sync that may delete nothing (`--max-delete=0`): exit 25 means the
    /// target has files the empty source lacks.
    pub guarded: bool,
    /// The sandbox it ran in.
    pub confinement: Confinement,
    /// Whether a local target's own filesystem is mounted read-only, read
    /// when the run ended (`None`: remote, or unknown): a "Read-only file
    /// system" below a writable one is a corner of the target (a read-only
    /// mount inside it), whose paths are held, not the target's fault.
    pub target_read_only: Option<bool>,
}

/// Whether the filesystem of the local destination `destination` is
/// mounted read-only (`statvfs`), or `None` for a remote one or when it
/// cannot be asked.
pub fn read_only(destination: &str) -> Option<bool> {
    use std::os::unix::ffi::OsStrExt;
    if !crate::config::checks::is_local_target(destination) {
        return None;
    }
    let c_path = std::ffi::CString::new(Path::new(destination).as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct we own from a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_flag & libc::ST_RDONLY != 0)
}

/// A classified run.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// What it means for the batch.
    pub result: RunResult,
    /// Paths rsync saw vanish (looked at again in the next batch).
    pub vanished: Vec<Vec<u8>>,
    /// Writes beside the transfer that the sandbox refused (removing source
    /// files, a log file): reported on a run that counts as done.
    pub refused_beside: Vec<String>,
}

/// What the sandbox refused, read off one error line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A write beside the transfer: the transfer itself was done.
    Beside,
    /// A write the transfer needed (a temp file, a backup, a batch file, the
    /// target itself): the run did not do its job.
    Transfer,
}

/// Classifies a finished run. Pure: the same ending, lines and context always
/// give the same result.
pub fn classify(ending: &Ending, stderr: &Stderr, context: &Context) -> Classified {
    let plain = |result| Classified {
        result,
        vanished: Vec::new(),
        refused_beside: Vec::new(),
    };
    let failed = |class, cause: String| plain(RunResult::Failed { class, cause });
    match ending {
        Ending::Pretended => plain(RunResult::Synced),
        Ending::Stopped => plain(RunResult::Interrupted),
        Ending::Refused(cause) => plain(RunResult::Refused {
            cause: cause.clone(),
        }),
        Ending::NotStarted(cause) => failed(FailureClass::Misconfiguration, cause.clone()),
        Ending::SourceChanged(cause) => failed(FailureClass::Race, cause.clone()),
        Ending::Hung(limit) => failed(
            FailureClass::Transient,
            format!("rsync hung: no data moved for {limit:?}; stopped by the watchdog"),
        ),
        Ending::StuckOnFifo => failed(
            FailureClass::Transient,
            "rsync was stuck opening a fifo that took a file's place mid-run; stopped".into(),
        ),
        Ending::Signalled(how) => failed(
            FailureClass::Transient,
            format!("rsync was killed by a signal ({how})"),
        ),
        Ending::Lost(why) => failed(
            FailureClass::Transient,
            format!("cannot wait for rsync: {why}"),
        ),
        Ending::Exited(code) => exited(*code, stderr, context),
    }
}

fn exited(code: i32, stderr: &Stderr, context: &Context) -> Classified {
    let vanished = stderr.vanished(context.source);
    let refusals: Vec<(&str, Refusal)> = stderr
        .error_lines()
        .filter_map(|line| refusal(line, context).map(|r| (line, r)))
        .collect();
    let beside: Vec<String> = refusals
        .iter()
        .filter(|(_, r)| *r == Refusal::Beside)
        .map(|(line, _)| line.to_string())
        .collect();
    let done = |result| Classified {
        result,
        vanished: vanished.clone(),
        refused_beside: beside.clone(),
    };
    let summary = |cause: &str| {
        let detail = if cause.is_empty() {
            String::new()
        } else {
            format!(": {cause}")
        };
        format!("rsync exited with {code} ({}){detail}", meaning(code))
    };
    let transfer_refusals: Vec<&str> = refusals
        .iter()
        .filter(|(_, r)| *r == Refusal::Transfer)
        .map(|(line, _)| *line)
        .collect();
    if !transfer_refusals.is_empty() {
        return done(RunResult::Refused {
            cause: format!(
                "refused by the sandbox: rsync may write only below its target, and it was \
                 refused a write the transfer needs (an rsync_args option such as --temp-dir \
                 or --backup-dir reaching outside the mirror?): {}",
                transfer_refusals.join(" | ")
            ),
        });
    }
    if code == 0 || code == 24 {
        return done(RunResult::Synced);
    }
    if context.confinement
        == (Confinement::Sandboxed {
            target_writable: false,
        })
    {
        return done(RunResult::Refused {
            cause: format!(
                "refused by the sandbox: the target {} resolves into a watched tree, so rsync \
                 may write nothing there: {}",
                context.destination,
                summary(&stderr.cause())
            ),
        });
    }
    if code == 25 && context.guarded {
        return done(RunResult::SourceEmpty);
    }
    if code == 2 && stderr.sender_raced() {
        return done(RunResult::Failed {
            class: FailureClass::Race,
            cause: summary(&stderr.cause()),
        });
    }
    if code == 23 {
        return done(partial(stderr, context, &summary));
    }
    // An rsync daemon at its `max connections` answers "try again later":
    // busy, not misconfigured (retried from 30 s, every change to such a
    // daemon's modules waited half a minute; a black-box attack).
    if code == 5
        && stderr
            .lines()
            .any(|l| l.starts_with("@ERROR: max connections") && l.contains("try again later"))
    {
        return done(RunResult::Failed {
            class: FailureClass::Transient,
            cause: summary(&stderr.cause()),
        });
    }
    // ssh that failed at its start: rsync exits 255, or 12 when it sees the
    // pipe close before it reaps ssh (a race: the CI rehearsal once).
    let ssh_died = code == 255
        || (code == 12
            && stderr
                .lines()
                .any(|l| l.contains("connection unexpectedly closed (0 bytes received so far)")));
    if ssh_died && context.remote_shell {
        return done(ssh_failed(stderr, context, &summary));
    }
    done(RunResult::Failed {
        class: class_of(code),
        cause: summary(&stderr.cause()),
    })
}

/// Exit 23, "some files were not transferred": the paths of the run that its
/// errors name are held, the rest arrived. Errors that are only refusals beside
/// the transfer leave it done; errors that name nothing of the run fail it.
fn partial(stderr: &Stderr, context: &Context, summary: &dyn Fn(&str) -> String) -> RunResult {
    let errors: Vec<&str> = stderr
        .error_lines()
        .filter(|line| refusal(line, context).is_none())
        .filter(|line| !line.starts_with("rsync error: "))
        .collect();
    if errors.is_empty() && stderr.error_lines().any(|l| refusal(l, context).is_some()) {
        return RunResult::Synced;
    }
    if errors
        .iter()
        .any(|line| the_targets_own(line, context.target_read_only))
    {
        return RunResult::Failed {
            class: FailureClass::Transient,
            cause: summary(&stderr.cause()),
        };
    }
    let named = as_files(
        named_in_lines(errors.iter().copied(), context.source, context.destination),
        context.source,
    );
    let held = match context.listed {
        Listed::Whole => named,
        Listed::Paths(listed) => named_in(listed, &named),
        Listed::Walked(walked) => named_related(walked, named),
        // A directory a file replaces, or one to delete, that holds what an
        // exclude protects can never be done, the same at every retry: held,
        // the rest arrived (its deletions were not skipped for it). Any other
        // error fails the trees (see `Listed::Trees`).
        Listed::Trees if errors.iter().all(|line| blocked_by_protected(line)) => named,
        Listed::Trees => Vec::new(),
        Listed::KeptTrees => named,
    };
    let cause = summary(&stderr.cause());
    if held.is_empty() {
        RunResult::Failed {
            class: FailureClass::Transient,
            cause,
        }
    } else {
        RunResult::Partial { held, cause }
    }
}

/// Whether an error line is the target's fault as a whole, whatever path it
/// names: its filesystem read-only, full, or over quota, on the receiving
/// side. Every path of the run would fail alike; held apart, each was
/// retried on its own backoff, and a 5,000-file burst came back over five
/// minutes once the target was writable again, while `status` showed no
/// failure and no error (a black-box attack). The run fails as a whole, with
/// the target's backoff.
///
/// A read-only error under a local target whose own filesystem is writable
/// is a read-only mount inside it: its paths are held, the rest goes (a
/// review: failed as a whole, it stopped every change to that target).
fn the_targets_own(line: &str, target_read_only: Option<bool>) -> bool {
    const TARGET_WIDE: [&str; 2] = ["No space left on device (28)", "Disk quota exceeded (122)"];
    if line.contains("[sender]") {
        return false;
    }
    TARGET_WIDE.iter().any(|e| line.contains(e))
        || (line.contains("Read-only file system (30)") && target_read_only != Some(false))
}

/// Whether an error line says a directory stays because of what it holds:
/// rsync could not replace it by a file, or delete it.
fn blocked_by_protected(line: &str) -> bool {
    line.starts_with("could not make way for new ")
        || line.starts_with("cannot delete non-empty directory: ")
}

/// Exit 255 through ssh: when ssh ran in the sandbox, say whether it was
/// refused a read (a key, a config file the sandbox was not told of).
fn ssh_failed(stderr: &Stderr, context: &Context, summary: &dyn Fn(&str) -> String) -> RunResult {
    let cause = summary(&stderr.cause());
    if context.confinement == Confinement::None {
        return RunResult::Failed {
            class: FailureClass::Transient,
            cause,
        };
    }
    let unread: Vec<&str> = stderr.lines().filter(|l| is_read_refusal(l)).collect();
    if unread.is_empty() {
        return RunResult::Failed {
            class: FailureClass::Transient,
            cause: format!("{cause} (ssh reported no file the sandbox kept it from reading)"),
        };
    }
    RunResult::Refused {
        cause: format!(
            "refused by the sandbox: ssh may read only the system, ~/.ssh and the files \
             --rsh names (-i, -F, -o IdentityFile=, UserKnownHostsFile=, CertificateFile=), \
             and it could not read: {}; name the file in --rsh",
            unread.join(" | ")
        ),
    }
}

/// An ssh line saying a local file could not be read: `Load key "F":
/// Permission denied`, `Can't open user config file F: Permission denied`. Not
/// the server's `Permission denied (publickey)`, which names no file.
fn is_read_refusal(line: &str) -> bool {
    !line.starts_with("rsync")
        && line.trim_end().ends_with("Permission denied")
        && line.contains('/')
}

/// What, if anything, the sandbox refused in one error line: EACCES (the
/// sandbox's refusal) from a process on this host (the sender and client
/// always; the receiver too when the target is local), on a path outside the
/// mirror and the source, or anywhere when the target itself got no write.
fn refusal(line: &str, context: &Context) -> Option<Refusal> {
    let Confinement::Sandboxed { target_writable } = context.confinement else {
        return None;
    };
    let here = context.local || line.contains("[sender]") || line.contains("[client]");
    if !line.contains("Permission denied (13)") || !here {
        return None;
    }
    if line.contains("failed to remove") || line.contains("log-file") {
        return Some(Refusal::Beside);
    }
    let outside = |name: &&str| {
        let name = unescape(name);
        let path = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&name));
        let mirror = Path::new(context.destination.trim_end_matches('/'));
        let lexical = normalize(&if path.is_absolute() || !context.local {
            path.to_path_buf()
        } else {
            mirror.join(path)
        });
        let in_mirror = context.local && lexical.starts_with(mirror);
        (!in_mirror || !target_writable) && !lexical.starts_with(context.source)
    };
    names_in(line)
        .iter()
        .any(outside)
        .then_some(Refusal::Transfer)
}

/// `a/./b/../c` as `a/c`, without looking at the filesystem (what an error line
/// names may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The listed paths that rsync's errors name: a listed path that is named, lies
/// below a named one, or has a named one below it.
/// The named paths with rsync's temp file of a file (`DIR/.NAME.XXXXXX`, a
/// name the source does not have) read as the file: a failed `mkstemp` or
/// rename of the temp file is the file's failure (otherwise it counted as
/// arrived when another path of the run was named too).
fn as_files(named: Vec<Vec<u8>>, source: &Path) -> Vec<Vec<u8>> {
    let in_source = |p: &[u8]| {
        source
            .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(p))
            .symlink_metadata()
            .is_ok()
    };
    let files: std::collections::BTreeSet<Vec<u8>> = named
        .into_iter()
        .map(|n| match crate::rsync::file_of_temp(&n) {
            Some(file) if !in_source(&n) => file,
            _ => n,
        })
        .collect();
    files.into_iter().collect()
}

/// The named paths that are one of `walked`, lie below one or have one below
/// them.
fn named_related(walked: &[Vec<u8>], named: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    named
        .into_iter()
        .filter(|n| !named_in(walked, std::slice::from_ref(n)).is_empty())
        .collect()
}

pub fn named_in(listed: &[Vec<u8>], named: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let under = |a: &[u8], b: &[u8]| a.len() > b.len() && a.starts_with(b) && a[b.len()] == b'/';
    listed
        .iter()
        .filter(|l| named.iter().any(|n| n == *l || under(n, l) || under(l, n)))
        .cloned()
        .collect()
}
