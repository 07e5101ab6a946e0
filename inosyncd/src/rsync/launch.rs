//! The one place every child process of the daemon is started: rsync's
//! transfers, verify's dry runs and the ssh of the renames. Each one, before it
//! exists, gets the same four things: `--pretend` (logged, never run), the
//! layout check (a local destination is resolved again now and refused when it
//! leads into a watched tree: a symlink in it may have been re-pointed since
//! start), the sandbox (a Landlock domain built for this child, with the rsync
//! options that would write outside it refused first) and `sandbox =
//! "required"` (no domain, no child).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::classify::Confinement;
use super::command::display_argv;
use super::job::Job;
use super::policy::Launcher;
use super::stdout_file::OutputFile;
use crate::config::checks::is_local_target;
use crate::config::layout::check_destination_now;
use crate::sandbox::{Domain, Rules, RunPaths, SpawnError, writes_outside};

/// What a child is for: it decides what `--pretend` logs and whether its
/// local target is made and its rsync options checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A transfer (a batch, a full sync, the comparison after renames).
    Transfer,
    /// A dry run that only compares (`verify`).
    DryRun,
    /// The remote shell that renames on an ssh target.
    RemoteShell,
}

/// A child started, or why not.
#[derive(Debug)]
pub enum Launched {
    /// Running, with its stdio piped (stdin only when a list is fed).
    Running {
        /// The process.
        child: Child,
        /// The sandbox it runs in, for reading its errors.
        confinement: Confinement,
        /// A transfer's stdout, when it is a memory file rather than a pipe
        /// (see `stdout_file`).
        output: Option<OutputFile>,
    },
    /// `--pretend`: logged, not run.
    Pretended,
    /// Refused before it started (the layout check, an option the sandbox
    /// would refuse): the message names why.
    Refused(String),
    /// Could not be started.
    NotStarted(String),
    /// Not started: its source was removed, moved or replaced by a symlink
    /// a moment ago (`sandbox::source_view`), a race retried soon.
    SourceChanged(String),
}

impl Launcher {
    /// Where `job`'s local target leads now, checked: refused when it leads
    /// into a watched tree, or elsewhere than where it led when first written
    /// to (see `Policy::moved_target`). Every child and the local renames ask
    /// before they touch it.
    pub fn local_target_now(&self, job: &Job) -> Result<PathBuf, String> {
        let trees = self
            .roots
            .iter()
            .map(PathBuf::as_path)
            .chain(std::iter::once(job.source.as_path()));
        let resolved = check_destination_now(&job.destination, trees).map_err(|e| e.to_string())?;
        if let Some(first) = self
            .policy
            .moved_target(&job.destination, &resolved)
            .filter(|_| !crate::config::layout::checks_disabled_for_a_test())
        {
            return Err(format!(
                "the target {} now leads to {}, not to {} as when it was first written to \
                 (a symlink put in its place or above it?): nothing written there; \
                 `inosyncctl reload` (or a restart) takes the new place if it is meant",
                job.destination,
                resolved.display(),
                first.display()
            ));
        }
        Ok(resolved)
    }

    /// Starts `argv` for `job` (its stdin piped when `list` is given, to be
    /// written by the caller), or says why it was not started. `label` names
    /// the watch and target in log lines.
    pub fn spawn(
        &self,
        kind: Kind,
        job: &Job,
        argv: &[OsString],
        list: Option<&[u8]>,
        label: &str,
    ) -> Launched {
        if self.policy.pretend {
            pretend(kind, job, argv, list, label);
            return Launched::Pretended;
        }
        let local = is_local_target(&job.destination);
        let target = if local && kind != Kind::RemoteShell {
            match self.local_target_now(job) {
                Ok(resolved) => Some(resolved),
                Err(why) => return Launched::Refused(why),
            }
        } else {
            None
        };
        let (domain, confinement) = match self.confine(kind, job, target.as_deref()) {
            Ok(confined) => confined,
            Err(NotConfined::Refused(why)) => return Launched::Refused(why),
            Err(NotConfined::Required(why)) => return Launched::NotStarted(why),
        };
        let Some(program) = argv.first() else {
            return Launched::NotStarted("nothing to run".into());
        };
        let mut command = Command::new(program);
        // A child orphaned by a crashed daemon is stopped by the restart before
        // it starts anything (`left_running`).
        if let Some(owner) = &self.policy.owner {
            command.env(crate::left_running::MARK, owner);
        }
        // A verify yields to everything else (see `priority`).
        if kind == Kind::DryRun {
            super::priority::lowest(&mut command);
        }
        command
            // Its own process group, so a stop reaches every process of the
            // run (rsync's own children, a wrapper's).
            .process_group(0)
            .args(&argv[1..])
            // What rsync prints is parsed (byte counts, progress, causes,
            // names): in the C locale, whatever the daemon's own.
            .env("LC_ALL", "C")
            .stdin(if list.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // A transfer prints a progress line after every file: into a memory
        // file the daemon reads every 100 ms, waking nobody (`stdout_file`).
        let output = (kind == Kind::Transfer)
            .then(OutputFile::new)
            .flatten()
            .and_then(|file| Some((file.for_child().ok()?, file)));
        let output = match output {
            Some((stdout, file)) => {
                command.stdout(stdout);
                Some(file)
            }
            None => {
                command.stdout(Stdio::piped());
                None
            }
        };
        // In its sandbox, started from a thread that entered it (no fork).
        // A child that reads the source sees it where its symlinks are not
        // followed, when this daemon can make mount namespaces (`source_view`).
        let reads_source = kind != Kind::RemoteShell && self.policy.source_view;
        let needed: Vec<PathBuf> = if reads_source {
            // A local target reached through a symlink below the view could
            // not be reached there; one named by its real path can.
            let through_a_link = Some(PathBuf::from(&job.destination))
                .filter(|d| local && target.as_ref() != Some(d));
            std::iter::once(job.rsync.clone())
                .chain(through_a_link)
                // ssh's connection directory, when named through a symlink.
                .chain(
                    self.policy
                        .ssh_dir
                        .clone()
                        .filter(|d| std::fs::canonicalize(d).is_ok_and(|real| real != *d)),
                )
                .chain(crate::sandbox::remote_shell_files(&job.remote_shell()))
                .collect()
        } else {
            Vec::new()
        };
        let view = reads_source
            .then(|| crate::sandbox::source_view_place(&job.source, &needed))
            .flatten();
        let spawned = crate::sandbox::spawn(domain.as_ref(), view, &mut command);
        match spawned {
            Ok(child) => Launched::Running {
                child,
                confinement,
                output,
            },
            Err(SpawnError::SourceView(e)) => Launched::SourceChanged(format!(
                "the source changed as rsync was started (removed, moved or replaced by a symlink?): {e}"
            )),
            Err(SpawnError::View(e)) => Launched::NotStarted(format!(
                "cannot show rsync the source without its symlinks: {e} (sandbox = \"off\" \
                 runs without this protection)"
            )),
            Err(SpawnError::Start(e)) => Launched::NotStarted(format!(
                "cannot start {}: {e}",
                Path::new(program).display()
            )),
        }
    }

    /// The domain of one child (`None` when unconfined), or the launch that
    /// refuses it.
    fn confine(
        &self,
        kind: Kind,
        job: &Job,
        target: Option<&Path>,
    ) -> Result<(Option<Domain>, Confinement), NotConfined> {
        if self.policy.sandbox_abi.is_none() {
            if self.policy.required {
                return Err(NotConfined::Required(
                    "sandbox = \"required\" and this kernel has no Landlock".into(),
                ));
            }
            return Ok((None, Confinement::None));
        }
        if kind == Kind::Transfer
            && let Some(target) = target
        {
            // A rule needs an existing directory (--mkpath would make it anyway).
            let _ = std::fs::create_dir_all(target);
        }
        let remote_shell = job.remote_shell();
        let rules = Rules::for_run(&RunPaths {
            rsync: &job.rsync,
            source: &job.source,
            target,
            remote_shell: &remote_shell,
            ssh_dir: self.policy.ssh_dir.as_deref(),
            protected: &self.roots,
        });
        if kind == Kind::Transfer {
            let outside = writes_outside(&job.extra, target, &rules.write);
            if !outside.is_empty() {
                return Err(NotConfined::Refused(format!(
                    "refused by the sandbox before starting: rsync may write only below its \
                     target, and {} would write outside it; move it below the target, or set \
                     sandbox = \"off\"",
                    outside.join(", ")
                )));
            }
        }
        match Domain::build(&rules) {
            Ok(domain) => Ok((
                Some(domain),
                Confinement::Sandboxed {
                    target_writable: !rules.target_withheld,
                },
            )),
            Err(e) if self.policy.required => Err(NotConfined::Required(format!(
                "sandbox = \"required\" and no Landlock domain could be built for this run: {e}"
            ))),
            // The kernel has Landlock: a domain that cannot be built now (a
            // full descriptor table) is a run that waits, never one that runs
            // unconfined (found by a black-box attack).
            Err(e) => Err(NotConfined::Required(format!(
                "no Landlock domain could be built for this run: {e}; it is retried \
                 (sandbox = \"auto\" runs unconfined only on a kernel without Landlock)"
            ))),
        }
    }
}

/// Why a child gets no domain and is not started.
enum NotConfined {
    /// It would be refused what it is for (an option writing outside).
    Refused(String),
    /// No domain could be had where one is due: `sandbox = "required"` on a
    /// kernel without Landlock, or a domain that could not be built.
    Required(String),
}

/// `--pretend`: the command line and what it would read on stdin (or the
/// paths it lists as arguments), one item a line.
fn pretend(kind: Kind, job: &Job, argv: &[OsString], list: Option<&[u8]>, label: &str) {
    let items: Vec<&[u8]> = match (list, &job.paths) {
        (Some(list), _) => {
            // NUL-separated, or one a line (see `Job::needs_nul`).
            let end = if list.contains(&0) { 0 } else { b'\n' };
            list.split(|b| *b == end)
                .filter(|i| !i.is_empty())
                .collect()
        }
        (None, Some(paths)) if kind == Kind::Transfer => paths.iter().map(Vec::as_slice).collect(),
        _ => Vec::new(),
    };
    let what = match kind {
        Kind::Transfer if job.paths.is_some() => format!("{} paths", items.len()),
        Kind::Transfer => "whole tree".to_string(),
        Kind::DryRun => "verify".to_string(),
        Kind::RemoteShell => "renames".to_string(),
    };
    tracing::info!("{label}: would run ({what}): {}", display_argv(argv));
    for item in items {
        tracing::info!("{label}:   {}", String::from_utf8_lossy(item));
    }
}
