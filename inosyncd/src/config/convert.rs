//! `inosyncd --convert FILE`: an inosync (`.py`) or lsyncd (`.lua`) config
//! written out as the equivalent TOML, so a migration is one command and a
//! review of its output.

use std::path::Path;

use super::{Config, ConfigError, lua};

/// Why a config could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The file could not be read.
    #[error("{file}: cannot read: {error}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        error: super::user_file::UserFileError,
    },
    /// An inosync `.py` config that does not read.
    #[error(transparent)]
    Py(#[from] ConfigError),
    /// An lsyncd config that cannot be converted.
    #[error(transparent)]
    Lua(#[from] lua::LuaError),
}

/// The TOML for the config in `file`, and warnings for stderr. An lsyncd
/// config is known by its `.lua` extension or, when the extension says
/// nothing, by its content; everything else is read as an inosync `.py` file.
/// Watch paths missing on this machine are warnings, not errors: converting is
/// often done before the move, on another host.
pub fn convert_file(file: &Path) -> Result<(String, Vec<String>), ConvertError> {
    let bytes = super::user_file::read(file, super::MAX_CONFIG_BYTES).map_err(|error| {
        ConvertError::Read {
            file: file.display().to_string(),
            error,
        }
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let is_lua = match extension {
        "lua" => true,
        "py" => false,
        _ => lua::looks_like_lua(&text),
    };
    if is_lua {
        let converted = lua::convert_bytes(file, &bytes)?;
        return Ok((converted.toml, converted.warnings));
    }
    let (mut config, warnings) = super::py_format::parse_for_convert(file, &text)?;
    config.source = Some(std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()));
    Ok((to_toml(&config), warnings))
}

/// The config as TOML that reads back to the same settings.
pub fn to_toml(config: &Config) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut out = String::new();
    if let Some(source) = &config.source {
        out.push_str(&format!(
            "# Converted from {} by inosyncd --convert.\n",
            source.display()
        ));
    }
    out.push_str(&format!(
        "rsync = {}\n",
        quote(&config.rsync.display().to_string())
    ));
    out.push_str(&format!(
        "rsync_args = {}  # inosync: extra\n",
        list(&config.rsync_args)
    ));
    out.push_str(&format!(
        "speed = {}  # KB/s, inosync: rspeed\n",
        config.speed
    ));
    out.push_str(&format!(
        "delay = {:?}  # seconds, inosync: edelay\n",
        config.delay
    ));
    let events: Vec<String> = config
        .events
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    out.push_str(&format!("events = {}  # inosync: emask\n", list(&events)));
    out.push_str(&format!(
        "excludes = {}  # inosync: rexcludes\n",
        list(&config.excludes)
    ));
    out.push_str(&format!(
        "targets = {}  # inosync: rnodes\n",
        list(&config.targets)
    ));
    if let Some(log_file) = &config.log_file {
        out.push_str(&format!(
            "log_file = {}  # inosync: logfile\n",
            quote(&log_file.display().to_string())
        ));
    }
    for watch in &config.watches {
        out.push_str("\n[[watch]]  # inosync: wpaths[i] -> rpaths[i]\n");
        out.push_str(&format!(
            "path = {}\n",
            quote(&watch.path.display().to_string())
        ));
        out.push_str(&format!("remote_path = {}\n", quote(&watch.remote_path)));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn converted_config_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let py = format!(
            "wpaths = ['{}/']\nrpaths = ['/var/www/']\nrnodes = ['user1@a.mirror.com:', 'b:']\n\
             rexcludes = ['/localhost', 'x\"y']\nextra = '--rsh=ssh -a'\nrspeed = 50\nedelay = 2.5\n\
             emask = ['IN_CLOSE_WRITE', 'IN_DELETE']\nlogfile = '/var/log/inosync.log'\n",
            dir.path().display()
        );
        let original = crate::config::py_format_parse(Path::new("a.py"), &py).unwrap();
        let toml = to_toml(&original);
        let back = crate::config::toml_format_parse(Path::new("a.toml"), &toml).unwrap();
        assert_eq!(back, original, "{toml}");
    }
}
