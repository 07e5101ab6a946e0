//! `inosyncd --convert FILE.py`: an inosync config written out as the equivalent
//! TOML, so a migration is one command and a review of its output.

use super::Config;

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
