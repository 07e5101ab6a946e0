//! What a transfer that did not finish leaves on the target, and how it goes
//! again. A mirror never shows a truncated file: rsync keeps the part of a file
//! it received when stopped (SIGTERM, a broken connection, a full disk) in a
//! directory of its own beside the file, [`PARTIAL_DIR`] (`--partial-dir`,
//! relative: rsync creates it in the file's directory, uses what it holds on
//! the next transfer of that file and removes it then), never in the file's
//! place. The old version stays whole until the new one is complete.
//!
//! rsync excludes that directory from the transfer, from deletions and so from
//! `verify` (its own rule `-p .inosync-partial/`, added after every other).
//! What can stay behind:
//!
//! - a partial file whose file was deleted or renamed before it was sent again;
//! - rsync's temp file, `.NAME.XXXXXX`, when its receiver was killed (SIGKILL,
//!   the OOM killer, a host that went down): nothing is kept then, and the
//!   temp file stays where it was written.
//!
//! Full syncs and trees compared whole remove both: their `--delete` runs with
//! a "risk" rule for the partial directory (so stale ones are deleted) and
//! deletes after the transfer (`--delete-delay`, so a partial file still helps
//! the transfer of its file first); a temp file is an extra file to them. A
//! batch of paths removes neither, so the directories of a batch that did not
//! finish are swept later, after a run that did: see [`sweep_rules`].

use std::collections::BTreeSet;

/// Where rsync keeps the part of a file it received, relative to the file's
/// directory on the target. A source entry of this name is not mirrored
/// (rsync excludes it on the sending side too).
pub const PARTIAL_DIR: &str = ".inosync-partial";

/// rsync's option for it, unless the user's own options write files in
/// place (`--inplace`, `--append`, `--append-verify`, `--write-devices`,
/// which rsync refuses beside a partial directory: the mirror then shows a
/// file while it is written, as the user asked).
pub fn partial_dir_arg(extra: &[String]) -> Option<String> {
    let in_place = [
        "--inplace",
        "--append",
        "--append-verify",
        "--write-devices",
    ];
    (!extra.iter().any(|a| in_place.contains(&a.as_str())))
        .then(|| format!("--partial-dir={PARTIAL_DIR}"))
}

/// The name of the directory beside each file where a run with the user's
/// options `extra` keeps partial files, when rsync keeps a rule for it: the
/// last `--partial-dir` of theirs (it replaces ours), else ours
/// ([`partial_dir_arg`]); `None` when they write in place, or for a
/// directory that is not one name beside the file (absolute, or with a `/`:
/// rsync adds no rule for the first, and the second is left to it).
pub fn partial_dir_name(extra: &[String]) -> Option<String> {
    partial_dir_arg(extra)?;
    let mut name = PARTIAL_DIR.to_string();
    let mut args = extra.iter();
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--partial-dir=") {
            name = value.to_string();
        } else if arg == "--partial-dir"
            && let Some(value) = args.next()
        {
            name = value.clone();
        }
    }
    let name = name.trim_end_matches('/');
    (!name.is_empty() && name != "." && !name.contains('/')).then(|| name.to_string())
}

/// Whether a run may go without a partial directory (`Job::brief`): ours is
/// the partial directory, and the user's options neither keep what a stopped
/// transfer received in the file's place without one (`--partial`, `-P`)
/// nor hold every update in it until the end (`--delay-updates`).
pub fn may_go_without_partial_dir(extra: &[String]) -> bool {
    partial_dir_arg(extra).is_some()
        && !extra.iter().any(|a| {
            a.starts_with("--partial-dir")
                || a == "--partial"
                || a == "--delay-updates"
                || (!a.starts_with("--") && a.strip_prefix('-').is_some_and(|s| s.contains('P')))
        })
}

/// `--delete-delay`, unless the user's own options say when to delete
/// (rsync refuses two such options, and theirs decides).
pub fn delete_delay_arg(extra: &[String]) -> Option<&'static str> {
    let when = [
        "--delete-before",
        "--delete-after",
        "--delete-during",
        "--del",
    ];
    (!extra.iter().any(|a| when.contains(&a.as_str()))).then_some("--delete-delay")
}

/// Whether `path` lies below a directory named `name`, the partial
/// directory's ([`partial_dir_name`]). rsync's rule for that directory
/// matches the directory, not a path listed below it (a listed path's
/// directories are sent as implied ones, which no rule matches), so such a
/// path is never listed: it would be mirrored, and deleted by the next full
/// sync.
pub fn below_partial_dir(path: &[u8], name: &str) -> bool {
    path.split(|b| *b == b'/')
        .rev()
        .skip(1)
        .any(|component| component == name.as_bytes())
}

/// The rule rsync adds after every other for its partial directory (see
/// above), for a run without one (`Job::brief`): the same names are sent,
/// kept and deleted with it or without it.
pub fn partial_dir_rule() -> String {
    format!("--filter=-p {PARTIAL_DIR}/")
}

/// The rule that keeps any source entry named like the partial directory
/// from being sent, first of all (`-s`: the sender's side; the receiver's
/// partial directories keep rsync's own rules). rsync's own rule matches
/// directories only: a symlink of that name (`d/.inosync-partial ->
/// /etc`) was mirrored, and rsync then took files behind it for partial
/// files, and changed or moved them, outside the mirror (found by a
/// black-box attack). On the target, a link of that name is no directory:
/// rsync's rule does not protect it, and a full sync deletes it. `None` when
/// the run keeps no partial directory, or for a name of the user's that a
/// rule would read as a pattern.
pub fn partial_name_rule(extra: &[String]) -> Option<String> {
    let name = partial_dir_name(extra)?;
    (!name.contains(['*', '?', '[', '\\'])).then(|| format!("--filter=-s {name}"))
}

/// The rule that lets a `--delete` run remove stale partial directories on the
/// receiver (rsync's own rule, added last, would protect them).
pub fn risk_partial_dirs() -> String {
    format!("--filter=R {PARTIAL_DIR}/")
}

/// rsync's temp file name for a file: `.NAME.` and six characters.
const TEMP_PATTERN: &[u8] = b".*.??????";

/// The most of a name rsync keeps in its temp file's name (NAME_MAX - 8):
/// a longer one is cut.
const MAX_STEM: usize = 247;

/// The filter rules of a sweep, one pattern each (as a deletion run's,
/// followed by `H *` and `P *`): for each directory, its
/// ancestors and itself (a trailing slash: a directory only), its partial
/// directory with everything in it, and the names of rsync temp files in it.
/// The run (`--delete --existing --ignore-existing`) transfers nothing and
/// deletes, in those directories only, what matches and the source lacks: a
/// source file that happens to look like a temp file is kept.
pub fn sweep_rules(dirs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut ancestors = BTreeSet::new();
    for dir in dirs.iter().filter(|d| !d.is_empty()) {
        for (end, _) in dir.iter().enumerate().filter(|(_, b)| **b == b'/') {
            ancestors.insert(&dir[..end]);
        }
        ancestors.insert(&dir[..]);
    }
    let mut out = Vec::new();
    let mut push = |rule: Vec<u8>| out.push(rule);
    for dir in &ancestors {
        let mut rule = super::deletions::anchored(dir, false);
        rule.push(b'/');
        push(rule);
    }
    for dir in dirs {
        // `/` for the root, `/DIR/` (escaped: the rules are wildcard ones).
        let mut base = if dir.is_empty() {
            b"/".to_vec()
        } else {
            let mut base = super::deletions::anchored(dir, true);
            base.push(b'/');
            base
        };
        let len = base.len();
        base.extend_from_slice(PARTIAL_DIR.as_bytes());
        base.extend_from_slice(b"/***");
        push(base.clone());
        base.truncate(len);
        base.extend_from_slice(TEMP_PATTERN);
        push(base);
    }
    out
}

/// The directories the listed paths lie in (`""`: the root): where a transfer
/// of them writes its temp and partial files.
pub fn parents<'a>(paths: impl IntoIterator<Item = &'a Vec<u8>>) -> BTreeSet<Vec<u8>> {
    paths
        .into_iter()
        .map(|p| match p.iter().rposition(|b| *b == b'/') {
            Some(slash) => p[..slash].to_vec(),
            None => Vec::new(),
        })
        .collect()
}

/// The file whose rsync temp file `path` (relative to the root) may be:
/// `DIR/.NAME.XXXXXX` is `DIR/NAME`'s (a name too long for that, which rsync
/// cuts short, is not recognised).
pub fn file_of_temp(path: &[u8]) -> Option<Vec<u8>> {
    let (dir, name) = match path.iter().rposition(|b| *b == b'/') {
        Some(slash) => (&path[..=slash], &path[slash + 1..]),
        None => (&path[..0], path),
    };
    if name.len() < 9 || name[0] != b'.' || name[name.len() - 7] != b'.' {
        return None;
    }
    let stem = &name[1..name.len() - 7];
    (stem.len() < MAX_STEM).then(|| [dir, stem].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_goes_without_partial_directory_only_when_nothing_else_keeps_partial_files() {
        let of = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<String>>();
        assert!(may_go_without_partial_dir(&of(&["-v", "--delete"])));
        for keeps in [
            &["--partial"][..],
            &["-P"],
            &["-avP"],
            &["--delay-updates"],
            &["--partial-dir=.mine"],
            &["--partial-dir", ".mine"],
            &["--inplace"],
        ] {
            assert!(!may_go_without_partial_dir(&of(keeps)), "{keeps:?}");
        }
        assert_eq!(
            partial_dir_name(&of(&["--partial"])).as_deref(),
            Some(PARTIAL_DIR)
        );
        assert_eq!(
            partial_dir_name(&of(&["--partial-dir=.mine"])).as_deref(),
            Some(".mine")
        );
        assert_eq!(
            partial_dir_name(&of(&["--partial-dir=.a", "--partial-dir", ".b/"])).as_deref(),
            Some(".b")
        );
        for none in [
            &["--inplace"][..],
            &["--partial-dir=/var/p"],
            &["--partial-dir=a/b"],
            &["--partial-dir=."],
        ] {
            assert_eq!(partial_dir_name(&of(none)), None, "{none:?}");
        }
    }

    #[test]
    fn only_what_lies_below_a_partial_directory_is_below_one() {
        assert!(below_partial_dir(b"a/.mine/x", ".mine"));
        assert!(!below_partial_dir(b"a/.inosync-partial/x", ".mine"));
        for below in [&b".inosync-partial/x"[..], b"a/.inosync-partial/b/c"] {
            assert!(
                below_partial_dir(below, PARTIAL_DIR),
                "{}",
                String::from_utf8_lossy(below)
            );
        }
        for not in [
            &b".inosync-partial"[..],
            b"a/.inosync-partial",
            b"a/.inosync-partial2/x",
            b"x.inosync-partial/y",
        ] {
            assert!(
                !below_partial_dir(not, PARTIAL_DIR),
                "{}",
                String::from_utf8_lossy(not)
            );
        }
    }

    fn split(rules: &[Vec<u8>]) -> Vec<String> {
        rules
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn sweep_rules_reach_only_the_swept_directories() {
        let dirs = vec![Vec::new(), b"a b/c*d".to_vec(), b"x".to_vec()];
        assert_eq!(
            split(&sweep_rules(&dirs)),
            [
                "/a b/",
                "/a b/c\\*d/",
                "/x/",
                "/.inosync-partial/***",
                "/.*.??????",
                "/a b/c\\*d/.inosync-partial/***",
                "/a b/c\\*d/.*.??????",
                "/x/.inosync-partial/***",
                "/x/.*.??????",
            ]
        );
    }

    #[test]
    fn options_rsync_refuses_beside_ours_leave_ours_out() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(partial_dir_arg(&args(&["--compress"])).is_some());
        assert!(partial_dir_arg(&args(&["--inplace"])).is_none());
        assert!(partial_dir_arg(&args(&["--append-verify"])).is_none());
        assert!(delete_delay_arg(&args(&["--partial"])).is_some());
        assert!(delete_delay_arg(&args(&["--delete-after"])).is_none());
    }

    #[test]
    fn parents_of_listed_paths() {
        let paths = [b"top".to_vec(), b"a/b/c".to_vec(), b"a/b/d".to_vec()];
        let found: Vec<Vec<u8>> = parents(&paths).into_iter().collect();
        assert_eq!(found, [b"".to_vec(), b"a/b".to_vec()]);
    }

    #[test]
    fn temp_files_name_their_file() {
        let file = |p: &[u8]| file_of_temp(p).map(|f| String::from_utf8_lossy(&f).into_owned());
        assert_eq!(file(b"d/.big.AbC123").as_deref(), Some("d/big"));
        assert_eq!(file(b".big.AbC123").as_deref(), Some("big"));
        assert_eq!(file(b"d/.a.b.AbC123").as_deref(), Some("d/a.b"));
        assert_eq!(file(b"d/.big.AbC12"), None);
        assert_eq!(file(b"d/big"), None);
        assert_eq!(file(b"d/..AbC123"), None);
    }
}
