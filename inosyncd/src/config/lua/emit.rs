//! The converted config as TOML text: lsyncd's `settings` as global keys, each
//! watch as a `[[watch]]`, and every setting with no inosync equivalent as a
//! comment saying why, so the output is also the migration's checklist.

use std::collections::BTreeMap;

use super::eval::Val;
use super::values::{number, shown};
use super::watch::Watch;

/// lsyncd's default `delay` for its rsync layers, in seconds.
const LSYNCD_DELAY: f64 = 15.0;

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The whole TOML config.
pub fn toml(
    file: &str,
    settings: &BTreeMap<String, (Val, usize)>,
    watches: &[Watch],
    warnings: &mut Vec<String>,
) -> String {
    let mut out = format!(
        "# Converted from {file} (lsyncd) by inosyncd --convert.\n\
         # Check it with `inosyncd --check -c THIS_FILE`; see docs/MIGRATING.md.\n"
    );
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "delay = {LSYNCD_DELAY:?}  # seconds: lsyncd's default (watches may set their own)"
    ));
    let binaries: Vec<&String> = watches
        .iter()
        .filter_map(|w| w.rsync_binary.as_ref())
        .collect();
    if let Some(first) = binaries.first() {
        if binaries.iter().all(|b| b == first) {
            line(format!("rsync = {}  # rsync.binary", quote(first)));
        } else {
            line(format!(
                "# rsync.binary differs between syncs: inosync runs one rsync binary; using {}",
                quote(first)
            ));
            line(format!("rsync = {}", quote(first)));
        }
    }
    let no_init = watches.iter().filter(|w| w.no_init).count();
    if no_init > 0 && no_init == watches.len() {
        line("initial_sync = false  # init = false".into());
    } else if no_init > 0 {
        line(
            "# init = false in some syncs only: inosync's initial_sync is global, kept true \
             (the mirrors are made equal at start)"
                .into(),
        );
    }
    for (key, (value, at)) in settings {
        let setting = settings_line(key, value);
        if setting.starts_with('#') && !known_setting(key) {
            warnings.push(format!(
                "{file}:{at}: settings key `{key}` is not one lsyncd documents; left out"
            ));
        }
        line(setting);
    }
    for watch in watches {
        write_watch(&mut line, watch);
    }
    out
}

fn known_setting(key: &str) -> bool {
    [
        "logfile",
        "pidfile",
        "nodaemon",
        "statusFile",
        "statusInterval",
        "logfacility",
        "logident",
        "insist",
        "inotifyMode",
        "maxProcesses",
        "maxDelays",
    ]
    .contains(&key)
}

/// One `settings` key as a TOML line or a comment.
fn settings_line(key: &str, value: &Val) -> String {
    let v = shown(value);
    match (key, value) {
        ("logfile", Val::Str(path)) if path.starts_with('/') => {
            format!("log_file = {}  # settings.logfile", quote(path))
        }
        ("maxProcesses", _)
            if number(value)
                .is_ok_and(|n| n >= 1.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX)) =>
        {
            format!(
                "max_parallel = {}  # settings.maxProcesses (rsync processes at once, all watches)",
                number(value).unwrap_or(1.0)
            )
        }
        ("logfile", _) => format!("# logfile = {v}: log_file must be an absolute path; left out"),
        ("pidfile", _) => format!(
            "# pidfile = {v}: give `--pid-file {}` on inosyncd's command line (with --daemon)",
            v.trim_matches('"')
        ),
        ("nodaemon", _) => format!(
            "# nodaemon = {v}: inosyncd stays in the foreground unless started with --daemon"
        ),
        ("statusFile", _) => format!(
            "# statusFile = {v}: no status file; `inosyncctl status` shows each watch and \
             target, and metrics_file writes the metrics to a file"
        ),
        ("statusInterval", _) => {
            format!("# statusInterval = {v}: no status file to rewrite (see statusFile)")
        }
        ("logfacility" | "logident", _) => format!(
            "# {key} = {v}: inosyncd logs to stderr (the journal under systemd) or to log_file, \
             not to syslog directly"
        ),
        ("insist", _) => format!(
            "# insist = {v}: inosyncd always starts and retries a remote target that cannot \
             be reached at start"
        ),
        ("inotifyMode", _) => format!(
            "# inotifyMode = {v}: inosync's default events see both close-write and modify \
             (set `events` to narrow them)"
        ),
        ("maxDelays", _) => format!(
            "# maxDelays = {v}: no equivalent; a batch starts after `delay`, and one too large \
             to list becomes a full sync"
        ),
        ("maxProcesses", _) => format!(
            "# maxProcesses = {v}: {}; left out (max_parallel keeps its default)",
            match value {
                Val::Num(n) if *n > f64::from(u32::MAX) => "too large for max_parallel",
                Val::Num(n) if *n < 1.0 => "max_parallel must be at least 1",
                Val::Num(_) => "not a whole number of processes",
                _ => "not a number",
            }
        ),
        (other, _) => format!("# {other} = {v}: not a setting lsyncd documents; left out"),
    }
}

fn write_watch(line: &mut impl FnMut(String), watch: &Watch) {
    let lines: Vec<String> = watch.lines.iter().map(|l| l.to_string()).collect();
    line(String::new());
    line(format!(
        "[[watch]]  # sync{{}} on line {} ({})",
        lines.join(", "),
        watch.layer
    ));
    line(format!("path = {}", quote(&watch.path)));
    line("remote_path = \"\"  # each target is the destination itself, as in lsyncd".into());
    line(format!("targets = {}", list(&watch.targets)));
    if !watch.excludes.is_empty() {
        line(format!("excludes = {}", list(&watch.excludes)));
    }
    if let Some(file) = &watch.exclude_from {
        line(format!("exclude_from = {}  # excludeFrom", quote(file)));
    }
    if let Some(delete) = watch.delete {
        line(format!("delete = {delete}"));
    }
    if let Some(delay) = watch.delay {
        line(format!("delay = {delay:?}"));
    }
    if let Some(speed) = watch.speed {
        line(format!("speed = {speed}  # KB/s, rsync.bwlimit"));
    }
    if !watch.rsync_args.is_empty() {
        line(format!("rsync_args = {}", list(&watch.rsync_args)));
    }
    if watch.layer == "default.direct" {
        line(
            "# default.direct: lsyncd copies with cp/mv/rm; inosync runs rsync to the local \
             target (same result)"
                .into(),
        );
    }
    if watch.layer == "default.rsyncssh" {
        line(
            "# default.rsyncssh: lsyncd moves and deletes over ssh; inosync renames over its \
             own ssh connection and deletes with rsync (same result)"
                .into(),
        );
    }
    for comment in &watch.comments {
        line(format!("# {comment}"));
    }
}
