//! `inosync.toml(5)`: the keys' descriptions are written here, their
//! defaults are not: each `\fBkey\fR = value` line is generated from
//! `Config::default()` by the same function `--check` prints with
//! (`settings.rs`), so the page cannot show a default the daemon does not
//! use. A key without a description here, or a description of a key the
//! daemon does not have, fails the unit test below.

use crate::config::Config;
use crate::settings;

/// The page up to the global keys.
const HEAD: &str = r#".TH INOSYNC.TOML 5 "" "inosync" "File Formats"
.SH NAME
inosync.toml \- configuration of inosyncd
.SH SYNOPSIS
/etc/inosync/inosync.toml
.SH DESCRIPTION
TOML. Unknown keys, wrong types, relative or missing paths, a watch without a
target, nested watches and a local target that can never be made (below a
regular file, on /proc or /sys) are refused with the file, line and key named. A file
whose name ends in .py is read as an inosync 0.2 config instead (literal
assignments only); \fBinosyncd \-\-convert\fR prints its TOML equivalent,
as it does for an lsyncd Lua config (see MIGRATING.md).
.SH GLOBAL KEYS
"#;

/// The page after the global keys.
const TAIL: &str = r#".SH WATCHES
Each [[watch]] table: \fBpath\fR (absolute directory), \fBremote_path\fR
(appended to each target; default: path; "" = the target itself; a ".."
component is refused: the mirror must lie below its target),
\fBexcludes\fR and \fBexclude_from\fR (added to the global ones),
\fBdelete\fR (overrides the global one), \fBtargets\fR (replace the
defaults), \fBdelay\fR, \fBspeed\fR, \fBrsync_args\fR (added to the global
ones for this tree, e.g. ["\-\-compress"] for one WAN target).
.SH SEE ALSO
inosyncd(8), inosyncctl(8), rsync(1)
"#;

/// What each global key means, in roff, in the order `--check` prints them.
const KEYS: &[(&str, &str)] = &[
    (
        "rsync",
        r#"The rsync binary (looked up in PATH when bare)."#,
    ),
    ("rsync_args", r#"Extra raw rsync arguments, appended last."#),
    (
        "speed",
        r#"KB/s per rsync process; 0 = unlimited. Runtime: inosyncctl speed."#,
    ),
    (
        "delay",
        r#"Seconds from the first change of a batch to its sync. Runtime: inosyncctl delay."#,
    ),
    (
        "max_parallel",
        r#"rsync processes at once, all watches and targets together."#,
    ),
    (
        "max_parallel_large",
        r#"Of those, how many may be large transfers: full syncs, trees compared whole,
and batches of 2,000 paths or more or of more than 8 MiB. Small batches (a
changed page to many web nodes) run beside them."#,
    ),
    (
        "events",
        r#"The inotify events that make a path pending (fanotify uses the same names).
IN_ATTRIB mirrors chmod, chown and touch; IN_MODIFY mirrors a write that is never
followed by a close (truncate by path, a log kept open) once the file has been
quiet for a second (a file written without pause goes out at least every 30 s)."#,
    ),
    (
        "excludes",
        r#"rsync-style patterns relative to each watch root; never synced, never trigger."#,
    ),
    (
        "exclude_from",
        r#"A file of more exclude patterns, one a line (blank lines and lines starting
with # or ; skipped), added to \fBexcludes\fR; read at start, \-\-check and
reload; an unreadable file is refused naming it."#,
    ),
    (
        "delete",
        r#"Whether what is gone from the source is deleted on the target: true (an exact
mirror), false (never: not in full syncs, deletion runs, verify repairs; a
move is copied and the old name kept), "startup" (only in the initial full
sync), "running" (only for changes seen while running). verify does not count
kept files as drift."#,
    ),
    (
        "targets",
        r#"Default targets in rsync syntax: host:, user@host:/dir, rsync://host/module/, /dir."#,
    ),
    (
        "log_file",
        r#"Log here instead of stderr; reopened on SIGUSR1."#,
    ),
    (
        "socket_group",
        r#"Members may use inosyncctl (socket 0660, directory 0750)."#,
    ),
    ("initial_sync", r#"Full sync of every watch at start."#),
    (
        "full_sync_interval",
        r#"Seconds between safety-net full syncs; 0 = off."#,
    ),
    (
        "verify_interval",
        r#"Seconds between dry-run comparisons of every target with its source (niced;
one a day by default); drift is logged (WARN, with the paths) and repaired;
every result is logged and counted (inosync_verifies_total); 0 = off."#,
    ),
    (
        "io_timeout",
        r#"Seconds without data moving before rsync gives up; 0 = off."#,
    ),
    ("ssh_reuse", r#"Share one ssh connection per host: target."#),
    (
        "backend",
        r#"How changes are seen: "fanotify" (one filesystem mark per filesystem; root,
no per-directory set-up, no watch limit), "inotify" (one watch per
directory), or "auto": fanotify where the filesystem can be marked, inotify
otherwise, per watch, logged with the reason. A restart applies a change."#,
    ),
    (
        "sandbox",
        r#"Each rsync (and the ssh of the renames) in a Landlock domain: it reads the
system, its source and the ssh files \-\-rsh names, and writes only below a
local target outside every watched tree. An rsync option whose writes are the
transfer itself outside the target (\-\-temp\-dir, \-\-backup\-dir) is refused
before the run, naming it. As root, rsync also reads the source in a mount
namespace of its own where the source is mounted nosymfollow: a symlink
swapped into the source cannot be followed. "off": unconfined, no namespace;
"required": refuse to start without Landlock, and start no child without a
domain."#,
    ),
    (
        "metrics_listen",
        r#"An address and port such as "127.0.0.1:9477": Prometheus metrics over HTTP at
/metrics. Empty: off. At most 16 connections at once (more are closed at
once), 5 s to send a request's headers, 60 s per connection."#,
    ),
    (
        "metrics_file",
        r#"An absolute path: the Prometheus text rewritten atomically every 15 s (mode
0644), for node_exporter's textfile collector. Empty: off."#,
    ),
];

/// The page, in roff.
pub fn render() -> String {
    let mut page = HEAD.to_string();
    for setting in settings::global(&Config::default()) {
        let value = match &setting.value {
            Some(value) => format!(" = {}", roff(value)),
            None => " (not set)".to_string(),
        };
        page.push_str(&format!(".TP\n\\fB{}\\fR{value}\n", setting.key));
        let help = KEYS
            .iter()
            .find(|(key, _)| *key == setting.key)
            .map_or("", |(_, help)| *help);
        page.push_str(help);
        page.push('\n');
    }
    page.push_str(TAIL);
    page
}

/// A value as roff shows it literally: hyphens and backslashes escaped.
fn roff(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_description_and_every_description_a_key() {
        let keys: Vec<&str> = settings::global(&Config::default())
            .iter()
            .map(|s| s.key)
            .collect();
        for key in &keys {
            assert!(KEYS.iter().any(|(k, _)| k == key), "{key} is not described");
        }
        for (key, _) in KEYS {
            assert!(keys.contains(key), "{key} is described but not a key");
        }
        assert!(render().contains("IN_ATTRIB"));
    }
}
