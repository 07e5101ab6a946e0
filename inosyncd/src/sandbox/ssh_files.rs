//! The files an ssh command line makes ssh read: keys, certificates, config and
//! known-hosts files. The sandbox lets ssh read exactly these (beside the
//! system and `~/.ssh`), so every spelling ssh itself accepts must be read here:
//! `-i FILE`, `-iFILE`, bundled flags (`-qi FILE`), `-F FILE`, `-o Key=Value`,
//! `-oKey=Value`, `-o "Key Value"`, any case of the key, quoted values.

use std::path::{Path, PathBuf};

/// ssh's options that take an argument (OpenSSH's getopt string, letters
/// followed by ':'): in a bundle such as `-qi FILE`, the first of these takes
/// the rest of the word or the next word.
const WITH_ARGUMENT: &str = "BDEFIJLOPQRSWbceilmopw";

/// `-o` keys whose values are files ssh reads (`UserKnownHostsFile` and
/// `GlobalKnownHostsFile` take several, separated by spaces).
const FILE_KEYS: &[&str] = &[
    "identityfile",
    "certificatefile",
    "userknownhostsfile",
    "globalknownhostsfile",
    "revokedhostkeys",
];

/// The files `command` (a remote shell command line, as rsync's `--rsh` takes
/// it) makes ssh read, made absolute against the current directory (ssh's
/// own) and `~` expanded with `home`.
pub fn ssh_files(command: &str, home: Option<&Path>) -> Vec<PathBuf> {
    // rsync splits --rsh on whitespace, honouring quotes, as a shell would.
    let words = shlex::split(command)
        .unwrap_or_else(|| command.split_whitespace().map(String::from).collect());
    let mut files = Vec::new();
    let mut words = words.iter().skip(1);
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        let Some(flags) = word.strip_prefix('-').filter(|f| !f.is_empty()) else {
            // The host, and what follows it, is the remote command.
            break;
        };
        let Some((at, flag)) = flags
            .char_indices()
            .find(|(_, c)| WITH_ARGUMENT.contains(*c))
        else {
            continue;
        };
        let rest = &flags[at + flag.len_utf8()..];
        let value = if rest.is_empty() {
            match words.next() {
                Some(next) => next.as_str(),
                None => break,
            }
        } else {
            rest
        };
        match flag {
            'i' | 'F' => files.extend(file(value, home)),
            'o' => files.extend(option_files(value, home)),
            _ => {}
        }
    }
    files
}

/// The files of one `-o` option: `Key=Value`, `Key Value` or `Key = Value`.
fn option_files(option: &str, home: Option<&Path>) -> Vec<PathBuf> {
    let option = option.trim();
    let split = option
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(option.len());
    let (key, value) = option.split_at(split);
    if !FILE_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
        return Vec::new();
    }
    let value = value.trim_start().strip_prefix('=').unwrap_or(value).trim();
    // ssh's own config syntax: a value may be quoted, and a known-hosts key
    // may list several files.
    shlex::split(value)
        .unwrap_or_else(|| vec![value.to_string()])
        .iter()
        .filter_map(|v| file(v, home))
        .collect()
}

/// A file argument as ssh resolves it: `~/` and `%d/` are the home directory,
/// a relative path is taken from the current directory. Values with other `%`
/// tokens (ssh expands them per connection) and `none` name no file known here.
fn file(value: &str, home: Option<&Path>) -> Option<PathBuf> {
    if value.is_empty() || value.eq_ignore_ascii_case("none") {
        return None;
    }
    let expanded = match (value.strip_prefix("~/").or(value.strip_prefix("%d/")), home) {
        (Some(rest), Some(home)) => home.join(rest),
        (Some(_), None) => return None,
        (None, _) if value.contains('%') => return None,
        (None, _) => PathBuf::from(value),
    };
    if expanded.is_absolute() {
        Some(expanded)
    } else {
        std::env::current_dir().ok().map(|cwd| cwd.join(expanded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(command: &str) -> Vec<String> {
        ssh_files(command, Some(Path::new("/root")))
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    #[test]
    fn every_spelling_ssh_accepts_is_read() {
        let spellings = [
            "ssh -i /k/key",
            "ssh -i/k/key",
            "ssh -qi /k/key",
            "ssh -qi/k/key",
            "ssh -o IdentityFile=/k/key",
            "ssh -oIdentityFile=/k/key",
            "ssh -o identityfile=/k/key",
            "ssh -o 'IdentityFile /k/key'",
            "ssh -o 'IdentityFile = /k/key'",
            "ssh -o 'IdentityFile=\"/k/key\"'",
            "ssh -p 2222 -o BatchMode=yes -i /k/key host",
        ];
        for command in spellings {
            assert_eq!(files(command), ["/k/key"], "{command}");
        }
        assert_eq!(
            files("ssh -F /k/config -oCertificateFile=~/c.pub -o 'UserKnownHostsFile /a /b'"),
            ["/k/config", "/root/c.pub", "/a", "/b"]
        );
        assert_eq!(files("ssh -oGlobalKnownHostsFile=/g"), ["/g"]);
        assert_eq!(
            files("ssh -i \"/k/with space\""),
            ["/k/with space"],
            "quoted values"
        );
    }

    #[test]
    fn other_options_and_the_remote_command_name_no_file() {
        assert!(files("ssh -p 22 -l user -o BatchMode=yes -c aes128-ctr").is_empty());
        assert!(files("ssh host -i /not/an/option").is_empty());
        assert!(files("ssh -o IdentityFile=none -i %h/key").is_empty());
        assert!(files("ssh -i").is_empty(), "a flag without its value");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            ssh_files("ssh -i relative/key", None),
            [cwd.join("relative/key")]
        );
    }
}
