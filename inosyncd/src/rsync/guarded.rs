//! A deletion or a sweep puts the user's filter rules (`rsync_args`) before
//! the daemon's, so that what their excludes match stays protected. An
//! include rule of theirs (`--include=*.txt`, a `+` line in a rule file)
//! would lift the daemon's protection of what it matches: a target-only
//! `z.txt` in any directory the run looked at was deleted, whatever the
//! `delete` mode (found by a black-box attack). When the user's options may
//! hold such a rule, the run is first done dry, and what it would delete,
//! kept to what the daemon asked to delete, is then deleted by name with the
//! daemon's rules first (`Job::exact`): the user's rules decide what stays
//! (the dry run), never what goes. A sweep is always guarded: it deletes a
//! temp-shaped name only beside the source's file of that name, and only
//! where full syncs delete (`delete = true`).

use super::job::Job;
use super::leftovers::{PARTIAL_DIR, file_of_temp};
use super::outcome::{FailureClass, Outcome, RunResult};
use super::verify::CompareError;

/// Runs a deletion or a sweep `job`, guarded by a dry run when the user's
/// options may include.
pub(super) async fn run(job: Job, label: &str) -> Outcome {
    // A sweep is always guarded: its rule for rsync's temp files matches any
    // name shaped like one (`.htaccess.backup`), and only the temp files of
    // the source's files are rsync's (a black-box attack: a target-only file
    // of that shape was deleted under `delete = false`).
    if !job.sweeping && !may_include(&job.extra) {
        return super::run::quietly(job, label).await;
    }
    let mut argv = job.argv();
    let operands = argv.split_off(argv.len().saturating_sub(2));
    argv.push("--dry-run".into());
    argv.push(format!("--out-format={}%i %n", super::verify::ITEM_TAG).into());
    argv.extend(operands);
    let stdin = job.stdin();
    let found = match super::verify::dry_run(&job, &argv, stdin.as_deref()).await {
        Ok(found) => found,
        // Some paths could not be looked at (exit 23): a deletion holds
        // them, as its own run would, and the batch goes on; a sweep is
        // tried again after the next run.
        Err(CompareError::Partial(cause)) if job.deleting => {
            return Outcome::bare(
                RunResult::Partial {
                    held: job.paths.clone().unwrap_or_default(),
                    cause: format!("the dry run before a deletion: {cause}"),
                },
                job.paths.as_ref().map(Vec::len),
            );
        }
        Err(e) => {
            return Outcome::bare(
                RunResult::Failed {
                    class: FailureClass::Transient,
                    cause: format!("the dry run before a deletion: {e}"),
                },
                job.paths.as_ref().map(Vec::len),
            );
        }
    };
    let paths = job.paths.clone().unwrap_or_default();
    let names: Vec<Vec<u8>> = found
        .into_iter()
        .filter(|d| d.change == "*deleting")
        .map(|d| d.path)
        .filter(|name| asked(&job, &paths, name))
        .collect();
    if names.is_empty() {
        return Outcome::nothing();
    }
    let exact = Job {
        paths: Some(names),
        deleting: true,
        sweeping: false,
        exact: true,
        ..job
    };
    super::run::quietly(exact, label).await
}

/// Whether the user's options may hold an include rule: any rule given as
/// a filter or read from a file (which may hold `+` lines), an include, or
/// an exclude spelled as one (`--exclude='+ x'`).
pub(super) fn may_include(extra: &[String]) -> bool {
    super::user_options(extra)
        .iter()
        .any(|option| match option.name.as_str() {
            "--include" | "--include-from" | "--exclude-from" | "--filter" | "-f" | "-F" => true,
            "--exclude" => option.value.as_deref().is_some_and(|v| v.starts_with('+')),
            _ => false,
        })
}

/// Whether the user's options hold any filter rule (an exclude, an include,
/// a rule file, `-F`, `-C`): what they protect on the target is unknown to
/// the daemon.
pub(super) fn has_rules(extra: &[String]) -> bool {
    may_include(extra)
        || super::user_options(extra)
            .iter()
            .any(|option| matches!(option.name.as_str(), "--exclude" | "-C" | "--cvs-exclude"))
}

/// Whether `name`, which the dry run would delete, is what `job` asked for:
/// at or below a missing path (a deletion), or a swept directory's partial
/// directory (and what is in it) or one of rsync's temp files in it (a
/// sweep).
fn asked(job: &Job, paths: &[Vec<u8>], name: &[u8]) -> bool {
    if job.deleting {
        return paths.iter().any(|path| at_or_below(name, path));
    }
    paths.iter().any(|dir| {
        let partial = join(dir, PARTIAL_DIR.as_bytes());
        let in_dir = match name.iter().rposition(|b| *b == b'/') {
            Some(slash) => &name[..slash] == dir.as_slice(),
            None => dir.is_empty(),
        };
        at_or_below(name, &partial)
            || (in_dir
                && job.full_syncs_delete
                && file_of_temp(name).is_some_and(|file| {
                    std::fs::symlink_metadata(crate::watcher::absolute(&job.source, &file)).is_ok()
                }))
    })
}

fn at_or_below(name: &[u8], path: &[u8]) -> bool {
    name == path || (name.len() > path.len() && name.starts_with(path) && name[path.len()] == b'/')
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn rules_that_may_include_are_told_apart() {
        for args in [
            &["--include=*.txt"][..],
            &["--exclude-from=/etc/rules"],
            &["-f", "merge /etc/rules"],
            &["-aF"],
            &["--exclude", "+ *.txt"],
        ] {
            assert!(may_include(&words(args)), "{args:?}");
        }
        for args in [&["--exclude=*.tmp"][..], &["-C", "--compress"], &["-az"]] {
            assert!(!may_include(&words(args)), "{args:?}");
        }
    }

    #[test]
    fn only_what_was_asked_is_deleted() {
        let deletion = Job {
            deleting: true,
            ..Job::default()
        };
        let gone = vec![b"d/gone".to_vec()];
        assert!(asked(&deletion, &gone, b"d/gone"));
        assert!(asked(&deletion, &gone, b"d/gone/x"));
        assert!(!asked(&deletion, &gone, b"d/gone2"));
        assert!(!asked(&deletion, &gone, b"d/z.txt"));
        let source = tempfile::tempdir().unwrap();
        std::fs::create_dir(source.path().join("d")).unwrap();
        std::fs::write(source.path().join("d/big"), "").unwrap();
        std::fs::write(source.path().join("big"), "").unwrap();
        let mut sweep = Job {
            sweeping: true,
            full_syncs_delete: true,
            source: source.path().to_path_buf(),
            ..Job::default()
        };
        let dirs = vec![Vec::new(), b"d".to_vec()];
        assert!(asked(&sweep, &dirs, b".inosync-partial"));
        assert!(asked(&sweep, &dirs, b"d/.inosync-partial/big"));
        assert!(asked(&sweep, &dirs, b"d/.big.AbC123"));
        assert!(asked(&sweep, &dirs, b".big.AbC123"));
        assert!(!asked(&sweep, &dirs, b"z.txt"));
        assert!(!asked(&sweep, &dirs, b"e/.big.AbC123"));
        // Shaped like a temp file, of no file of the source.
        assert!(!asked(&sweep, &dirs, b".htaccess.backup"));
        // Where full syncs keep what the target alone holds: the partial
        // directory only.
        sweep.full_syncs_delete = false;
        assert!(asked(&sweep, &dirs, b"d/.inosync-partial/big"));
        assert!(!asked(&sweep, &dirs, b"d/.big.AbC123"));
    }
}
