//! Manual pages: `inosyncd(8)` is generated from the same clap definitions as
//! `--help`, so its options cannot drift from the binary; the config page
//! `inosync.toml(5)` is written by hand below and must be kept in step with the
//! config reader (a test renders both).

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

/// The config reference, in roff: the keys of the README's "Config (TOML)" and what they mean.
const CONFIG_PAGE: &str = r#".TH INOSYNC.TOML 5 "" "inosync" "File Formats"
.SH NAME
inosync.toml \- configuration of inosyncd
.SH SYNOPSIS
/etc/inosync/inosync.toml
.SH DESCRIPTION
TOML. Unknown keys, wrong types, relative or missing paths, a watch without a
target, nested watches and a local target that can never be made (below a
regular file, on /proc or /sys) are refused with the file, line and key named. A file
whose name ends in .py is read as an inosync 0.2 config instead (literal
assignments only); \fBinosyncd \-\-convert\fR prints its TOML equivalent.
.SH GLOBAL KEYS
.TP
\fBrsync\fR = "/usr/bin/rsync"
The rsync binary (looked up in PATH when bare).
.TP
\fBrsync_args\fR = [ ... ]
Extra raw rsync arguments, appended last.
.TP
\fBspeed\fR = 0
KB/s per rsync process; 0 = unlimited. Runtime: inosyncctl speed.
.TP
\fBdelay\fR = 10.0
Seconds from the first change of a batch to its sync. Runtime: inosyncctl delay.
.TP
\fBmax_parallel\fR = 4
rsync processes at once, all watches and targets together.
.TP
\fBevents\fR = ["IN_CLOSE_WRITE", "IN_CREATE", "IN_DELETE", "IN_MOVED_FROM", "IN_MOVED_TO", "IN_ATTRIB", "IN_MODIFY"]
The inotify events that make a path pending (fanotify uses the same names).
IN_ATTRIB mirrors chmod, chown and touch; IN_MODIFY mirrors a write that is never
followed by a close (truncate by path, a log kept open) once the file has been
quiet for a second (a file written without pause goes out at least every 30 s).
.TP
\fBexcludes\fR = [ ... ]
rsync-style patterns relative to each watch root; never synced, never trigger.
.TP
\fBtargets\fR = [ ... ]
Default targets in rsync syntax: host:, user@host:/dir, rsync://host/module/, /dir.
.TP
\fBlog_file\fR = "/var/log/inosync.log"
Log here instead of stderr; reopened on SIGUSR1.
.TP
\fBsocket_group\fR = "inosync"
Members may use inosyncctl (socket 0660, directory 0750).
.TP
\fBinitial_sync\fR = true
Full sync of every watch at start.
.TP
\fBfull_sync_interval\fR = 0
Seconds between safety-net full syncs; 0 = off.
.TP
\fBverify_interval\fR = 86400
Seconds between dry-run comparisons of every target with its source (niced;
one a day by default); drift is logged (WARN, with the paths) and repaired;
every result is logged and counted (inosync_verifies_total); 0 = off.
.TP
\fBio_timeout\fR = 600
Seconds without data moving before rsync gives up; 0 = off.
.TP
\fBssh_reuse\fR = true
Share one ssh connection per host: target.
.TP
\fBbackend\fR = "auto"
How changes are seen: "fanotify" (one filesystem mark per filesystem; root,
no per-directory set-up, no watch limit), "inotify" (one watch per
directory), or "auto": fanotify where the filesystem can be marked, inotify
otherwise, per watch, logged with the reason. A restart applies a change.
.TP
\fBsandbox\fR = "auto"
Each rsync (and the ssh of the renames) in a Landlock domain: it reads the
system, its source and the ssh files \-\-rsh names, and writes only below a
local target outside every watched tree. An rsync option whose writes are the
transfer itself outside the target (\-\-temp\-dir, \-\-backup\-dir) is refused
before the run, naming it. "off": unconfined; "required": refuse to start
without Landlock, and start no child without a domain.
.TP
\fBmetrics_listen\fR = ""
An address and port such as "127.0.0.1:9477": Prometheus metrics over HTTP at
/metrics. Empty: off. At most 16 connections at once (more are closed at
once), 5 s to send a request's headers, 60 s per connection.
.TP
\fBmetrics_file\fR = ""
An absolute path: the Prometheus text rewritten atomically every 15 s (mode
0644), for node_exporter's textfile collector. Empty: off.
.SH WATCHES
Each [[watch]] table: \fBpath\fR (absolute directory), \fBremote_path\fR
(appended to each target; default: path; "" = the target itself; a ".."
component is refused: the mirror must lie below its target),
\fBexcludes\fR (added to the global ones), \fBtargets\fR (replace the
defaults), \fBdelay\fR, \fBspeed\fR, \fBrsync_args\fR (added to the global
ones for this tree, e.g. ["\-\-compress"] for one WAN target).
.SH SEE ALSO
inosyncd(8), inosyncctl(8), rsync(1)
"#;

/// What follows the generated part of `inosyncd(8)`.
const DAEMON_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
0
Stopped cleanly (SIGTERM, SIGINT); \fB\-\-check\fR: the config is valid.
.TP
1
Start-up refused: a bad config (file, line and key named), no rsync, a watch
that cannot be set up, a socket another live daemon answers on, a state file
that is not ours; or \fB\-\-check\fR found the config invalid.
.TP
2
Usage error on the command line.
.SH SIGNALS
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop reading events, sync what is pending (paused watches and targets in retry
backoff excepted) for at most 30 s, remove the socket and the pid file, exit 0. A second one stops at once;
what was not synced is found by the next start's initial full sync.
.TP
\fBSIGHUP\fR
Reload the config, as \fBinosyncctl reload\fR.
.TP
\fBSIGUSR1\fR
Reopen the log file (after logrotate moved it).
.TP
\fBSIGKILL\fR
Nothing is cleaned up, and the rsync and ssh processes the daemon started go on
(each in a process group of its own). The next start on the same socket stops
them first (SIGTERM, then SIGKILL after 3 s): each carries
\fBINOSYNC_DAEMON\fR=\fIsocket path\fR in its environment.
.SH ENVIRONMENT
.TP
\fBINOSYNC_SOCKET\fR
The control socket, as \fB\-\-socket\fR.
.TP
\fBRUST_LOG\fR
Log filter (tracing-subscriber syntax); overrides \fB\-v\fR.
.TP
\fBXDG_RUNTIME_DIR\fR, \fBXDG_STATE_HOME\fR
Where the socket and the state file go when not run as root.
.TP
\fBNOTIFY_SOCKET\fR, \fBJOURNAL_STREAM\fR
Set by systemd: readiness is reported (Type=notify) and log lines carry no
timestamp or colour.
.SH FILES
.TP
\fI/etc/inosync/inosync.toml\fR
The config (see inosync.toml(5)).
.TP
\fI/run/inosync/inosyncd.sock\fR
The control socket (\fI$XDG_RUNTIME_DIR/inosync/inosyncd.sock\fR when not root);
\fI/run/inosync/ssh/\fR holds the shared ssh connections.
.TP
\fI/var/lib/inosync/state.toml\fR
Runtime changes made with inosyncctl (\fI$XDG_STATE_HOME/inosync/state.toml\fR
when not root), locked while the daemon runs.
.TP
\fITARGET/.../.inosync\-partial/\fR
What rsync received of a file whose transfer was stopped (a speed change, a
shutdown, a broken connection, a full disk): kept beside the file, never in its
place, used and removed by the next transfer of that file; stale ones are
removed by the daemon. A source entry of this name is not mirrored.
.SH "SEE ALSO"
inosyncctl(8), inosync.toml(5), rsync(1)
"#;

/// Writes `inosyncd.8` and `inosync.toml.5` into `dir`.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .section("8")
        .render(&mut page)
        .context("cannot render inosyncd.8")?;
    page.extend_from_slice(DAEMON_SECTIONS.as_bytes());
    for (name, text) in [
        ("inosyncd.8", page.as_slice()),
        ("inosync.toml.5", CONFIG_PAGE.as_bytes()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
