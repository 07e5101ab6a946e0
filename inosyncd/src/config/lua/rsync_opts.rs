//! A sync's `rsync = {...}` and `ssh = {...}` tables and its `filter` rules as
//! rsync arguments, the way lsyncd's layers turn them into rsync's command
//! line. inosync always runs `rsync --archive`: what that includes needs no
//! argument, and what turns part of it off becomes `--no-…`.

use super::eval::Val;
use super::values::{ValueError, number, shown, strings};
use super::watch::Watch;

/// rsync table keys that are a plain rsync flag when true.
const FLAGS: &[(&str, &str)] = &[
    ("acls", "--acls"),
    ("append", "--append"),
    ("append_verify", "--append-verify"),
    ("backup", "--backup"),
    ("checksum", "--checksum"),
    ("compress", "--compress"),
    ("copy_dirlinks", "--copy-dirlinks"),
    ("copy_links", "--copy-links"),
    ("copy_unsafe_links", "--copy-unsafe-links"),
    ("cvs_exclude", "--cvs-exclude"),
    ("executability", "--executability"),
    ("existing", "--existing"),
    ("hard_links", "--hard-links"),
    ("inplace", "--inplace"),
    ("ipv4", "--ipv4"),
    ("ipv6", "--ipv6"),
    ("keep_dirlinks", "--keep-dirlinks"),
    ("one_file_system", "--one-file-system"),
    ("prune_empty_dirs", "--prune-empty-dirs"),
    ("sparse", "--sparse"),
    ("update", "--update"),
    ("whole_file", "--whole-file"),
    ("xattrs", "--xattrs"),
];

/// Parts of `--archive`: nothing when true, `--no-…` when false.
const ARCHIVE_PARTS: &[(&str, &str)] = &[
    ("links", "--no-links"),
    ("perms", "--no-perms"),
    ("times", "--no-times"),
    ("group", "--no-group"),
    ("owner", "--no-owner"),
    ("devices", "--no-devices"),
    ("specials", "--no-specials"),
];

/// rsync table keys that take a value (`--opt=VALUE`).
const VALUED: &[(&str, &str)] = &[
    ("backup_dir", "--backup-dir"),
    ("chmod", "--chmod"),
    ("chown", "--chown"),
    ("groupmap", "--groupmap"),
    ("usermap", "--usermap"),
    ("password_file", "--password-file"),
    ("rsh", "--rsh"),
    ("rsync_path", "--rsync-path"),
    ("suffix", "--suffix"),
    ("temp_dir", "--temp-dir"),
    ("timeout", "--timeout"),
];

/// Why an `rsync = { ... }` or `ssh = { ... }` table cannot be read; the
/// reader of `sync{}` puts it after the line (`LuaError`).
#[derive(Debug, thiserror::Error)]
pub enum OptionError {
    /// The setting is not a table (shown as the comment would).
    #[error("must be a table, not {0}")]
    NotATable(String),
    /// An rsync flag that is not a boolean.
    #[error("rsync.{key} must be true or false, not {shown}")]
    NotAFlag {
        /// The flag's key.
        key: String,
        /// The value given.
        shown: String,
    },
    /// An rsync option with a table or function as its value.
    #[error("rsync.{key}: not a value: {shown}")]
    NotAValue {
        /// The option's key.
        key: String,
        /// The value given.
        shown: String,
    },
    /// `_extra` that is not a string or list of strings.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A numeric setting (`rsync.bwlimit`, `ssh.port`) that is not a number.
    #[error("{setting}: {cause}")]
    Number {
        /// The setting.
        setting: &'static str,
        /// Why it is not a number.
        cause: ValueError,
    },
    /// A path setting (`rsync.binary`, `ssh.binary`, `ssh.identityFile`) that
    /// is not a string.
    #[error("{setting}: not a path: {shown}")]
    NotAPath {
        /// The setting.
        setting: &'static str,
        /// The value given.
        shown: String,
    },
    /// `rsync.bwlimit` that inosync's whole-KB/s `speed` cannot hold as
    /// written: rounding or capping it would change the limit silently.
    #[error("rsync.bwlimit: {0} is not a whole number of KB/s up to 4294967295 (write one)")]
    NotASpeed(String),
    /// `ssh.port` out of 1..=65535 or not whole.
    #[error("ssh.port: {0} is not a port")]
    NotAPort(f64),
    /// `ssh.options` that is not a table.
    #[error("ssh.options must be a table of name = value")]
    OptionsNotATable,
    /// An `ssh.options` entry that is not a string, number or boolean.
    #[error("ssh.options.{name}: {shown}")]
    SshOption {
        /// The ssh option.
        name: String,
        /// The value given.
        shown: String,
    },
}

/// `rsync = { ... }`.
pub fn rsync_table(value: &Val, watch: &mut Watch) -> Result<(), OptionError> {
    let Val::Table { map, .. } = value else {
        return Err(OptionError::NotATable(shown(value)));
    };
    for (key, value) in map {
        let flag = |value: &Val| match value {
            Val::Bool(b) => Ok(*b),
            other => Err(OptionError::NotAFlag {
                key: key.clone(),
                shown: shown(other),
            }),
        };
        if let Some((_, arg)) = FLAGS.iter().find(|(k, _)| k == key) {
            if flag(value)? {
                watch.rsync_args.push(arg.to_string());
            }
        } else if let Some((_, off)) = ARCHIVE_PARTS.iter().find(|(k, _)| k == key) {
            if !flag(value)? {
                watch.rsync_args.push(off.to_string());
            }
        } else if let Some((_, opt)) = VALUED.iter().find(|(k, _)| k == key) {
            let text = match value {
                Val::Str(s) => s.clone(),
                Val::Num(n) => n.to_string(),
                other => {
                    return Err(OptionError::NotAValue {
                        key: key.clone(),
                        shown: shown(other),
                    });
                }
            };
            watch.rsync_args.push(format!("{opt}={text}"));
        } else {
            match key.as_str() {
                "_extra" => watch.rsync_args.extend(strings(value)?),
                "bwlimit" => {
                    let kbs = number(value).map_err(|cause| OptionError::Number {
                        setting: "rsync.bwlimit",
                        cause,
                    })?;
                    if kbs.fract() != 0.0 || kbs > f64::from(u32::MAX) {
                        return Err(OptionError::NotASpeed(shown(value)));
                    }
                    watch.speed = Some(kbs as u32);
                }
                "binary" => match value {
                    Val::Str(s) => watch.rsync_binary = Some(s.clone()),
                    other => {
                        return Err(OptionError::NotAPath {
                            setting: "rsync.binary",
                            shown: shown(other),
                        });
                    }
                },
                "archive" => {
                    if !flag(value)? {
                        watch.comments.push(
                            "rsync.archive = false: inosync always runs rsync --archive; the \
                             parts you want off go in rsync_args as --no-perms, --no-owner, ..."
                                .into(),
                        );
                    }
                }
                "protect_args" => watch.comments.push(format!(
                    "rsync.protect_args = {}: inosync always passes --secluded-args (the same)",
                    shown(value)
                )),
                "verbose" | "quiet" => watch.comments.push(format!(
                    "rsync.{key} = {}: inosync logs one line per run itself (-v on inosyncd \
                     for more)",
                    shown(value)
                )),
                "dry_run" => watch.comments.push(format!(
                    "rsync.dry_run = {}: use `inosyncd --pretend` to run without transferring",
                    shown(value)
                )),
                other => watch.comments.push(format!(
                    "rsync.{other} = {}: not an option lsyncd documents; not passed to rsync \
                     (add it to rsync_args if rsync knows it)",
                    shown(value)
                )),
            }
        }
    }
    Ok(())
}

/// `ssh = { ... }` (default.rsyncssh): one `--rsh=` with the port, identity,
/// options and extra arguments, quoted as rsync splits that string.
pub fn ssh_table(value: &Val, watch: &mut Watch) -> Result<(), OptionError> {
    let Val::Table { map, .. } = value else {
        return Err(OptionError::NotATable(shown(value)));
    };
    let mut words = vec![match map.get("binary") {
        Some(Val::Str(s)) => s.clone(),
        Some(other) => {
            return Err(OptionError::NotAPath {
                setting: "ssh.binary",
                shown: shown(other),
            });
        }
        None => "ssh".to_string(),
    }];
    for (key, value) in map {
        match key.as_str() {
            "binary" => {}
            "port" => {
                let port = number(value).map_err(|cause| OptionError::Number {
                    setting: "ssh.port",
                    cause,
                })?;
                if port.fract() != 0.0 || !(1.0..=65535.0).contains(&port) {
                    return Err(OptionError::NotAPort(port));
                }
                words.extend(["-p".to_string(), (port as u16).to_string()]);
            }
            "identityFile" => match value {
                Val::Str(s) => words.extend(["-i".to_string(), s.clone()]),
                other => {
                    return Err(OptionError::NotAPath {
                        setting: "ssh.identityFile",
                        shown: shown(other),
                    });
                }
            },
            "options" => {
                let Val::Table { map: options, .. } = value else {
                    return Err(OptionError::OptionsNotATable);
                };
                for (name, value) in options {
                    let value = match value {
                        Val::Str(s) => s.clone(),
                        Val::Num(n) => n.to_string(),
                        Val::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
                        other => {
                            return Err(OptionError::SshOption {
                                name: name.clone(),
                                shown: shown(other),
                            });
                        }
                    };
                    words.extend(["-o".to_string(), format!("{name}={value}")]);
                }
            }
            "_extra" => words.extend(strings(value)?),
            other => watch.comments.push(format!(
                "ssh.{other} = {}: not an ssh setting lsyncd documents; left out",
                shown(value)
            )),
        }
    }
    if words.len() > 1 {
        let quoted: Vec<String> = words
            .iter()
            .map(|w| {
                // rsync splits this string on spaces, minding quotes only.
                if w.is_empty() || w.contains([' ', '\'', '"', '\\']) {
                    shlex::try_quote(w)
                        .map(|q| q.into_owned())
                        .unwrap_or_else(|_| w.clone())
                } else {
                    w.clone()
                }
            })
            .collect();
        watch.rsync_args.push(format!("--rsh={}", quoted.join(" ")));
    }
    Ok(())
}

/// `filter = { ... }`: plain exclude rules (`- PATTERN`) become excludes (the
/// watcher ignores them too); a list with any other rule goes to rsync whole,
/// in order, as `--filter=` arguments (order matters in rsync's filters).
pub fn filter(rules: &[String], watch: &mut Watch) {
    let plain: Option<Vec<String>> = rules
        .iter()
        .map(|r| {
            r.strip_prefix("- ")
                .or_else(|| r.strip_prefix("exclude "))
                .map(str::to_string)
        })
        .collect();
    match plain {
        Some(patterns) => watch.excludes.extend(patterns),
        None => {
            watch
                .rsync_args
                .extend(rules.iter().map(|r| format!("--filter={r}")));
            watch.comments.push(
                "filter: passed to rsync in order as --filter= rules; the watcher still sees \
                 changes they exclude (rsync skips them)"
                    .into(),
            );
        }
    }
}
