//! Timestamps as `status` shows them.

use std::time::SystemTime;

/// RFC 3339 in UTC with whole seconds, the format `status --json` promises for `last_sync` (README "Operating at runtime").
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}
