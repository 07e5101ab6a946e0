//! `inosyncctl status --wide`: every column, nothing cut, whatever the width.

use comfy_table::presets::UTF8_HORIZONTAL_ONLY;
use comfy_table::{ContentArrangement, Table};
use inosync_proto::Status;

use super::{header, last_error, seconds, source, speed, state, watch_name, watched};

/// Every column, nothing cut, as wide as it takes (`--wide`).
pub fn render_wide(status: &Status) -> String {
    let mut out = header(status, None);
    let mut table = Table::new();
    table
        .load_preset(UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
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
        for target in &watch.targets {
            table.add_row([
                watch_name(watch),
                watched(watch),
                format!("{} ({})", speed(watch.speed), source(watch.speed_source)),
                format!("{} ({})", seconds(watch.delay), source(watch.delay_source)),
                target.destination.clone(),
                state(target, true),
                target.pending.to_string(),
                target.last_sync.clone().unwrap_or_else(|| "never".into()),
                target.failures.to_string(),
                last_error(target).replace('\n', " | "),
            ]);
        }
    }
    out.push_str(&table.to_string());
    out.push('\n');
    out
}
