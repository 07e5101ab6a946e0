//! `inosyncd --convert lsyncd.conf.lua`: an lsyncd config printed as the
//! equivalent TOML (docs/MIGRATING.md, "From lsyncd"). The config is a Lua
//! program, so it is run (`eval`) in a sandbox that records its `settings` and
//! `sync{}` calls; each `sync{}` becomes a watch (`syncs`, `rsync_opts`), and the
//! whole is written out with every lsyncd setting inosync has no equivalent for
//! as a comment saying why (`emit`). Custom actions are refused: inosync runs
//! rsync, never a script.

mod emit;
mod eval;
mod rsync_opts;
mod snapshot;
mod syncs;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_layers;
#[cfg(test)]
mod tests_messages;
#[cfg(test)]
mod tests_odd;
#[cfg(test)]
mod tests_refused;
mod values;
mod watch;

use std::path::Path;

/// Why an lsyncd config could not be converted. Each names the file, and the
/// line where the config says it.
#[derive(Debug, thiserror::Error)]
pub enum LuaError {
    /// The interpreter could not be set up (not the config's fault).
    #[error("cannot start the Lua interpreter: {0}")]
    Setup(String),
    /// A syntax or runtime error in the config, as Lua words it
    /// (`FILE:LINE: message`).
    #[error("{0}")]
    Lua(String),
    /// The config ran past its instruction budget (an endless loop?).
    #[error(
        "{file}:{line}: the config did not finish within its instruction budget (an endless \
         loop?); a config only sets settings and calls sync{{}}"
    )]
    TooLong {
        /// The config file.
        file: String,
        /// Where it was running when stopped.
        line: usize,
    },
    /// The config did not finish in time (stuck in a library call).
    #[error(
        "{file}: the config did not finish within {seconds} s (a string pattern that \
         backtracks without end?)"
    )]
    TooSlow {
        /// The config file.
        file: String,
        /// The time allowed.
        seconds: u64,
    },
    /// The config used more memory than allowed.
    #[error("{file}: the config used more than {limit_mib} MiB of memory")]
    TooMuchMemory {
        /// The config file.
        file: String,
        /// The limit.
        limit_mib: usize,
    },
    /// Something the config asks for that inosync cannot do (a custom action),
    /// or a value of the wrong kind.
    #[error("{0}")]
    Config(String),
    /// A `sync{}` that inosync cannot do, with its line.
    #[error("{file}:{line}: {problem}")]
    Sync {
        /// The config file.
        file: String,
        /// The line of the `sync{}` (or of the function it names).
        line: usize,
        /// What is wrong, and what to do instead.
        problem: String,
    },
    /// The config calls no `sync{}`.
    #[error("{0}: no sync{{}} found: nothing to convert")]
    NoSync(String),
}

/// A converted config: the TOML, and warnings for stderr (paths missing on
/// this machine, settings left out).
#[derive(Debug)]
pub struct Converted {
    /// The TOML config, comments included.
    pub toml: String,
    /// One line each, for stderr.
    pub warnings: Vec<String>,
}

/// Converts the lsyncd config `text` read from `file`.
#[cfg(test)]
pub fn convert(file: &Path, text: &str) -> Result<Converted, LuaError> {
    convert_bytes(file, text.as_bytes())
}

/// Converts the lsyncd config read from `file`, as bytes: Lua strings are
/// bytes, and a path that is not UTF-8 must be refused, not turned into
/// U+FFFD before the Lua even runs.
pub fn convert_bytes(file: &Path, text: &[u8]) -> Result<Converted, LuaError> {
    let recorded = eval::run(file, text)?;
    let name = file.display().to_string();
    if recorded.syncs.is_empty() {
        return Err(LuaError::NoSync(name));
    }
    let mut warnings = Vec::new();
    let watches = syncs::watches(&name, &recorded.syncs, &mut warnings)?;
    for watch in &watches {
        if !Path::new(&watch.path).is_dir() {
            warnings.push(format!(
                "{name}:{}: source {} is not a directory on this machine: converted as \
                 written; `inosyncd --check` refuses it until it exists",
                watch.lines[0], watch.path
            ));
        }
        if let Some(file) = &watch.exclude_from
            && std::fs::metadata(file).is_err()
        {
            warnings.push(format!(
                "{name}:{}: excludeFrom {file} cannot be read on this machine: copy it there \
                 before starting inosyncd",
                watch.lines[0]
            ));
        }
    }
    let toml = emit::toml(&name, &recorded.settings, &watches, &mut warnings);
    Ok(Converted { toml, warnings })
}

/// Whether a config with no telling extension is lsyncd's Lua rather than an
/// inosync `.py` or TOML file: it calls `sync{`/`settings{`, or names a
/// `default.rsync*`/`default.direct` layer. Never a file that parses as TOML
/// or starts like TOML (a `[table]`, a `#` comment line (`#!` aside) or a
/// `key = value` line): the
/// converter's own output names `sync{}` and `default.rsync` in its comments,
/// and calling it Lua would hide its real error from `--check`.
pub fn looks_like_lua(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().map(str::trim_start).find(|l| !l.is_empty());
    // A first line that is a TOML `key = value` on its own (`delay = 3`)
    // counts too; lsyncd's `settings = {` alone is not one.
    let starts_like_toml = first.is_some_and(|l| {
        l.starts_with('[')
            || (l.starts_with('#') && !l.starts_with("#!"))
            || l.parse::<toml::Table>().is_ok_and(|t| !t.is_empty())
    });
    if starts_like_toml || text.parse::<toml::Table>().is_ok() {
        return false;
    }
    let squeezed: String = text
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    squeezed.contains("sync{")
        || squeezed.contains("settings{")
        || squeezed.contains("sync({")
        || squeezed.contains("default.rsync")
        || squeezed.contains("default.direct")
}
