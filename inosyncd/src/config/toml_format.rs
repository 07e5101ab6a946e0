//! The TOML config (README "Config (TOML)"), read strictly: unknown keys, wrong types and bad
//! values are errors naming the file, the line and the key.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

mod locator;

use locator::Locator;

use super::{
    Backend, Config, ConfigError, DeleteMode, EventSet, WatchConfig, checks, exclude_file,
};

/// `delete` as written: a boolean or one of the words.
enum RawDelete {
    Flag(bool),
    Word(String),
}

/// By hand, so that a wrong type says what is expected.
impl<'de> Deserialize<'de> for RawDelete {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Expected;
        impl serde::de::Visitor<'_> for Expected {
            type Value = RawDelete;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, \"startup\" or \"running\"")
            }
            fn visit_bool<E>(self, flag: bool) -> Result<RawDelete, E> {
                Ok(RawDelete::Flag(flag))
            }
            fn visit_str<E>(self, word: &str) -> Result<RawDelete, E> {
                Ok(RawDelete::Word(word.to_string()))
            }
        }
        deserializer.deserialize_any(Expected)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rsync: Option<Spanned<String>>,
    rsync_args: Option<Vec<String>>,
    speed: Option<u32>,
    delay: Option<Spanned<f64>>,
    max_parallel: Option<Spanned<u32>>,
    max_parallel_large: Option<Spanned<u32>>,
    events: Option<Spanned<Vec<String>>>,
    excludes: Option<Vec<Spanned<String>>>,
    exclude_from: Option<Spanned<String>>,
    delete: Option<Spanned<RawDelete>>,
    targets: Option<Vec<Spanned<String>>>,
    log_file: Option<Spanned<String>>,
    socket_group: Option<String>,
    initial_sync: Option<bool>,
    full_sync_interval: Option<Spanned<f64>>,
    verify_interval: Option<Spanned<f64>>,
    io_timeout: Option<Spanned<f64>>,
    ssh_reuse: Option<bool>,
    backend: Option<Spanned<String>>,
    sandbox: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    metrics_file: Option<Spanned<String>>,
    #[serde(default)]
    watch: Vec<Spanned<RawWatch>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    path: Spanned<String>,
    remote_path: Option<Spanned<String>>,
    excludes: Option<Vec<Spanned<String>>>,
    exclude_from: Option<Spanned<String>>,
    delete: Option<Spanned<RawDelete>>,
    targets: Option<Vec<Spanned<String>>>,
    delay: Option<Spanned<f64>>,
    speed: Option<u32>,
    rsync_args: Option<Vec<String>>,
}

/// Parses and checks a TOML config.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw = read_raw(file, text)?;
    let loc = Locator::new(file, text);
    let defaults = Config::default();

    check_globals(&raw, &loc)?;
    let events = match &raw.events {
        Some(names) => {
            EventSet::from_names(names.get_ref()).map_err(|e| loc.error(names, "events", &e))?
        }
        None => defaults.events,
    };
    let backend = match &raw.backend {
        Some(name) => name
            .get_ref()
            .parse::<Backend>()
            .map_err(|e| loc.error(name, "backend", &e))?,
        None => defaults.backend,
    };
    let sandbox = match &raw.sandbox {
        Some(name) => name
            .get_ref()
            .parse::<crate::sandbox::Mode>()
            .map_err(|e| loc.error(name, "sandbox", &e))?,
        None => defaults.sandbox,
    };
    let metrics_listen = match &raw.metrics_listen {
        Some(addr) if !addr.get_ref().is_empty() => Some(addr.get_ref().parse().map_err(|_| {
            loc.error(
                addr,
                "metrics_listen",
                "must be an address and port such as \"127.0.0.1:9477\" (or \"\" for none)",
            )
        })?),
        _ => None,
    };
    let metrics_file = match &raw.metrics_file {
        Some(file) if !file.get_ref().is_empty() => {
            if !Path::new(file.get_ref()).is_absolute() {
                return Err(loc.error(file, "metrics_file", "must be an absolute path"));
            }
            Some(file.get_ref().into())
        }
        _ => None,
    };
    let mut excludes = patterns(&loc, raw.excludes, "excludes")?;
    let exclude_from = read_exclude_from(&loc, raw.exclude_from, "exclude_from", &mut excludes)?;
    let delete = match &raw.delete {
        Some(mode) => delete_mode(&loc, mode, "delete")?,
        None => defaults.delete,
    };
    let default_targets = targets(&loc, raw.targets, "targets")?;
    if let Some(log_file) = &raw.log_file
        && !Path::new(log_file.get_ref()).is_absolute()
    {
        return Err(loc.error(log_file, "log_file", "must be an absolute path"));
    }

    let mut watch_lines = Vec::new();
    let mut watches = Vec::new();
    for spanned in raw.watch {
        watch_lines.push(loc.at(&spanned, "[[watch]]"));
        watches.push(watch_config(&loc, spanned.into_inner())?);
    }

    let config = Config {
        source: None,
        rsync: raw
            .rsync
            .map(|r| r.into_inner().into())
            .unwrap_or(defaults.rsync),
        rsync_args: raw.rsync_args.unwrap_or_default(),
        speed: raw.speed.unwrap_or(defaults.speed),
        delay: raw.delay.map(Spanned::into_inner).unwrap_or(defaults.delay),
        max_parallel: raw
            .max_parallel
            .map(Spanned::into_inner)
            .unwrap_or(defaults.max_parallel),
        max_parallel_large: raw
            .max_parallel_large
            .map(Spanned::into_inner)
            .unwrap_or(defaults.max_parallel_large),
        events,
        excludes,
        exclude_from,
        delete,
        targets: default_targets,
        log_file: raw.log_file.map(|f| f.into_inner().into()),
        socket_group: raw.socket_group,
        initial_sync: raw.initial_sync.unwrap_or(defaults.initial_sync),
        full_sync_interval: raw
            .full_sync_interval
            .map(Spanned::into_inner)
            .unwrap_or(defaults.full_sync_interval),
        verify_interval: raw
            .verify_interval
            .map(Spanned::into_inner)
            .unwrap_or(defaults.verify_interval),
        io_timeout: raw
            .io_timeout
            .map(Spanned::into_inner)
            .unwrap_or(defaults.io_timeout),
        ssh_reuse: raw.ssh_reuse.unwrap_or(defaults.ssh_reuse),
        backend,
        sandbox,
        metrics_listen,
        metrics_file,
        watches,
    };
    refuse_rsync_args_that_delete(&config, &watch_lines)?;
    config.check_watches(|i| watch_lines[i].clone())?;
    Ok(config)
}

/// The file as TOML, read strictly; `[watch]` for `[[watch]]` gets a hint.
fn read_raw(file: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        // `[watch]` is one table where the config wants an array of them: toml
        // says "invalid type: map, expected a sequence", which names neither.
        let single_watch = e
            .span()
            .and_then(|span| text.get(span))
            .is_some_and(|t| t.trim() == "[watch]");
        let hint = if single_watch {
            "\neach watch is an entry of an array of tables: write [[watch]] (two brackets)"
        } else {
            ""
        };
        ConfigError(format!(
            "{}: {}{hint}",
            file.display(),
            e.to_string().trim_end()
        ))
    })
}

/// The global values that must be in range: named with their file and line.
fn check_globals(raw: &RawConfig, loc: &Locator) -> Result<(), ConfigError> {
    if let Some(rsync) = &raw.rsync
        && rsync.get_ref().is_empty()
    {
        return Err(loc.error(rsync, "rsync", "must name the rsync binary"));
    }
    if let Some(delay) = &raw.delay {
        checks::seconds(*delay.get_ref()).map_err(|e| loc.error(delay, "delay", &e))?;
    }
    if let Some(interval) = &raw.full_sync_interval {
        checks::seconds(*interval.get_ref())
            .map_err(|e| loc.error(interval, "full_sync_interval", &e))?;
    }
    if let Some(interval) = &raw.verify_interval {
        checks::seconds(*interval.get_ref())
            .map_err(|e| loc.error(interval, "verify_interval", &e))?;
    }
    if let Some(timeout) = &raw.io_timeout {
        checks::seconds(*timeout.get_ref()).map_err(|e| loc.error(timeout, "io_timeout", &e))?;
    }
    for (max, key) in [
        (&raw.max_parallel, "max_parallel"),
        (&raw.max_parallel_large, "max_parallel_large"),
    ] {
        if let Some(max) = max
            && *max.get_ref() == 0
        {
            return Err(loc.error(max, key, "must be at least 1"));
        }
    }
    Ok(())
}

/// One `[[watch]]` table, checked.
fn watch_config(loc: &Locator, raw_watch: RawWatch) -> Result<WatchConfig, ConfigError> {
    let path = checks::absolute_watch_dir(raw_watch.path.get_ref())
        .map_err(|e| loc.error(&raw_watch.path, "watch.path", &e))?;
    if let Some(delay) = &raw_watch.delay {
        checks::seconds(*delay.get_ref()).map_err(|e| loc.error(delay, "watch.delay", &e))?;
    }
    if let Some(remote_path) = &raw_watch.remote_path {
        checks::remote_path(remote_path.get_ref())
            .map_err(|e| loc.error(remote_path, "watch.remote_path", &e))?;
    }
    let mut watch_excludes = patterns(loc, raw_watch.excludes, "watch.excludes")?;
    let watch_exclude_from = read_exclude_from(
        loc,
        raw_watch.exclude_from,
        "watch.exclude_from",
        &mut watch_excludes,
    )?;
    let watch_delete = match &raw_watch.delete {
        Some(mode) => Some(delete_mode(loc, mode, "watch.delete")?),
        None => None,
    };
    Ok(WatchConfig {
        remote_path: raw_watch
            .remote_path
            .map(Spanned::into_inner)
            .unwrap_or_else(|| raw_watch.path.get_ref().clone()),
        path,
        excludes: watch_excludes,
        exclude_from: watch_exclude_from,
        delete: watch_delete,
        targets: match raw_watch.targets {
            Some(list) => Some(targets(loc, Some(list), "watch.targets")?),
            None => None,
        },
        delay: raw_watch.delay.map(Spanned::into_inner),
        speed: raw_watch.speed,
        rsync_args: raw_watch.rsync_args.unwrap_or_default(),
    })
}

/// `rsync_args` that delete (`--delete*`, `--del`) where `delete` says not to:
/// rsync would delete anyway.
fn refuse_rsync_args_that_delete(
    config: &Config,
    watch_lines: &[String],
) -> Result<(), ConfigError> {
    for (i, watch) in config.watches.iter().enumerate() {
        let delete = watch.effective_delete(config);
        if delete == DeleteMode::Always {
            continue;
        }
        let own = [&config.rsync_args[..], &watch.rsync_args[..]].concat();
        if let Some(arg) = own
            .iter()
            .find(|a| *a == "--del" || a.starts_with("--delete"))
        {
            return Err(ConfigError(format!(
                "{}: rsync_args has {arg} but delete = {delete}: rsync would delete on the \
                 target anyway; remove it (delete decides)",
                watch_lines[i]
            )));
        }
    }
    Ok(())
}

fn patterns(
    loc: &Locator,
    list: Option<Vec<Spanned<String>>>,
    key: &str,
) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for pattern in list.unwrap_or_default() {
        crate::exclude::check_pattern(pattern.get_ref())
            .map_err(|e| loc.error(&pattern, key, &e))?;
        out.push(pattern.into_inner());
    }
    Ok(out)
}

/// Reads an `exclude_from` file, adding its patterns to `excludes`.
fn read_exclude_from(
    loc: &Locator,
    file: Option<Spanned<String>>,
    key: &str,
    excludes: &mut Vec<String>,
) -> Result<Option<std::path::PathBuf>, ConfigError> {
    let Some(file) = file else {
        return Ok(None);
    };
    let patterns = exclude_file::read(file.get_ref()).map_err(|e| loc.error(&file, key, &e))?;
    excludes.extend(patterns);
    Ok(Some(file.into_inner().into()))
}

fn delete_mode(
    loc: &Locator,
    mode: &Spanned<RawDelete>,
    key: &str,
) -> Result<DeleteMode, ConfigError> {
    match mode.get_ref() {
        RawDelete::Flag(true) => Ok(DeleteMode::Always),
        RawDelete::Flag(false) => Ok(DeleteMode::Never),
        RawDelete::Word(word) if word == "startup" || word == "running" => {
            DeleteMode::from_word(word).map_err(|e| loc.error(mode, key, &e))
        }
        RawDelete::Word(word) => Err(loc.error(
            mode,
            key,
            super::delete_mode::UnknownDeleteMode(word.clone()),
        )),
    }
}

fn targets(
    loc: &Locator,
    list: Option<Vec<Spanned<String>>>,
    key: &str,
) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for target in list.unwrap_or_default() {
        checks::target(target.get_ref()).map_err(|e| loc.error(&target, key, &e))?;
        out.push(target.into_inner());
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
