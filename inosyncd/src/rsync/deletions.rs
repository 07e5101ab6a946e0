//! Deletions on the target, without `--delete-missing-args`: a path listed on
//! rsync's stdin that no longer exists is sent with mode 0 under that option,
//! and some receivers refuse such an entry outright ("invalid file mode 00",
//! exit 2: Debian's rsync 3.2.7-1+deb12u5, for one), which would make every
//! deletion fail. So the paths of a batch that are missing from the source are
//! deleted by a run of their own: `--delete` over just their parent directories,
//! with filter rules that include the ancestors and each missing name (and all
//! below it) and hide and protect everything else. The sender lists only those
//! directories; the receiver deletes, in them, only the names listed.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::exclude::ExcludeSet;

/// Splits listed paths into those that exist in the source now (transferred)
/// and those that do not (deleted on the target). A path that cannot be looked
/// at for another reason (permission, a name too long) counts as existing:
/// rsync then says what is wrong with it.
pub fn split_missing(root: &Path, paths: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    split(root, paths, None)
}

/// [`split_missing`], and a path that is now a directory hidden by a
/// directory-only exclude (`/cache/`: a file `cache` replaced by a directory)
/// counts as missing too: rsync's sender skips it, so listed it would leave
/// the target's old file; the deletion run deletes that, as a full sync's
/// `--delete` would (the exclude, which comes first, keeps the directory from
/// being sent, and protects a directory the target holds there). Found by a
/// black-box attack.
pub fn split_missing_or_hidden(
    root: &Path,
    paths: Vec<Vec<u8>>,
    excludes: &ExcludeSet,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    split(root, paths, Some(excludes))
}

fn split(
    root: &Path,
    paths: Vec<Vec<u8>>,
    excludes: Option<&ExcludeSet>,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let root_fd = crate::listed_paths::open_dir(root);
    let excludes = excludes.filter(|e| e.has_dir_only());
    let mut present = Vec::with_capacity(paths.len());
    let mut missing = Vec::new();
    for path in paths {
        let mode = match &root_fd {
            Some(fd) => crate::listed_paths::lstat_mode(fd, &path),
            None => std::fs::symlink_metadata(root.join(OsStr::from_bytes(&path)))
                .map(|m| m.mode())
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)),
        };
        let gone = match mode {
            Err(errno) => matches!(errno, libc::ENOENT | libc::ENOTDIR),
            Ok(mode) => {
                mode & libc::S_IFMT == libc::S_IFDIR
                    && excludes.is_some_and(|e| e.hides_dir_only(&path))
            }
        };
        if gone {
            missing.push(path);
        } else {
            present.push(path);
        }
    }
    (present, missing)
}

/// The filter rules of a deletion run, one pattern each (on stdin,
/// `--include-from=-`, or as arguments: see `Job::stdin`): each ancestor
/// directory of a missing path (`/a/`, `/a/b/`: a trailing slash matches only
/// a directory), each missing path, and everything below it
/// (`/a/b/gone/***`, so a deleted tree's contents are not protected). Every
/// rule is anchored and matches its path exactly, a newline or CR included,
/// so none can match elsewhere.
pub fn rules(missing: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut ancestors = BTreeSet::new();
    for path in missing {
        for (end, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            ancestors.insert(&path[..end]);
        }
    }
    let mut out = Vec::new();
    for dir in ancestors.iter().filter(|d| !d.is_empty()) {
        let mut rule = anchored(dir, false);
        rule.push(b'/');
        out.push(rule);
    }
    for path in missing {
        out.push(anchored(path, false));
        let mut below = anchored(path, true);
        below.extend_from_slice(b"/***");
        out.push(below);
    }
    out
}

/// The filter rules that delete exactly `names` (a guarded run's, see
/// `guarded.rs`): each ancestor directory (`/a/`) and each name, nothing
/// below them, so a directory keeps what the list does not name.
pub fn exact_rules(names: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut ancestors = BTreeSet::new();
    for path in names {
        for (end, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            ancestors.insert(&path[..end]);
        }
    }
    let mut out: Vec<Vec<u8>> = ancestors
        .iter()
        .filter(|d| !d.is_empty())
        .map(|dir| {
            let mut rule = anchored(dir, false);
            rule.push(b'/');
            rule
        })
        .collect();
    out.extend(names.iter().map(|name| anchored(name, false)));
    out
}

/// `/path` as an rsync pattern that matches exactly that path. rsync matches a
/// pattern without `*`, `?` or `[` literally (a backslash is then an ordinary
/// character); one with any of them, or one that gets a wildcard suffix
/// (`wild`), is a wildcard pattern, in which a backslash escapes the next
/// character.
pub(super) fn anchored(path: &[u8], wild: bool) -> Vec<u8> {
    let escape = wild || path.iter().any(|b| b"*?[".contains(b));
    let mut out = Vec::with_capacity(path.len() + 1);
    out.push(b'/');
    for b in path {
        if escape && b"\\*?[".contains(b) {
            out.push(b'\\');
        }
        out.push(*b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(rules: &[Vec<u8>]) -> Vec<String> {
        rules
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn rules_include_ancestors_and_each_missing_tree_escaped() {
        let missing = vec![
            b"gone".to_vec(),
            b"a b/c*d/x".to_vec(),
            b"a b/back\\slash".to_vec(),
            b"n\nl/- dash ".to_vec(),
        ];
        assert_eq!(
            split(&rules(&missing)),
            [
                "/a b/",
                "/a b/c\\*d/",
                // A newline matched exactly (the rule goes as an argument).
                "/n\nl/",
                "/gone",
                "/gone/***",
                "/a b/c\\*d/x",
                "/a b/c\\*d/x/***",
                "/a b/back\\slash",
                "/a b/back\\\\slash/***",
                "/n\nl/- dash ",
                "/n\nl/- dash /***",
            ]
        );
    }

    #[test]
    fn a_directory_a_directory_only_exclude_hides_counts_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("cache")).unwrap();
        std::fs::create_dir(dir.path().join("kept")).unwrap();
        std::fs::write(dir.path().join("tmp"), "a file").unwrap();
        let excludes = ExcludeSet::new(&["/cache/".to_string(), "tmp/".to_string()]).unwrap();
        let (present, missing) = split_missing_or_hidden(
            dir.path(),
            vec![b"cache".to_vec(), b"kept".to_vec(), b"tmp".to_vec()],
            &excludes,
        );
        assert_eq!(present, [b"kept".to_vec(), b"tmp".to_vec()]);
        assert_eq!(missing, [b"cache".to_vec()]);
    }

    #[test]
    fn missing_and_present_paths_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("here"), "x").unwrap();
        std::os::unix::fs::symlink("/nowhere", dir.path().join("dangling")).unwrap();
        let (present, missing) = split_missing(
            dir.path(),
            vec![
                b"here".to_vec(),
                b"gone".to_vec(),
                b"here/below".to_vec(),
                b"dangling".to_vec(),
            ],
        );
        assert_eq!(present, [b"here".to_vec(), b"dangling".to_vec()]);
        assert_eq!(missing, [b"gone".to_vec(), b"here/below".to_vec()]);
    }
}
