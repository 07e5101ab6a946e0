//! `inosyncctl status` for people: a header, then one row per (watch, target)
//! that fits the terminal (80 columns when it is not one): long errors are cut
//! there, and shown whole by `status PATH` (one watch, every field) and
//! `--json`. `--wide` is the full table with every column, whatever its width.

use comfy_table::presets::UTF8_HORIZONTAL_ONLY;
use comfy_table::{ContentArrangement, Table};
use inosync_proto::{Source, Status, TargetState, TargetStatus, WatchStatus};

use crate::fit;

mod wide;
pub use wide::render_wide;

/// Width when stdout is not a terminal and `COLUMNS` does not say.
const DEFAULT_WIDTH: u16 = 80;

/// The WATCH → TARGET column is given at least this much before the error
/// gets the rest: `→ /srv/…/afile/dst`.
const PATH_AT_LEAST: usize = 20;

/// The header: the daemon, its config file, and where its values come from,
/// in three short lines. With a `width` (the table's), a config path too long
/// for it is cut at the start (its file name stays): `--wide`, `status PATH`
/// and `--json` show it whole.
pub(crate) fn header(status: &Status, width: Option<usize>) -> String {
    let config = status
        .config_file
        .as_deref()
        .unwrap_or("none (quick start)");
    let config = match width {
        Some(width) => cut_start(config, width.saturating_sub("config ".len())),
        None => config.to_string(),
    };
    let mut out = format!(
        "inosyncd {} (pid {}), {} watch(es), {} of max {} rsync running\n\
         config {config}\n\
         speed {} ({}), delay {} ({})\n",
        status.version,
        status.pid,
        status.watches.len(),
        status.running,
        status.max_parallel,
        speed(status.speed),
        source(status.speed_source),
        seconds(status.delay),
        source(status.delay_source),
    );
    if let Some(why) = &status.state_file_error {
        out.push_str(&format!("{}\n", unsaved(why)));
    }
    out
}

/// What a state file that cannot be written means for the administrator.
pub(crate) fn unsaved(why: &str) -> String {
    format!("warning: {why}: runtime changes are in force but will not survive a restart")
}

/// `text` in at most `max` characters: its end, after "…" when cut.
fn cut_start(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let kept: String = text.chars().skip(count - max.saturating_sub(1)).collect();
    format!("…{kept}")
}

fn table_width(table: &Table) -> u16 {
    table
        .width()
        .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
        .unwrap_or(DEFAULT_WIDTH)
        .max(40)
}

/// The status as it fits the terminal: every cell is made to fit its column
/// before the table is drawn (paths shortened in the middle, the error
/// wrapped at spaces with its cause first), so nothing is wrapped mid-word.
pub fn render(status: &Status) -> String {
    let width = usize::from(table_width(&Table::new()));
    let mut out = header(status, Some(width));
    if status.watches.is_empty() {
        out.push_str(
            "no watches: add one with `inosyncctl add PATH --target DEST` \
             (DEST is the mirror itself)\n",
        );
        return out;
    }
    let rows: Vec<Row> = status
        .watches
        .iter()
        .flat_map(|w| w.targets.iter().map(move |t| Row::new(w, t)))
        .collect();
    let widest = |header: &str, cell: &dyn Fn(&Row) -> usize| {
        rows.iter()
            .map(cell)
            .max()
            .unwrap_or(0)
            .max(header.chars().count())
    };
    let state_w = widest("STATE", &|r| {
        r.state
            .lines()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
    });
    let pending_w = widest("PENDING", &|r| r.pending.chars().count());
    let last_w = widest("LAST SYNC", &|r| r.last_sync.chars().count());
    // One space of padding on each side of each of the five columns.
    let rest = width.saturating_sub(state_w + pending_w + last_w + 10);
    let path_needed = widest("WATCH → TARGET", &|r| {
        r.watch
            .chars()
            .count()
            .max(r.destination.chars().count() + 2)
    });
    let error_needed = widest("ERROR", &|r| r.error.chars().count());
    // A remote target keeps its host: room for it, `…/` and a few characters.
    let host_needed = rows
        .iter()
        .map(|r| fit::split_head(&r.destination).0.chars().count() + 2 + 2 + 6)
        .max()
        .unwrap_or(0)
        .min(rest.saturating_sub(5));
    let at_least = PATH_AT_LEAST.max(host_needed);
    let mut path_w = if path_needed + error_needed <= rest {
        path_needed
    } else {
        path_needed.min(at_least.max(rest.saturating_sub(error_needed)))
    };
    let mut error_w = rest.saturating_sub(path_w).max(5);
    // The other columns' cells may be wider than measured (a state on two
    // lines, a mark): drawn again, narrower, until the table fits.
    for _ in 0..4 {
        let (table, errors_cut) = draw(&rows, path_w, error_w);
        let drawn = table.to_string();
        let over = drawn
            .lines()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
            .saturating_sub(width);
        if over == 0 || (path_w <= 10 && error_w <= 5) {
            out.push_str(&drawn);
            out.push('\n');
            if errors_cut {
                out.push_str("(errors cut: `inosyncctl status PATH` or --json shows them whole)\n");
            }
            return out;
        }
        let from_error = over.min(error_w.saturating_sub(5));
        error_w -= from_error;
        path_w = path_w.saturating_sub(over - from_error).max(10);
    }
    let (table, errors_cut) = draw(&rows, path_w, error_w);
    out.push_str(&table.to_string());
    out.push('\n');
    if errors_cut {
        out.push_str("(errors cut: `inosyncctl status PATH` or --json shows them whole)\n");
    }
    out
}

/// The table of `rows` with paths fitted to `path_w` and errors to `error_w`;
/// whether an error was cut.
fn draw(rows: &[Row], path_w: usize, error_w: usize) -> (Table, bool) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(["WATCH → TARGET", "STATE", "PENDING", "LAST SYNC", "ERROR"]);
    let mut errors_cut = false;
    for row in rows {
        let (error, cut) = fit::wrap(&row.error, error_w, 3);
        errors_cut |= cut;
        table.add_row([
            format!(
                "{}{}\n→ {}",
                fit::middle(&row.path, path_w.saturating_sub(row.marks.chars().count())),
                row.marks,
                fit::middle(&row.destination, path_w.saturating_sub(2))
            ),
            row.state.clone(),
            row.pending.clone(),
            row.last_sync.clone(),
            error.join("\n"),
        ]);
    }
    (table, errors_cut)
}

/// One (watch, target) row's cells, before they are fitted.
struct Row {
    path: String,
    marks: String,
    watch: String,
    destination: String,
    state: String,
    pending: String,
    last_sync: String,
    error: String,
}

impl Row {
    fn new(watch: &WatchStatus, target: &TargetStatus) -> Row {
        let name = watch_name(watch);
        let path = shown(&watch.path);
        Row {
            marks: name[path.len()..].to_string(),
            path,
            watch: name,
            destination: shown(&target.destination),
            state: match target.failures {
                0 => state(target, false),
                1 => format!("{}\n1 failure", state(target, false)),
                n => format!("{}\n{n} failures", state(target, false)),
            },
            pending: target.pending.to_string(),
            last_sync: target
                .last_sync
                .as_deref()
                .map_or("never".into(), short_time),
            error: crate::cause::cause_first(&last_error(target)),
        }
    }
}

/// One watch, every field, errors whole (`status PATH`).
pub fn render_watch(status: &Status, watch: &WatchStatus) -> String {
    let mut out = header(status, None);
    out.push_str(&format!("\nwatch {}\n", shown(&watch.path)));
    let mut line = |key: &str, value: String| out.push_str(&format!("  {key:<16}{value}\n"));
    line("remote path", format!("{:?}", watch.remote_path));
    line("origin", source(watch.origin).to_string());
    line(
        "backend",
        match &watch.backend_reason {
            Some(reason) => format!("{} ({reason})", watch.backend),
            None => watch.backend.clone(),
        },
    );
    line("watched dirs", watched(watch));
    line(
        "speed",
        format!("{} ({})", speed(watch.speed), source(watch.speed_source)),
    );
    line(
        "delay",
        format!("{} ({})", seconds(watch.delay), source(watch.delay_source)),
    );
    line("excludes", format!("{:?}", watch.excludes));
    if watch.paused {
        line("paused", "yes".into());
    }
    if let Some(degraded) = &watch.degraded {
        line("degraded", degraded.clone());
    }
    if let Some(missing) = &watch.source_missing {
        line("source missing", missing.clone());
    }
    for target in &watch.targets {
        out.push_str(&format!("\n  target {}\n", shown(&target.destination)));
        let mut line = |key: &str, value: String| out.push_str(&format!("    {key:<14}{value}\n"));
        line("state", state(target, true).replace('\n', ", "));
        line("pending", target.pending.to_string());
        line(
            "last sync",
            target.last_sync.clone().unwrap_or_else(|| "never".into()),
        );
        line("failures", target.failures.to_string());
        if let Some(error) = &target.last_error {
            line("last error", error.replace('\n', "\n                  "));
        }
        for held in &target.held {
            line("held", format!("{}: {}", shown(&held.path), held.reason));
        }
    }
    out
}

pub(crate) fn state(target: &TargetStatus, wide: bool) -> String {
    match (target.state, target.next_retry_in, &target.progress) {
        // Due, and waiting for a free slot or a resume.
        (TargetState::Retrying, Some(secs), _) if secs <= 0.0 => "retry due".into(),
        (TargetState::Retrying, Some(secs), _) => format!("retrying in {}", seconds(secs)),
        (TargetState::Syncing, _, Some(p)) if wide => format!(
            "syncing {}%\n{} ETA {}\n{} bytes",
            p.percent, p.rate, p.eta, p.bytes_done
        ),
        (TargetState::Syncing, _, Some(p)) => format!("syncing {}%\nETA {}", p.percent, p.eta),
        (state, _, _) => state.to_string(),
    }
}

/// Seconds as people read them: tenths below 10 s (never "0 s" for 0.4 s).
pub fn seconds(value: f64) -> String {
    if value > 0.0 && value < 10.0 {
        format!("{value:.1} s")
    } else {
        format!("{value:.0} s")
    }
}

/// `2026-11-25T18:37:12Z` as its time of day (the date is kept when it is not
/// today, in UTC as the daemon gives it).
fn short_time(stamp: &str) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let today = now.split_once('T').map_or("", |(date, _)| date);
    match stamp.split_once('T') {
        Some((date, time)) if date == today => time.trim_end_matches('Z').to_string(),
        Some((date, _)) => date.to_string(),
        None => stamp.to_string(),
    }
}

/// How much of the tree is watched: every directory by one fanotify mark, or
/// the count of inotify watches.
pub fn watched(watch: &WatchStatus) -> String {
    if watch.backend == "fanotify" {
        "all (fanotify)".into()
    } else {
        watch.watched_dirs.to_string()
    }
}

/// The watch's path with what is special about it underneath.
pub(crate) fn watch_name(watch: &WatchStatus) -> String {
    let mut name = shown(&watch.path);
    if watch.origin == Source::Runtime {
        name.push_str(" (runtime)");
    }
    if watch.degraded.is_some() {
        name.push_str(" (degraded)");
    }
    if watch.removing {
        name.push_str(" (being removed)");
    } else if watch.paused {
        name.push_str(" (paused)");
    }
    name
}

/// Where a value comes from, in a word.
pub(crate) fn source(source: Source) -> &'static str {
    match source {
        Source::Default => "default",
        Source::Config => "config",
        Source::Runtime => "runtime",
        Source::Global => "global",
        Source::CommandLine => "command line",
    }
}

pub(crate) fn speed(kbps: u32) -> String {
    if kbps == 0 {
        "unlimited".into()
    } else {
        format!("{kbps} KB/s")
    }
}

/// The last error, or what holds paths back when only some paths fail.
pub(crate) fn last_error(target: &TargetStatus) -> String {
    if let Some(error) = &target.last_error {
        return error.clone();
    }
    match target.held.as_slice() {
        [] => String::new(),
        [one] => format!("held: {}: {}", shown(&one.path), one.reason),
        [first, rest @ ..] => format!(
            "{} paths held; {}: {}",
            rest.len() + 1,
            shown(&first.path),
            first.reason
        ),
    }
}

/// A path as the table shows it: a control character (a newline in a name)
/// escaped (`\n`), so that one row stays one row; `--json` has it as it is.
pub(crate) fn shown(path: &str) -> String {
    if !path.chars().any(char::is_control) {
        return path.to_string();
    }
    path.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_never_rounded_to_zero() {
        assert_eq!(seconds(0.4), "0.4 s");
        assert_eq!(seconds(9.96), "10.0 s");
        assert_eq!(seconds(12.4), "12 s");
        assert_eq!(seconds(0.0), "0 s");
    }

    #[test]
    fn a_newline_in_a_path_keeps_its_row_on_one_line() {
        assert_eq!(shown("/srv/a\nb\tc"), "/srv/a\\nb\\tc");
        assert_eq!(shown("/srv/blog é"), "/srv/blog é");
    }
}
