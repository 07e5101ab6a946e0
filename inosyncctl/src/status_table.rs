//! `inosyncctl status` for people: a header line, then one row per (watch, target).

use comfy_table::presets::UTF8_HORIZONTAL_ONLY;
use comfy_table::{ContentArrangement, Table};
use inosync_proto::{Source, Status, TargetState, WatchStatus};

/// Renders the status as a header line and a table.
pub fn render(status: &Status) -> String {
    let mut out = format!(
        "inosyncd {} (pid {}), config {}: {} watch(es), {} rsync running of max {}, speed {} ({}), delay {} s ({})\n",
        status.version,
        status.pid,
        status
            .config_file
            .as_deref()
            .unwrap_or("none (quick start)"),
        status.watches.len(),
        status.running,
        status.max_parallel,
        speed(status.speed),
        source(status.speed_source),
        status.delay,
        source(status.delay_source),
    );
    if status.watches.is_empty() {
        out.push_str("no watches: add one with `inosyncctl add PATH`\n");
        return out;
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "WATCH",
            "DIRS",
            "SPEED",
            "DELAY",
            "TARGET",
            "STATE",
            "PENDING",
            "LAST SYNC",
            "FAILURES",
            "LAST ERROR",
        ]);
    for watch in &status.watches {
        let name = watch_name(watch);
        for target in &watch.targets {
            let state = match (target.state, target.next_retry_in, &target.progress) {
                (TargetState::Retrying, Some(secs), _) => format!("retrying in {secs:.0} s"),
                (TargetState::Syncing, _, Some(p)) => {
                    format!(
                        "syncing {}%\n{} ETA {}\n{} bytes",
                        p.percent, p.rate, p.eta, p.bytes_done
                    )
                }
                (state, _, _) => state.to_string(),
            };
            table.add_row([
                name.clone(),
                watched(watch),
                format!("{} ({})", speed(watch.speed), source(watch.speed_source)),
                format!("{} s ({})", watch.delay, source(watch.delay_source)),
                target.destination.clone(),
                state,
                target.pending.to_string(),
                target.last_sync.clone().unwrap_or_else(|| "never".into()),
                target.failures.to_string(),
                last_error(target),
            ]);
        }
    }
    out.push_str(&table.to_string());
    out.push('\n');
    out
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
fn watch_name(watch: &WatchStatus) -> String {
    let mut name = watch.path.clone();
    if watch.origin == Source::Runtime {
        name.push_str("\n(added at runtime)");
    }
    if watch.degraded.is_some() {
        name.push_str("\n(not every directory watched:\n full syncs keep it right)");
    }
    if watch.removing {
        name.push_str("\n(being removed)");
    } else if watch.paused {
        name.push_str("\n(paused)");
    }
    name
}

/// Where a value comes from, in a word.
fn source(source: Source) -> &'static str {
    match source {
        Source::Default => "default",
        Source::Config => "config",
        Source::Runtime => "runtime",
        Source::Global => "global",
    }
}

fn speed(kbps: u32) -> String {
    if kbps == 0 {
        "unlimited".into()
    } else {
        format!("{kbps} KB/s")
    }
}

/// The last error, or what holds paths back when only some paths fail.
fn last_error(target: &inosync_proto::TargetStatus) -> String {
    if let Some(error) = &target.last_error {
        return error.clone();
    }
    match target.held.as_slice() {
        [] => String::new(),
        [one] => format!("held: {}: {}", one.path, one.reason),
        [first, rest @ ..] => format!(
            "{} paths held; {}: {}",
            rest.len() + 1,
            first.path,
            first.reason
        ),
    }
}
