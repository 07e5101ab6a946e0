//! The paths a run leaves out (held, or still being written) as few as cover
//! them, so that their `--exclude` rules stay within the kernel's limit on
//! arguments: a directory past rsync's path limit holding hundreds of files
//! made one rule per file, past the limit, and every run of the watch failed
//! (E2BIG) for ever.

use std::collections::HashSet;

use crate::listed_paths::MAX_RSYNC_PATH;

/// `paths` (relative to the root, none empty) reduced to what covers them:
/// a path past rsync's limit becomes its shortest ancestor past it (nothing
/// below that can be sent either), and a path below another left out goes.
/// Sorted.
pub(super) fn covering<'a>(paths: impl Iterator<Item = &'a Vec<u8>>) -> Vec<Vec<u8>> {
    let mut cut: Vec<Vec<u8>> = paths
        .filter(|p| !p.is_empty())
        .map(|p| shortest_too_long(p).to_vec())
        .collect();
    cut.sort();
    cut.dedup();
    let all: HashSet<&[u8]> = cut.iter().map(Vec::as_slice).collect();
    cut.iter()
        .filter(|p| {
            !p.iter()
                .enumerate()
                .any(|(i, b)| *b == b'/' && all.contains(&p[..i]))
        })
        .cloned()
        .collect()
}

/// The shortest ancestor of `path` (or `path`) longer than rsync's limit;
/// `path` when it is within it.
fn shortest_too_long(path: &[u8]) -> &[u8] {
    if path.len() <= MAX_RSYNC_PATH {
        return path;
    }
    path.iter()
        .enumerate()
        .skip(MAX_RSYNC_PATH + 1)
        .find(|(_, b)| **b == b'/')
        .map_or(path, |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_past_the_limit_in_one_directory_are_one_rule() {
        let dir = vec![b'd'; 5000];
        let files: Vec<Vec<u8>> = (0..700)
            .map(|i| [&dir[..], format!("/f{i}").as_bytes()].concat())
            .collect();
        assert_eq!(covering(files.iter()), vec![dir]);
    }

    #[test]
    fn a_path_below_another_left_out_goes_and_look_alikes_stay() {
        let paths: Vec<Vec<u8>> = [&b"a"[..], b"a/b", b"a-x", b"a-x/y", b"ab", b"c/d"]
            .iter()
            .map(|p| p.to_vec())
            .collect();
        let got = covering(paths.iter());
        assert_eq!(
            got,
            vec![
                b"a".to_vec(),
                b"a-x".to_vec(),
                b"ab".to_vec(),
                b"c/d".to_vec()
            ]
        );
    }

    #[test]
    fn the_shortest_ancestor_past_the_limit_is_taken() {
        let long = [
            vec![b'x'; 4000],
            b"/".to_vec(),
            vec![b'y'; 200],
            b"/z/w".to_vec(),
        ]
        .concat();
        assert_eq!(shortest_too_long(&long), &long[..4201]);
        assert_eq!(shortest_too_long(b"short/path"), b"short/path");
        let one = vec![b'n'; 5000];
        assert_eq!(shortest_too_long(&one), &one[..]);
    }
}
