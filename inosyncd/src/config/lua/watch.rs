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
    /// Whether two watches differ only in their targets, lines and comments.
    /// Field by field, never cloning: a watch that gathers thousands of
    /// targets is compared once per `sync{}`, and copying its targets each
    /// time made the conversion quadratic.
    pub(super) fn same_settings(&self, other: &Watch) -> bool {
        let Watch {
            lines: _,
            layer,
            path,
            targets: _,
            excludes,
            exclude_from,
            delete,
            delay,
            speed,
            no_init,
            rsync_args,
            rsync_binary,
            comments: _,
        } = self;
        *layer == other.layer
            && *path == other.path
            && *excludes == other.excludes
            && *exclude_from == other.exclude_from
            && *delete == other.delete
            && *delay == other.delay
            && *speed == other.speed
            && *no_init == other.no_init
            && *rsync_args == other.rsync_args
            && *rsync_binary == other.rsync_binary
    }
}
