//! One inosync watch as the lsyncd reader builds it from `sync{}` calls:
//! what `syncs.rs` fills in, `rsync_opts.rs` adds rsync's and ssh's settings
//! to, and `emit.rs` writes out as TOML (README "lsyncd configs").

/// One watch to write, with what came from where.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// The lines of the `sync{}` calls it comes from.
    pub lines: Vec<usize>,
    /// `default.rsync`, `default.rsyncssh` or `default.direct`.
    pub layer: String,
    /// `source`.
    pub path: String,
    /// `target`, or `host:targetdir`; one per merged `sync{}`.
    pub targets: Vec<String>,
    /// `exclude` and the plain excludes of `filter`.
    pub excludes: Vec<String>,
    /// `excludeFrom`.
    pub exclude_from: Option<String>,
    /// `delete` in TOML spelling.
    pub delete: Option<&'static str>,
    /// `delay`, seconds.
    pub delay: Option<f64>,
    /// `rsync.bwlimit`, KB/s.
    pub speed: Option<u32>,
    /// `init = false`.
    pub no_init: bool,
    /// rsync options and ssh settings.
    pub rsync_args: Vec<String>,
    /// `rsync.binary`.
    pub rsync_binary: Option<String>,
    /// Settings with no equivalent, each a comment line.
    pub comments: Vec<String>,
}

impl Watch {
    /// Whether two watches differ only in their targets and lines.
    pub(super) fn same_settings(&self, other: &Watch) -> bool {
        let strip = |w: &Watch| Watch {
            lines: Vec::new(),
            targets: Vec::new(),
            comments: Vec::new(),
            ..w.clone()
        };
        strip(self) == strip(other)
    }
}
