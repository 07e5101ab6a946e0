//! How a batch's paths reach rsync: as arguments (`WATCH/./PATH`, with
//! `--relative`) when they fit, else one a line on stdin
//! (`--files-from=-`; see `newline_names` for the paths a line cannot say).
//!
//! rsync reads a local `--files-from` list one byte per `read(2)`, with a
//! `select(2)` before each: two system calls per byte of every path. For 2,000
//! files with 76-byte paths that was 153 ms of rsync's CPU against 45 ms with
//! the same paths as arguments, which rsync has in memory at once (README
//! "Performance"). Arguments are bounded by the kernel (`ARG_MAX`, a quarter
//! of the stack limit): a list past a quarter of that goes on stdin, as a list
//! of any length can.

use std::ffi::OsString;
use std::ops::Range;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// rsync copies each argument into a buffer of `PATH_MAX` bytes (its NUL
/// included), cutting what does not fit: a longer one goes on stdin, where
/// only the path below the root must fit.
const MAX_ARG: usize = 4095;

/// What one argument costs of the kernel's limit besides its bytes: its NUL
/// and its pointer.
const PER_ARG: usize = 1 + std::mem::size_of::<usize>();

/// The kernel's limit on arguments and environment together (`ARG_MAX`:
/// a quarter of the stack limit, at least 128 KiB), read once.
pub fn arg_max() -> usize {
    static ARG_MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ARG_MAX.get_or_init(|| {
        // SAFETY: sysconf reads a limit; it has no preconditions.
        let max = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
        usize::try_from(max).map_or(128 << 10, |max| max.max(128 << 10))
    })
}

/// Whether `paths` (relative to `source`) go to rsync as arguments: at least
/// one (with none, rsync would list the destination instead), none empty (the
/// root is not `SOURCE/./`, which would mean its contents), a source rsync
/// cuts at its own `/./` only, each argument shorter than `PATH_MAX`, and all
/// of them within a quarter of `ARG_MAX` (the rest is left to the environment
/// and the other arguments).
pub fn fits_as_args(source: &Path, paths: &[Vec<u8>]) -> bool {
    fits_within(source, paths, arg_max() / 4)
}

fn fits_within(source: &Path, paths: &[Vec<u8>], budget: usize) -> bool {
    !paths.is_empty() && groups_within(source, paths, budget).is_some_and(|g| g.len() == 1)
}

/// `paths` cut, in order, into groups that each go as arguments (see
/// [`fits_as_args`]); `None` when one of them cannot go as an argument at all
/// (the root, a path too long, a source rsync would cut elsewhere).
pub fn argument_groups(source: &Path, paths: &[Vec<u8>]) -> Option<Vec<Vec<Vec<u8>>>> {
    let groups = groups_within(source, paths, arg_max() / 4)?;
    Some(groups.into_iter().map(|g| paths[g].to_vec()).collect())
}

/// The ranges of `paths` that each fit in `budget` as arguments.
fn groups_within(source: &Path, paths: &[Vec<u8>], budget: usize) -> Option<Vec<Range<usize>>> {
    let root = source.as_os_str().as_bytes();
    if root.windows(3).any(|w| w == b"/./") || root.ends_with(b"/.") {
        return None;
    }
    let root_len = root.strip_suffix(b"/").unwrap_or(root).len() + "/./".len();
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut total = 0usize;
    for (i, path) in paths.iter().enumerate() {
        let cost = root_len + path.len() + PER_ARG;
        if path.is_empty() || root_len + path.len() > MAX_ARG || cost > budget {
            return None;
        }
        match groups.last_mut() {
            Some(group) if total + cost <= budget => {
                total += cost;
                group.end = i + 1;
            }
            _ => {
                total = cost;
                groups.push(i..i + 1);
            }
        }
    }
    Some(groups)
}

/// The arguments: `SOURCE/./PATH` for each path. rsync changes into
/// `SOURCE` and keeps `PATH` as the name on the target (`--relative`), as it
/// does with a line of `--files-from`; an absolute argument is never read as an
/// option or a remote host, whatever the path holds.
pub fn as_args(source: &Path, paths: &[Vec<u8>]) -> Vec<OsString> {
    let root = source.as_os_str().as_bytes();
    let root = root.strip_suffix(b"/").unwrap_or(root);
    paths
        .iter()
        .map(|path| {
            let mut arg = Vec::with_capacity(root.len() + 3 + path.len());
            arg.extend_from_slice(root);
            arg.extend_from_slice(b"/./");
            arg.extend_from_slice(path);
            OsString::from_vec(arg)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_as_arguments_below_the_source_marked_where_rsync_cuts() {
        let args = as_args(
            Path::new("/srv/www/"),
            &[b"-x".to_vec(), b"a:b/c d".to_vec(), b"\xff".to_vec()],
        );
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        assert_eq!(
            args,
            vec![
                &b"/srv/www/./-x"[..],
                b"/srv/www/./a:b/c d",
                b"/srv/www/./\xff"
            ]
        );
    }

    #[test]
    fn what_does_not_fit_or_cannot_be_said_as_arguments_goes_on_stdin() {
        let root = Path::new("/srv/www");
        let one = [b"a".to_vec()];
        assert!(fits_within(root, &one, 1000));
        assert!(!fits_within(root, &[], 1000), "no path: rsync would list");
        assert!(!fits_within(root, &[b"".to_vec()], 1000), "the root");
        assert!(!fits_within(Path::new("/srv/./www"), &one, 1000));
        assert!(!fits_within(Path::new("/srv/www/."), &one, 1000));
        // "/srv/www/./a", its NUL and its pointer.
        let cost = "/srv/www/./a".len() + PER_ARG;
        assert!(fits_within(root, &one, cost));
        assert!(!fits_within(root, &one, cost - 1));
        assert!(fits_within(root, &[b"a".to_vec(), b"b".to_vec()], 2 * cost));
        assert!(!fits_within(
            root,
            &[b"a".to_vec(), b"b".to_vec()],
            2 * cost - 1
        ));
        assert!(arg_max() >= 128 << 10);
        // rsync would cut an argument of PATH_MAX bytes or more.
        let long = vec![b'x'; MAX_ARG - "/srv/www/./".len()];
        assert!(fits_within(root, std::slice::from_ref(&long), 1 << 20));
        let longer = [long, b"y".to_vec()].concat();
        assert!(!fits_within(root, std::slice::from_ref(&longer), 1 << 20));
        // Cut into groups that each fit, in order.
        let three = [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        assert_eq!(
            groups_within(root, &three, 2 * cost),
            Some(vec![0..2, 2..3])
        );
        assert_eq!(groups_within(root, &[b"a".to_vec(), longer], 1 << 20), None);
        assert_eq!(groups_within(root, &[b"".to_vec()], 1 << 20), None);
    }
}
