//! The user's `rsync_args` that would break what the daemon promises, refused
//! when the config is read, with the reason: the daemon hands rsync its own list
//! of changed paths, every sync must really transfer, and the source is only
//! ever read (README "Config (TOML)").

/// The reason given for `-L`, `-k` (files outside the tree would be read).
const READS_THROUGH_SYMLINKS: &str = "rsync would read through the source's symlinks, to files outside the \
         tree that the daemon does not watch; a symlink is mirrored as a symlink";
/// The reason given for `-K` (the mirror's symlinks would be written through).
const WRITES_THROUGH_SYMLINKS: &str =
    "rsync would write through the target's symlinks, outside the mirror";
/// The reason given for `--no-relative`, `--no-R`.
const LANDS_AT_THE_TOP: &str = "the daemon hands rsync each changed path relative to the watch root; \
         without it they would land at the target's top";
/// The reason given for `--no-dirs`, `--no-d`.
const SKIPS_DIRECTORIES: &str = "a changed directory (a new empty one, a mode) would be skipped";
/// The reason given for `--no-ignore-times`, `--no-I`.
const SKIPS_SAME_SIZE_AND_MTIME: &str =
    "a rewrite that keeps a file's size and mtime would not be sent";
/// The reason given for `--existing`, `--ignore-non-existing`.
const SKIPS_NEW_FILES: &str =
    "new files would never reach the target while every sync reports success";
/// The reason given for `--no-recursive`, `--no-r`.
const MUST_WALK: &str = "a full sync and a tree compared whole must walk the tree";
/// The reason given for `-n` and the options that only list or write a batch.
const NOTHING_ARRIVES: &str = "nothing would reach the target while every sync reports success";
/// The reason given for `--from0`, `-0`.
const THE_DAEMON_HANDS_PATHS: &str = "the daemon decides how it hands rsync the changed paths";

/// The long options refused, and why.
const REFUSED_LONG: &[(&str, &str)] = &[
    (
        "--files-from",
        "the daemon hands rsync the changed paths itself; name what to leave out \
         with `excludes`",
    ),
    ("--from0", THE_DAEMON_HANDS_PATHS),
    ("--dry-run", NOTHING_ARRIVES),
    ("--list-only", NOTHING_ARRIVES),
    ("--only-write-batch", NOTHING_ARRIVES),
    (
        "--read-batch",
        "the target would get the batch file's changes, not the source's",
    ),
    (
        "--remove-source-files",
        "rsync would delete the source's files after sending them; the daemon \
         only ever reads the source",
    ),
    (
        "--remove-sent-files",
        "rsync would delete the source's files after sending them (the old name \
         of --remove-source-files); the daemon only ever reads the source",
    ),
    ("--no-relative", LANDS_AT_THE_TOP),
    ("--no-R", LANDS_AT_THE_TOP),
    ("--no-dirs", SKIPS_DIRECTORIES),
    ("--no-d", SKIPS_DIRECTORIES),
    ("--no-ignore-times", SKIPS_SAME_SIZE_AND_MTIME),
    ("--no-I", SKIPS_SAME_SIZE_AND_MTIME),
    ("--existing", SKIPS_NEW_FILES),
    ("--ignore-non-existing", SKIPS_NEW_FILES),
    (
        "--ignore-existing",
        "changed files would never reach the target while every sync reports success",
    ),
    ("--copy-links", READS_THROUGH_SYMLINKS),
    ("--copy-dirlinks", READS_THROUGH_SYMLINKS),
    (
        "--copy-unsafe-links",
        "rsync would read through the source's symlinks that lead out of the \
         tree; a symlink is mirrored as a symlink",
    ),
    ("--keep-dirlinks", WRITES_THROUGH_SYMLINKS),
    (
        "--size-only",
        "a rewrite that keeps a file's size would never be sent (it wins over the \
         --ignore-times the daemon gives listed paths)",
    ),
    (
        "--write-devices",
        "a device node in the mirror would be written through, into the device",
    ),
    (
        "--delete-excluded",
        "the daemon leaves a file being written out of a full sync with an \
         exclude, and the mirror's whole copy would be deleted meanwhile",
    ),
    ("--no-recursive", MUST_WALK),
    ("--no-r", MUST_WALK),
    ("--server", "it is rsync's own, for its remote side"),
    ("--sender", "it is rsync's own, for its remote side"),
    (
        "--daemon",
        "it starts an rsync server instead of a transfer",
    ),
];

/// The short options refused (inside a cluster such as `-avn` too), and why.
const REFUSED_SHORT: &[(char, &str, &str)] = &[
    ('n', "--dry-run", NOTHING_ARRIVES),
    ('0', "--from0", THE_DAEMON_HANDS_PATHS),
    ('L', "--copy-links", READS_THROUGH_SYMLINKS),
    ('k', "--copy-dirlinks", READS_THROUGH_SYMLINKS),
    ('K', "--keep-dirlinks", WRITES_THROUGH_SYMLINKS),
];

/// The word of `args` that sets a remote shell (`--rsh`, `-e`), if one does.
/// rsync reaches an rsync daemon (`rsync://`, `host::module`) through it when
/// given (its daemon-over-remote-shell mode), ignoring the URL's port: see
/// `Config::check_watches`.
pub fn remote_shell_word(args: &[String]) -> Option<String> {
    crate::rsync::user_options(args)
        .into_iter()
        .find(|o| o.name == "--rsh" || o.name == "-e")
        .map(|o| o.word)
}

/// The first of `args` that the daemon cannot run rsync with, in words. An
/// option handed to the remote rsync (`-M`, `--remote-option`) is read the
/// same way: on an ssh or `rsync://` target that side receives.
pub fn refused(args: &[String]) -> Option<String> {
    crate::rsync::user_options(args)
        .into_iter()
        .find_map(|option| {
            if matches!(option.name.as_str(), "-M" | "--remote-option") {
                let inner = option.value.as_deref()?;
                return refused(&[inner.to_string()])
                    .map(|why| format!("{why} (given to the remote rsync by {:?})", option.word));
            }
            let (long, why) = match option.name.strip_prefix("--") {
                Some(_) => REFUSED_LONG
                    .iter()
                    .find(|(long, _)| *long == option.name)
                    .map(|(long, why)| (*long, *why))?,
                None => REFUSED_SHORT
                    .iter()
                    .find(|(short, ..)| option.name[1..].starts_with(*short))
                    .map(|(_, long, why)| (*long, *why))?,
            };
            Some(format!("rsync_args has {:?} ({long}): {why}", option.word))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn options_that_break_the_mirror_are_refused_with_the_reason() {
        for bad in [
            &["--files-from=/etc/list"][..],
            &["--files-from", "/etc/list"],
            &["--from0"],
            &["-0"],
            &["--dry-run"],
            &["-avn"],
            &["-n"],
            &["--list-only"],
            &["--only-write-batch=/tmp/b"],
            &["--read-batch=/tmp/b"],
            &["--remove-source-files"],
            &["--remove-sent-files"],
            &["--no-relative"],
            &["--no-R"],
            &["--no-dirs"],
            &["--no-d"],
            &["--no-ignore-times"],
            &["--no-I"],
            &["--existing"],
            &["--ignore-non-existing"],
            &["--ignore-existing"],
            &["--copy-links"],
            &["-L"],
            &["-avL"],
            &["--copy-dirlinks"],
            &["-k"],
            &["--copy-unsafe-links"],
            &["--keep-dirlinks"],
            &["-K"],
            &["--size-only"],
            &["--write-devices"],
            &["--delete-excluded"],
            &["--no-recursive"],
            &["--no-r"],
            &["-M--ignore-existing"],
            &["--remote-option=--size-only"],
            &["-M", "-K"],
            &["-z", "--server"],
        ] {
            let why = refused(&args(bad)).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(why.starts_with("rsync_args has "), "{why}");
        }
        assert!(refused(&args(&["-avn"])).is_some_and(|w| w.contains("--dry-run")));
        assert!(refused(&args(&["-aL"])).is_some_and(|w| w.contains("--copy-links")));
    }

    #[test]
    fn ordinary_options_and_option_values_are_accepted() {
        for good in [
            &[][..],
            &["--compress", "--bwlimit=100", "-avz", "-H", "--numeric-ids"],
            &["--rsh=ssh -n -p 2222"],
            &["-e", "ssh -n"],
            &["-essh -n"],
            &["-f", "- *.n0"],
            &["--filter=- -n"],
            &["--exclude=-0"],
            &["--exclude", "-n"],
            &["--rsh", "-0"],
            &[
                "--partial-dir=.p",
                "--delay-updates",
                "--backup",
                "--backup-dir=/b",
            ],
            &["--info=progress2", "--no-motd", "--chmod=D0755"],
            &["--safe-links", "--update", "--exclude=-L", "-e", "ssh -K"],
            &["-M--fake-super", "--remote-option=--log-file=/tmp/x"],
        ] {
            assert_eq!(refused(&args(good)), None, "{good:?}");
        }
    }
}
