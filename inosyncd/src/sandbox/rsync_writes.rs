//! rsync options whose writes are the transfer itself and that name a place
//! outside the mirror: `--temp-dir` (every file is received there first),
//! `--backup-dir` (every replaced or deleted file is moved there first), an
//! absolute `--partial-dir`, `--write-batch`. In the sandbox such a run cannot
//! do its job, and rsync says so badly or not at all (`--backup-dir` exits 11
//! with no word of why, leaving its temp files in the mirror), so the run is
//! refused before it starts, naming the option. Writes beside the transfer
//! (`--log-file`, `--remove-source-files`) are left to rsync: it goes on
//! without them, and the refusal is reported.

use std::path::{Component, Path, PathBuf};

/// Where an option's path is taken from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    /// The receiver's destination directory (a relative path is below it,
    /// or beside it with `..`); only a local target's receiver is sandboxed.
    Target,
    /// Only when absolute (a relative one is per directory, inside the mirror).
    AbsoluteOnly,
    /// The daemon's current directory (rsync's client writes it).
    Client,
}

/// The options, long name first; `T` is `--temp-dir`'s short form.
const OPTIONS: &[(&str, Option<char>, Base)] = &[
    ("--temp-dir", Some('T'), Base::Target),
    ("--backup-dir", None, Base::Target),
    ("--partial-dir", None, Base::AbsoluteOnly),
    ("--write-batch", None, Base::Client),
    ("--only-write-batch", None, Base::Client),
];

/// The options in `args` that would write outside every directory in
/// `writable`, each as `--option=VALUE (PATH)`. `target` is the local target
/// (resolved), `None` for a remote one (its receiver is not sandboxed here).
pub fn outside(args: &[String], target: Option<&Path>, writable: &[PathBuf]) -> Vec<String> {
    let mut refused = Vec::new();
    for (option, value) in options(args) {
        let Some(&(name, _, base)) = OPTIONS.iter().find(|(name, short, _)| {
            option == *name || short.is_some_and(|s| option == format!("-{s}"))
        }) else {
            continue;
        };
        let given = Path::new(&value);
        let path = match (base, target) {
            (_, _) if given.is_absolute() => given.to_path_buf(),
            (Base::Target, Some(target)) => target.join(given),
            (Base::Client, _) => match std::env::current_dir() {
                Ok(cwd) => cwd.join(given),
                Err(_) => continue,
            },
            _ => continue,
        };
        if base != Base::Client && target.is_none() {
            continue;
        }
        let path = lexical(&path);
        if !writable.iter().any(|w| path.starts_with(w)) {
            refused.push(format!("{name}={value} ({})", path.display()));
        }
    }
    refused
}

/// Every (option, value) pair in `args` (see `rsync::user_options`).
fn options(args: &[String]) -> Vec<(String, String)> {
    crate::rsync::user_options(args)
        .into_iter()
        .filter_map(|o| Some((o.name, o.value?)))
        .collect()
}

/// `a/./b/../c` as `a/c`, without the filesystem (what rsync would create need
/// not exist yet; a symlink on the way is the sandbox's to refuse).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(args: &[&str], target: Option<&str>) -> Vec<String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let writable = [PathBuf::from("/mnt/mirror"), PathBuf::from("/dev/null")];
        outside(&args, target.map(Path::new), &writable)
    }

    #[test]
    fn transfer_writes_outside_the_target_are_found_in_every_spelling() {
        let local = Some("/mnt/mirror");
        for args in [
            &["--temp-dir=/tmp"][..],
            &["--temp-dir", "/tmp"],
            &["-T", "/tmp"],
            &["-T/tmp"],
            &["-avT", "/tmp"],
            &["-avT/tmp"],
            &["--backup", "--backup-dir=/outside"],
            &["-b", "--backup-dir", "../bk"],
            &["--backup-dir=sub/../../bk"],
            &["--partial-dir=/var/partial"],
            &["--write-batch=/var/batch"],
        ] {
            assert_eq!(refused(args, local).len(), 1, "{args:?}");
        }
        let message = refused(&["--backup-dir=../bk"], local).join("");
        assert!(
            message.contains("--backup-dir=../bk (/mnt/bk)"),
            "{message}"
        );
    }

    #[test]
    fn writes_inside_the_target_beside_it_or_on_a_remote_receiver_are_left_alone() {
        let local = Some("/mnt/mirror");
        for args in [
            &["--backup-dir=.backups"][..],
            &["--backup-dir=/mnt/mirror/.old"],
            &["--temp-dir", "tmp"],
            &["--partial-dir=.partial"],
            &["--log-file=/var/log/x"],
            &["--remove-source-files"],
            &["-e", "ssh -T /x"],
            &["--exclude=-T/x"],
            &["--", "--temp-dir=/tmp"],
        ] {
            assert!(refused(args, local).is_empty(), "{args:?}");
        }
        assert!(refused(&["--backup-dir=/outside", "--temp-dir=/tmp"], None).is_empty());
        assert_eq!(refused(&["--write-batch=/var/batch"], None).len(), 1);
    }
}
