//! The global settings as `key = value` lines, in one place: `--check` prints
//! them for the config it read, `inosync.toml(5)` shows them for the built-in
//! defaults, and a test holds the packaged `/etc/inosync/inosync.toml` to
//! them. A default changed in the code therefore changes all three, instead
//! of leaving a page or a packaged file that says something else.

use crate::config::{Config, destination};

/// One global key and its value as TOML, `None` when it is not set (the
/// optional keys: `log_file`, `socket_group`, `metrics_listen`,
/// `metrics_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The config key.
    pub key: &'static str,
    /// Its value, spelt as TOML.
    pub value: Option<String>,
}

/// Every global key of `config`, in the README's order.
pub fn global(config: &Config) -> Vec<Setting> {
    let set = |key, value: String| Setting {
        key,
        value: Some(value),
    };
    vec![
        set("rsync", format!("{:?}", config.rsync.display().to_string())),
        set("rsync_args", format!("{:?}", config.rsync_args)),
        set("speed", config.speed.to_string()),
        set("delay", format!("{:?}", config.delay)),
        set("max_parallel", config.max_parallel.to_string()),
        set("max_parallel_large", config.max_parallel_large.to_string()),
        set("events", format!("{:?}", config.events.names())),
        set("excludes", format!("{:?}", config.excludes)),
        Setting {
            key: "exclude_from",
            value: config
                .exclude_from
                .as_ref()
                .map(|f| format!("{:?}", f.display().to_string())),
        },
        set("delete", config.delete.to_string()),
        set("targets", format!("{:?}", config.targets)),
        Setting {
            key: "log_file",
            value: config
                .log_file
                .as_ref()
                .map(|f| format!("{:?}", f.display().to_string())),
        },
        Setting {
            key: "socket_group",
            value: config.socket_group.as_ref().map(|g| format!("{g:?}")),
        },
        set("initial_sync", config.initial_sync.to_string()),
        set(
            "full_sync_interval",
            format!("{:?}", config.full_sync_interval),
        ),
        set("verify_interval", format!("{:?}", config.verify_interval)),
        set("io_timeout", format!("{:?}", config.io_timeout)),
        set("backend", format!("\"{}\"", config.backend)),
        set("sandbox", format!("\"{}\"", config.sandbox)),
        Setting {
            key: "metrics_listen",
            value: config.metrics_listen.map(|a| format!("\"{a}\"")),
        },
        Setting {
            key: "metrics_file",
            value: config
                .metrics_file
                .as_ref()
                .map(|f| format!("{:?}", f.display().to_string())),
        },
        set("ssh_reuse", config.ssh_reuse.to_string()),
    ]
}

/// `--check`: the effective settings of `config`, then each watch with its
/// rsync destinations.
pub fn print_check(config: &Config) {
    let source = config
        .source
        .as_ref()
        .map_or("command line".to_string(), |p| p.display().to_string());
    println!("# effective settings from {source}");
    for setting in global(config) {
        let Some(value) = setting.value else {
            continue;
        };
        println!("{} = {value}", setting.key);
        if setting.key == "max_parallel_large" && config.max_parallel_large > config.max_parallel {
            println!(
                "# note: max_parallel_large is above max_parallel: at most {} rsync processes \
                 run at once, large or not",
                config.max_parallel
            );
        }
        if setting.key == "exclude_from" {
            println!("# its patterns are in `excludes` above");
        }
        if setting.key == "events" {
            print_event_notes(config);
        }
    }
    for watch in &config.watches {
        println!();
        println!("[[watch]]");
        println!("path = {:?}", watch.path.display().to_string());
        println!("remote_path = {:?}", watch.remote_path);
        println!("excludes = {:?}", watch.excludes);
        if let Some(file) = &watch.exclude_from {
            println!(
                "exclude_from = {:?}  # its patterns are in `excludes` above",
                file.display().to_string()
            );
        }
        println!("delete = {}", watch.effective_delete(config));
        println!("delay = {:?}", watch.delay.unwrap_or(config.delay));
        println!("speed = {}", watch.speed.unwrap_or(config.speed));
        if !watch.rsync_args.is_empty() {
            println!("rsync_args = {:?}", watch.rsync_args);
        }
        let destinations: Vec<String> = watch
            .effective_targets(config)
            .iter()
            .map(|t| destination(t, &watch.remote_path))
            .collect();
        println!("# rsync destinations: {destinations:?}");
    }
}

/// What `--check` says about an `events` list that misses changes.
fn print_event_notes(config: &Config) {
    if !config.events.sees_attributes() {
        println!(
            "# note: `events` has no IN_ATTRIB: chmod, chown and touch are not mirrored \
             (until a full sync); add IN_ATTRIB to mirror them"
        );
    }
    if !config.events.sees_unclosed_writes() {
        println!(
            "# note: `events` has no IN_MODIFY: a write never followed by a close \
             (truncate by path, a log kept open) is not mirrored until a later change; \
             add IN_MODIFY to mirror it once the file is quiet"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_include_every_event_and_a_daily_verify() {
        let defaults = global(&Config::default());
        let value = |key: &str| {
            defaults
                .iter()
                .find(|s| s.key == key)
                .and_then(|s| s.value.clone())
        };
        assert!(value("events").is_some_and(|v| v.contains("IN_ATTRIB")));
        assert_eq!(value("verify_interval").as_deref(), Some("86400.0"));
        assert_eq!(value("metrics_listen"), None);
    }
}
