//! Manual pages: `inosyncd(8)` is generated from the same clap definitions as
//! `--help`, so its options cannot drift from the binary; the config page
//! `inosync.toml(5)` takes its defaults from the code (`man_config.rs`).
//! `--man-pages DIR` writes them where `man` looks: DIR/man8, DIR/man5.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

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
backoff, held paths waiting for their retry, excepted) for at most 30 s, remove the socket and the pid file, exit 0. A second one stops at once;
the watches with changes left are kept in the state file and get a full sync
at the next start (also with initial_sync = false).
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
when not root), locked while the daemon runs. Beside it, \fIstate.toml.running\fR
(there while a daemon runs: found at start, the last one did not stop, and every
watch gets a full sync) and \fIstate.toml.pending\fR (the changes seen and not
yet synced, sent again by the next start).
.TP
\fITARGET/.../.inosync\-partial/\fR
What rsync received of a file whose transfer was stopped (a speed change, a
shutdown, a broken connection, a full disk): kept beside the file, never in its
place, used and removed by the next transfer of that file; stale ones are
removed by the daemon. A source entry of this name is not mirrored.
.SH "SEE ALSO"
inosyncctl(8), inosync.toml(5), rsync(1)
"#;

/// Writes `man8/inosyncd.8` and `man5/inosync.toml.5` below `dir` (a man
/// directory such as /usr/local/share/man), printing each path.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .section("8")
        .render(&mut page)
        .context("cannot render inosyncd.8")?;
    page.extend_from_slice(DAEMON_SECTIONS.as_bytes());
    let config_page = crate::man_config::render();
    for (section, name, text) in [
        ("man8", "inosyncd.8", page.as_slice()),
        ("man5", "inosync.toml.5", config_page.as_bytes()),
    ] {
        let section = dir.join(section);
        std::fs::create_dir_all(&section)
            .with_context(|| format!("cannot create {}", section.display()))?;
        let path = section.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
