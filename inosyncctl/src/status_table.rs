//! `inosyncctl status` for people: one row per (watch, target).

use comfy_table::presets::UTF8_HORIZONTAL_ONLY;
use comfy_table::{ContentArrangement, Table};
use inosync_proto::{Status, TargetState};

/// Renders the status as a header line and a table.
pub fn render(status: &Status) -> String {
    let mut out = format!(
        "inosyncd {} (pid {}): {} watch(es), {} rsync running of max {}, speed {}, delay {} s\n",
        status.version,
        status.pid,
        status.watches.len(),
        status.running,
        status.max_parallel,
        speed(status.speed),
        status.delay
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
            "TARGET",
            "STATE",
            "PENDING",
            "LAST SYNC",
            "FAILURES",
            "LAST ERROR",
        ]);
    for watch in &status.watches {
        for target in &watch.targets {
            let state = match (target.state, target.next_retry_in) {
                (TargetState::Retrying, Some(secs)) => format!("retrying in {secs:.0} s"),
                (state, _) => format!("{state:?}").to_lowercase(),
            };
            table.add_row([
                watch.path.clone(),
                watch.watched_dirs.to_string(),
                target.destination.clone(),
                state,
                target.pending.to_string(),
                target.last_sync.clone().unwrap_or_else(|| "never".into()),
                target.failures.to_string(),
                target.last_error.clone().unwrap_or_default(),
            ]);
        }
    }
    out.push_str(&table.to_string());
    out.push('\n');
    out
}

fn speed(kbps: u32) -> String {
    if kbps == 0 {
        "unlimited".into()
    } else {
        format!("{kbps} KB/s")
    }
}
