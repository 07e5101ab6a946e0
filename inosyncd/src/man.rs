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
target and nested watches are refused with the file, line and key named. A file
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
\fBevents\fR = ["IN_CLOSE_WRITE", "IN_CREATE", "IN_DELETE", "IN_MOVED_FROM", "IN_MOVED_TO"]
The inotify events that make a path pending.
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
\fBverify_interval\fR = 0
Seconds between dry-run comparisons of every target with its source; drift is
logged (WARN, with the paths) and repaired; 0 = off.
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
\fBmetrics_listen\fR = ""
An address and port such as "127.0.0.1:9477": Prometheus metrics over HTTP at
/metrics. Empty: off.
.TP
\fBmetrics_file\fR = ""
An absolute path: the Prometheus text rewritten atomically every 15 s (mode
0644), for node_exporter's textfile collector. Empty: off.
.SH WATCHES
Each [[watch]] table: \fBpath\fR (absolute directory), \fBremote_path\fR
(appended to each target; default: path; "" = the target itself),
\fBexcludes\fR (added to the global ones), \fBtargets\fR (replace the
defaults), \fBdelay\fR, \fBspeed\fR, \fBrsync_args\fR (added to the global
ones for this tree, e.g. ["\-\-compress"] for one WAN target).
.SH SEE ALSO
inosyncd(8), inosyncctl(8), rsync(1)
"#;

/// Writes `inosyncd.8` and `inosync.toml.5` into `dir`.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .section("8")
        .render(&mut page)
        .context("cannot render inosyncd.8")?;
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
