//! The user's `rsync_args` read as rsync reads them: which words are options
//! and which are an option's value (`-e "ssh -n"`, `--exclude -n`, `-aT DIR`),
//! for the checks that look for an option in them (the config's refusals, the
//! sandbox's writes outside the mirror).

/// Short options that take a value: in a bundle such as `-aT DIR`, the first
/// of these takes the rest of the word, or the next word.
const SHORT_WITH_VALUE: &str = "BMTef@";

/// Long options that take a value, which may come in the next word rather
/// than after `=`.
const LONG_WITH_VALUE: &[&str] = &[
    "address",
    "backup-dir",
    "block-size",
    "bwlimit",
    "checksum-choice",
    "chmod",
    "chown",
    "compare-dest",
    "compress-choice",
    "compress-level",
    "contimeout",
    "copy-as",
    "copy-dest",
    "debug",
    "early-input",
    "exclude",
    "exclude-from",
    "files-from",
    "filter",
    "groupmap",
    "iconv",
    "include",
    "include-from",
    "info",
    "link-dest",
    "log-file",
    "log-file-format",
    "max-alloc",
    "max-delete",
    "max-size",
    "min-size",
    "modify-window",
    "only-write-batch",
    "out-format",
    "outbuf",
    "partial-dir",
    "password-file",
    "port",
    "protocol",
    "read-batch",
    "remote-option",
    "rsh",
    "rsync-path",
    "skip-compress",
    "sockopts",
    "stop-after",
    "stop-at",
    "suffix",
    "temp-dir",
    "timeout",
    "usermap",
    "write-batch",
];

/// One option as given: `--name` (or `-X`) and its value, if it takes one.
#[derive(Debug, PartialEq, Eq)]
pub struct UserOption {
    /// `--name` or `-X`.
    pub name: String,
    /// Its value (`None`: it takes none, or the words ended first).
    pub value: Option<String>,
    /// The word it was found in, for messages.
    pub word: String,
}

/// Every option in `args`, in order; words after `--` and words that are no
/// option (operands) are left out.
pub fn options(args: &[String]) -> Vec<UserOption> {
    let mut found = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if let Some(long) = word.strip_prefix("--") {
            if long.is_empty() {
                break;
            }
            let (name, value) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None if LONG_WITH_VALUE.contains(&long) => (long, words.next().cloned()),
                None => (long, None),
            };
            found.push(UserOption {
                name: format!("--{name}"),
                value,
                word: word.clone(),
            });
        } else if let Some(flags) = word.strip_prefix('-') {
            for (at, flag) in flags.char_indices() {
                if !SHORT_WITH_VALUE.contains(flag) {
                    found.push(UserOption {
                        name: format!("-{flag}"),
                        value: None,
                        word: word.clone(),
                    });
                    continue;
                }
                let rest = &flags[at + flag.len_utf8()..];
                let value = if rest.is_empty() {
                    words.next().cloned()
                } else {
                    Some(rest.to_string())
                };
                found.push(UserOption {
                    name: format!("-{flag}"),
                    value,
                    word: word.clone(),
                });
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &[&str]) -> Vec<(String, Option<String>)> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        options(&args)
            .into_iter()
            .map(|o| (o.name, o.value))
            .collect()
    }

    #[test]
    fn values_are_never_read_as_options() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            names(&["-avT", "/tmp", "-e", "ssh -n", "--exclude", "-0", "op"]),
            [
                ("-a".into(), None),
                ("-v".into(), None),
                ("-T".into(), s("/tmp")),
                ("-e".into(), s("ssh -n")),
                ("--exclude".into(), s("-0")),
            ]
        );
        assert_eq!(
            names(&["-essh -n", "--rsh=ssh -0", "--dry-run", "--", "-n"]),
            [
                ("-e".into(), s("ssh -n")),
                ("--rsh".into(), s("ssh -0")),
                ("--dry-run".into(), None),
            ]
        );
        assert_eq!(names(&["-T"]), [("-T".into(), None)]);
    }
}
