//! Builds rsync's argv as a vector (never a shell string) and what it reads on
//! stdin: the changed paths or a deletion's rules, one a line.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::job::Job;
use crate::exclude::ExcludeSet;

/// How a transfer of listed paths reads them: as arguments below the source
/// (`--relative`, see `listing`), or on stdin, one a line or, when `nul`,
/// NUL-separated (see `Job::needs_nul`).
fn list_option(by_args: bool, nul: bool, arg: &mut impl FnMut(&str)) {
    if by_args {
        arg("--relative");
    } else {
        if nul {
            arg("--from0");
        }
        arg("--files-from=-");
    }
}

/// What a transfer prints on stdout: closing statistics and overall progress.
const INFO: &str = "--info=stats1,progress2";

/// What a brief one prints: closing statistics only.
const INFO_BRIEF: &str = "--info=stats1";

impl Job {
    /// The command line. A full sync is `rsync -a --delete`; a batch lists exactly
    /// the changed paths (as arguments, `--relative`, or on stdin, `--files-from=-`:
    /// see `listing`), so rsync does not walk the tree (those that no longer
    /// exist are deleted by a run of their own, see `deletions`), and
    /// copies each listed file even when its size and whole-second mtime match
    /// (`--ignore-times`): we know it changed, rsync's quick check would not.
    pub fn argv(&self) -> Vec<OsString> {
        let by_args = self.lists_as_args();
        let nul = self.needs_nul();
        // A deletion or a sweep copied from a brief job is not one: rsync's
        // own rule for its partial directory must come after their rules (a
        // sweep deletes stale partial directories).
        let brief = self.brief && !self.deleting && !self.sweeping;
        let mut args: Vec<String> = vec![
            "--archive".into(),
            "--secluded-args".into(),
            "--mkpath".into(),
        ];
        // What a stopped transfer received waits beside the file, never in
        // its place (see `leftovers`); not for a brief run, which would send
        // little again (its name excluded instead, below).
        let partial_dir = super::leftovers::partial_dir_arg(&self.extra);
        if !brief {
            args.extend(partial_dir.clone());
        }
        // On stdout: overall progress (for `status`, not asked of a brief run,
        // over before it shows) and closing statistics (for the log line of
        // each sync).
        args.push(if brief { INFO_BRIEF } else { INFO }.into());
        let delete_delay = super::leftovers::delete_delay_arg(&self.extra);
        let mut arg = |s: &str| args.push(s.to_string());
        match self.paths {
            None if self.part == super::job::FullPart::RootAttributes => {
                // Every entry hidden from the sender and protected on the
                // receiver, before any rule of the user's (explicit sides: a
                // `--delete` or `--delete-excluded` of theirs deletes nothing):
                // only the root itself, which no rule matches, goes.
                arg("--filter=H *");
                arg("--filter=P *");
                arg("--modify-window=-1");
            }
            None => {
                if !self.keep_deleted {
                    arg("--delete");
                    // Stale partial files go, after the transfer could use them
                    // (see `leftovers`).
                    delete_delay.into_iter().for_each(&mut arg);
                    // Only a deleting run needs it, and every directory of
                    // the tree is matched against it (a first sync of 50,000
                    // directories into an empty target: about 3%).
                    arg(&super::leftovers::risk_partial_dirs());
                }
                // Exact mtimes: a same-size rewrite within one second is not skipped
                // as long as the nanoseconds differ.
                arg("--modify-window=-1");
                if self.delete_nothing {
                    arg("--max-delete=0");
                }
                if self.compare_contents {
                    arg("--checksum");
                }
            }
            Some(_) if self.deleting => {
                // The rules come last (below), after the user's excludes, which
                // keep protecting what they match; never NUL-separated (see
                // `needs_nul`).
                arg("--delete");
                arg("--force");
                // The directories it sends get their exact mtimes back after
                // the deletions in them, as every transfer sets them (compared
                // to the second, one deleted in the same second kept the
                // time of the deletion: found by a black-box attack).
                arg("--modify-window=-1");
            }
            Some(_) if self.sweeping => {
                // As a deletion run, and nothing is transferred: a source file
                // named like a temp file is neither sent nor deleted.
                arg("--delete");
                arg("--force");
                arg("--modify-window=-1");
                arg("--existing");
                arg("--ignore-existing");
            }
            Some(_) if self.recursive => {
                // The trees brought by renames: compared (size and exact mtime, so
                // unchanged files are not sent), with what is extra deleted. A
                // tree gone by the time rsync reads it has its deletion queued.
                list_option(by_args, nul, &mut arg);
                arg("--recursive");
                if !self.keep_deleted {
                    arg("--delete");
                    delete_delay.into_iter().for_each(&mut arg);
                    // Matched against every directory walked: only where
                    // something is deleted (see the full sync above).
                    arg(&super::leftovers::risk_partial_dirs());
                }
                arg("--ignore-missing-args");
                // --force deletes a directory (and all in it) that a file
                // replaces: not when what the source lacks must stay.
                if !self.keep_deleted {
                    arg("--force");
                }
                arg("--modify-window=-1");
                if self.resend {
                    arg("--ignore-times");
                } else if self.compare_contents {
                    arg("--checksum");
                }
            }
            Some(_) => {
                // Missing paths are deleted by a run of their own (see
                // `deletions`); one that vanishes after it was looked at has its
                // deletion queued as an event.
                list_option(by_args, nul, &mut arg);
                if by_args {
                    // As `--files-from` implies: a listed directory is made
                    // (and see `--no-recursive` below).
                    arg("--dirs");
                }
                arg("--ignore-missing-args");
                // A directory a listed file replaces goes (`--force`) only on
                // a local target: without `--delete`, rsync sends a remote
                // receiver no rules, and it removed what an exclude protects
                // there (a black-box attack). Elsewhere the directory is
                // replaced by its tree's comparison, which deletes by the
                // rules, or the path is held.
                if !self.keep_deleted && crate::config::checks::is_local_target(&self.destination) {
                    arg("--force");
                }
                arg("--ignore-times");
                // Exact mtimes when rsync sets them: compared in whole seconds
                // (its default), a symlink or fifo made on the target in the
                // same second as in the source would keep its own nanoseconds.
                arg("--modify-window=-1");
            }
        }
        let mut argv: Vec<OsString> = vec![self.rsync.clone().into()];
        argv.extend(args.into_iter().map(OsString::from));
        if self.speed > 0 {
            argv.push(format!("--bwlimit={}", self.speed).into());
        }
        if !self.io_timeout.is_zero() {
            argv.push(format!("--timeout={}", self.io_timeout.as_secs().max(1)).into());
        }
        if crate::config::checks::is_daemon_target(&self.destination) {
            // Small writes go at once rather than waiting for the daemon to
            // acknowledge the last one, which it delays (up to 40 ms on Linux):
            // twice per run otherwise (README "rsync:// targets and small writes"). A
            // `--sockopts` of the user's comes later and replaces it.
            argv.push("--sockopts=TCP_NODELAY".into());
        }
        if self.exact {
            // The daemon's rules first: every other name hidden and
            // protected before any rule of the user's (see `guarded.rs`).
            self.push_filter_rules(&mut argv);
        }
        if let Some(rule) = super::leftovers::partial_name_rule(&self.extra) {
            argv.push(rule.into());
        }
        for pattern in &self.excludes {
            argv.push(format!("--exclude={pattern}").into());
        }
        // The root held (its attributes failed) is not excluded: that would
        // match nothing or everything; it is retried by a run of its own
        // (`root_attributes`).
        // As few rules as cover them, within an eighth of the kernel's
        // limit; past it the rest go unexcluded (rsync reports them, and
        // they are held again) rather than the run never starting.
        let budget = super::listing::arg_max() / 8;
        let mut used = 0;
        let left_out = super::left_out::covering(self.held.iter().chain(&self.unsettled));
        for (i, path) in left_out.iter().enumerate() {
            let mut arg = b"--exclude=".to_vec();
            arg.extend(super::deletions::anchored(path, false));
            used += arg.len() + 1 + std::mem::size_of::<usize>();
            if used > budget {
                tracing::warn!(
                    "{} held path(s) past the share of the argument limit are not left out \
                     of this run: rsync reports them again",
                    left_out.len() - i
                );
                break;
            }
            argv.push(OsString::from_vec(arg));
        }
        for extra in &self.extra {
            argv.push(extra.into());
        }
        if self.paths.is_some() && !self.recursive && !self.deleting && !self.sweeping {
            // A list is the paths it names, whatever the user's options: their
            // `-a` (with arguments) or `-r` (either way) would walk every
            // listed directory, sending all below it again (a chmod of the
            // root: the whole tree) and, with their `--delete`, deleting there.
            argv.push("--no-recursive".into());
        }
        if matches!(
            self.part,
            super::job::FullPart::TopLevel | super::job::FullPart::RootAttributes
        ) {
            // The root's own entries, its directories made empty: their
            // contents go in the parts that walk them (`into_empty`); or
            // the root alone, whatever the user's `-r`.
            argv.push("--no-recursive".into());
            argv.push("--dirs".into());
        }
        if brief && partial_dir.is_some() {
            // The rule rsync adds for its partial directory, after every
            // other: a source entry of that name is never sent, a target's
            // never deleted but in a directory deleted whole.
            argv.push(super::leftovers::partial_dir_rule().into());
        }
        if let Some(rsh) = &self.rsh {
            argv.push(rsh.into());
        }
        if !self.exact {
            // After the user's rules, whose excludes keep protecting what
            // they match.
            self.push_filter_rules(&mut argv);
        }
        match self.paths.as_deref() {
            Some(paths) if by_args => argv.extend(super::listing::as_args(&self.source, paths)),
            _ => {
                let mut source = self.source.clone().into_os_string().into_vec();
                if !source.ends_with(b"/") {
                    source.push(b'/');
                }
                argv.push(OsString::from_vec(source));
            }
        }
        argv.push(self.destination.clone().into());
        argv
    }

    /// Whether this job's paths go to rsync as arguments rather than on stdin
    /// (see `listing`): a transfer of listed paths whose list fits.
    pub fn lists_as_args(&self) -> bool {
        match &self.paths {
            Some(paths) if !self.deleting && !self.sweeping => {
                super::listing::fits_as_args(&self.source, paths)
            }
            _ => false,
        }
    }

    /// The command line of a dry run of this (full) job that itemizes what it
    /// would change (`verify`): `--dry-run --out-format=TAG%i %n`, no progress, and
    /// `--checksum` when contents are to be compared. Partial directories stay
    /// excluded (rsync's own rule): they are not drift.
    pub fn verify_argv(&self, checksum: bool) -> Vec<OsString> {
        let risk = OsString::from(super::leftovers::risk_partial_dirs());
        let mut argv: Vec<OsString> = self
            .argv()
            .into_iter()
            .filter(|a| a != INFO && a != INFO_BRIEF && *a != risk)
            .collect();
        let mut extra: Vec<OsString> = vec![
            "--dry-run".into(),
            format!("--out-format={}%i %n", super::verify::ITEM_TAG).into(),
        ];
        if checksum {
            extra.push("--checksum".into());
        }
        argv.splice(1..1, extra);
        argv
    }

    /// Adds the fallback of the moves that could not be renamed (`renamed` says
    /// which were): the old path is deleted on the target, or compared whole
    /// when it exists again, and the new one compared whole, every file sent
    /// (whatever the target holds there, if anything, is another tree).
    pub fn add_failed_moves(&mut self, renamed: &[bool]) {
        let Some(paths) = &mut self.paths else {
            return;
        };
        let mut added = false;
        // What lies below a directory named like the partial directory is
        // never listed, whatever brought it there (an entry moved into one
        // was mirrored; a black-box attack).
        let partial = super::partial_dir_name(&self.extra);
        let listable = |path: &[u8]| {
            !partial
                .as_deref()
                .is_some_and(|name| super::below_partial_dir(path, name))
        };
        for (m, ok) in self
            .moves
            .iter()
            .zip(renamed.iter().chain(std::iter::repeat(&false)))
        {
            if !ok {
                // The old name as a tree too: made again meanwhile (`mv x y;
                // mkdir x`), what the target still has below it must go, which
                // a listed directory alone would leave (found by a black-box
                // attack); gone, it is deleted either way.
                for place in [&m.from, &m.to] {
                    if listable(place) {
                        self.trees.push(place.clone());
                    }
                }
                if listable(&m.from) {
                    paths.push(m.from.clone());
                }
                added = true;
            }
        }
        if added {
            *paths = crate::listed_paths::for_rsync(&self.source, std::mem::take(paths));
        }
    }

    /// Takes the listed paths that are missing from the source now out of the
    /// list (they are deleted by a run of their own, see `deletions`).
    pub fn take_missing(&mut self) -> Vec<Vec<u8>> {
        match self.paths.take() {
            Some(paths) => {
                // Compiled only when a pattern is for directories only (the
                // one case it decides), not on every run's path.
                let dir_only = self
                    .excludes
                    .iter()
                    .any(|p| p.len() > 1 && p.ends_with('/'));
                let excludes = dir_only
                    .then(|| ExcludeSet::new(&self.excludes).ok())
                    .flatten();
                let (present, missing) = match excludes {
                    Some(excludes) => {
                        super::deletions::split_missing_or_hidden(&self.source, paths, &excludes)
                    }
                    None => super::deletions::split_missing(&self.source, paths),
                };
                self.paths = Some(present);
                missing
            }
            None => Vec::new(),
        }
    }

    /// The remote shell command rsync runs for this job (and the renames run
    /// over ssh): ours with connection sharing, else the user's.
    pub fn remote_shell(&self) -> String {
        match self.rsh.as_deref().and_then(|r| r.strip_prefix("--rsh=")) {
            Some(shared) => shared.to_string(),
            None => super::ssh_reuse::remote_shell(&self.extra),
        }
    }

    /// What rsync reads on stdin: the rules of a deletion or a sweep (those
    /// a line can say: see [`Job::argv`] for the others), or the changed
    /// paths when they do not go as arguments (see `listing`); one a line, or
    /// NUL-separated when a path could not be said on a line and cannot go as
    /// an argument either (see [`Job::needs_nul`], `newline_names`). Leading
    /// dashes, spaces and any other byte pass unchanged either way.
    pub fn stdin(&self) -> Option<Vec<u8>> {
        let paths = self.paths.as_ref()?;
        if let Some(rules) = self.filter_rules() {
            let mut lines = Vec::new();
            for rule in rules.iter().filter(|r| !has_line_end(r)) {
                lines.extend_from_slice(rule);
                lines.push(b'\n');
            }
            return Some(lines);
        }
        if self.lists_as_args() {
            return None;
        }
        let mut list = Vec::with_capacity(paths.iter().map(|p| p.len() + 3).sum());
        for path in paths {
            // rsync drops a line of `--files-from` that starts with `#` or `;`
            // as a comment, NUL-separated or not: `./` keeps the name (found
            // by a review: such files never arrived).
            if path.first().is_some_and(|b| matches!(b, b'#' | b';')) {
                list.extend_from_slice(b"./");
            }
            if path.is_empty() {
                // The root: rsync skips an empty item, NUL-separated or not
                // (a tree of the root compared whole did nothing).
                list.push(b'.');
            }
            list.extend_from_slice(path);
            list.push(0);
        }
        if !self.needs_nul() {
            // No item holds a newline or a CR (nor a NUL, which no name does).
            list.iter_mut()
                .filter(|b| **b == 0)
                .for_each(|b| *b = b'\n');
        }
        Some(list)
    }

    /// The rules of a deletion or a sweep: the ancestors and the names to
    /// delete (stdin), then everything else hidden from the sender and
    /// protected on the receiver (explicit sides: a user's
    /// `--delete-excluded` cannot turn them into deletions).
    fn push_filter_rules(&self, argv: &mut Vec<OsString>) {
        let Some(rules) = self.filter_rules() else {
            return;
        };
        argv.push("--include-from=-".into());
        // A rule with a newline or a CR, which would end its line, goes as
        // an argument, where rsync takes it whole: never `--from0`, which
        // makes rsync read the user's own rule files NUL-separated (what they
        // protect was deleted), nor `?`, which matched other names too (a
        // target-only `aXb` beside a deleted `a\nb`).
        for rule in rules.iter().filter(|r| has_line_end(r)) {
            argv.push(OsString::from_vec(
                [b"--filter=+ ", rule.as_slice()].concat(),
            ));
        }
        argv.push("--filter=H *".into());
        argv.push("--filter=P *".into());
    }

    /// The filter rules of a deletion or a sweep (see `deletions`, `leftovers`).
    fn filter_rules(&self) -> Option<Vec<Vec<u8>>> {
        self.rules_for(self.paths.as_ref()?)
    }

    /// The filter rules this job (a deletion or a sweep) would have for
    /// `paths`.
    pub(super) fn rules_for(&self, paths: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
        if self.deleting && self.exact {
            Some(super::deletions::exact_rules(paths))
        } else if self.deleting {
            Some(super::deletions::rules(paths))
        } else if self.sweeping {
            Some(super::leftovers::sweep_rules(paths))
        } else {
            None
        }
    }

    /// Whether what rsync reads on stdin must be NUL-separated (`--from0`):
    /// in a list of paths, a path holds a newline or a CR (which end a line
    /// for rsync; the root is said as `.`). Such paths go as arguments in runs
    /// of their own instead whenever they can (`newline_names`), and rules
    /// with them always do (see [`Job::argv`]); a name that begins with `#`
    /// or `;` (a comment, dropped either way) goes as `./NAME` (see
    /// [`Job::stdin`]). `--from0` is avoided because rsync applies it to the
    /// user's rule files too (`--exclude-from`, `--filter=merge`, `-F`),
    /// reading each as one pattern that matches nothing: what they exclude
    /// was sent, and what they protect deleted.
    pub fn needs_nul(&self) -> bool {
        let Some(paths) = &self.paths else {
            return false;
        };
        if self.deleting || self.sweeping {
            return false;
        }
        paths.iter().any(|path| has_line_end(path))
    }
}

/// Whether `item` holds a byte that ends a line for rsync (a newline or a CR).
pub(super) fn has_line_end(item: &[u8]) -> bool {
    item.iter().any(|b| matches!(b, b'\n' | b'\r'))
}

/// An argv as a copy-pasteable shell line, for logs and `--pretend`.
pub fn display_argv(argv: &[OsString]) -> String {
    argv.iter()
        .map(|arg| {
            let text = String::from_utf8_lossy(arg.as_bytes());
            // Options stay readable (`--bwlimit=500`, not quoted as shlex
            // would); anything else is quoted by shlex, which refuses only a
            // NUL, which no argv holds.
            let plain = !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=./:@,+%".contains(&b));
            if plain {
                return text.into_owned();
            }
            shlex::try_quote(&text).map_or_else(|_| text.to_string(), |q| q.into_owned())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(paths: Option<Vec<Vec<u8>>>) -> Job {
        Job {
            rsync: "/usr/bin/rsync".into(),
            source: "/srv/blog".into(),
            destination: "backup@m1:/srv/blog/".into(),
            speed: 500,
            excludes: vec!["/cache/".into()],
            held: Vec::new(),
            extra: vec!["--rsh=ssh -p 22".into()],
            rsh: None,
            io_timeout: std::time::Duration::from_secs(600),
            delete_nothing: false,
            keep_deleted: false,
            compare_contents: false,
            paths,
            moves: Vec::new(),
            trees: Vec::new(),
            split: 1,
            recursive: false,
            walk: false,
            resend: false,
            deleting: false,
            sweep: Vec::new(),
            sweeping: false,
            launch: Default::default(),
            ..Job::default()
        }
    }

    #[test]
    fn full_sync_deletes_and_keeps_excludes() {
        let argv = display_argv(&job(None).argv());
        assert_eq!(
            argv,
            "/usr/bin/rsync --archive --secluded-args --mkpath --partial-dir=.inosync-partial \
             --info=stats1,progress2 --delete --delete-delay '--filter=R .inosync-partial/' \
             --modify-window=-1 --bwlimit=500 --timeout=600 '--filter=-s .inosync-partial' \
             --exclude=/cache/ '--rsh=ssh -p 22' /srv/blog/ backup@m1:/srv/blog/"
        );
    }

    #[test]
    fn a_brief_run_asks_for_no_progress_nor_partial_directory_and_excludes_its_name_last() {
        let mut brief = job(Some(vec![b"new".to_vec()]));
        brief.recursive = true;
        brief.walk = true;
        brief.brief = true;
        let argv = display_argv(&brief.argv());
        assert!(
            !argv.contains("--partial-dir") && !argv.contains("progress2"),
            "{argv}"
        );
        assert!(argv.contains(" --info=stats1 "), "{argv}");
        // rsync's own rule for its partial directory comes after every other,
        // the user's included: so does ours.
        assert!(
            argv.ends_with(
                "'--rsh=ssh -p 22' '--filter=-p .inosync-partial/' /srv/blog/./new backup@m1:/srv/blog/"
            ),
            "{argv}"
        );
        // Writing in place, the user's choice, has no partial directory to
        // exclude either way.
        brief.extra = vec!["--inplace".into()];
        let argv = display_argv(&brief.argv());
        assert!(!argv.contains("-p .inosync-partial"), "{argv}");
        assert!(argv.contains("'--filter=R .inosync-partial/'"), "{argv}");
    }

    #[test]
    fn a_job_that_keeps_deletions_passes_no_delete() {
        let mut full = job(None);
        full.keep_deleted = true;
        let mut trees = job(Some(vec![b"moved".to_vec()]));
        trees.recursive = true;
        trees.keep_deleted = true;
        let mut listed = job(Some(vec![b"keep".to_vec()]));
        listed.keep_deleted = true;
        // --force would delete a directory a file replaces.
        let argv = display_argv(&listed.argv());
        assert!(!argv.contains("--force"), "{argv}");
        for job in [full, trees] {
            let argv = display_argv(&job.argv());
            assert!(
                !argv.contains("--delete") && !argv.contains("--force"),
                "{argv}"
            );
            // verify dry-runs the same command: a kept file is not itemized
            // as `*deleting`, so it is not drift.
            let verify = display_argv(&job.verify_argv(false));
            assert!(!verify.contains("--delete"), "{verify}");
        }
    }

    #[test]
    fn a_daemon_connection_sends_without_nagle_delay_before_the_users_args() {
        // Nagle's algorithm against the daemon's delayed acknowledgements:
        // about 40 ms per exchange, twice per run (README "rsync:// targets and small writes").
        for destination in ["rsync://m1/blog/", "m1::blog/", "backup@m1::blog"] {
            let mut daemon = job(Some(vec![b"a".to_vec()]));
            daemon.destination = destination.into();
            daemon.extra = vec!["--sockopts=SO_SNDBUF=65536".into()];
            let argv = daemon.argv();
            let ours = argv.iter().position(|a| a == "--sockopts=TCP_NODELAY");
            let users = argv.iter().position(|a| a == "--sockopts=SO_SNDBUF=65536");
            assert!(ours.is_some() && ours < users, "{destination}: {argv:?}");
            let verify = daemon.verify_argv(false);
            assert!(verify.contains(&OsString::from("--sockopts=TCP_NODELAY")));
        }
        for destination in ["backup@m1:/srv/blog/", "/backup/a::b", "m1:dir::x"] {
            let mut other = job(None);
            other.destination = destination.into();
            let argv = display_argv(&other.argv());
            assert!(!argv.contains("--sockopts"), "{destination}: {argv}");
        }
    }

    #[test]
    fn a_batch_lists_its_paths_as_arguments_below_the_source() {
        let job = job(Some(vec![
            b"a b".to_vec(),
            b"-x\nnl".to_vec(),
            b"\xff".to_vec(),
        ]));
        let argv = job.argv();
        assert_eq!(job.stdin(), None);
        let tail: Vec<&[u8]> = argv[argv.len() - 4..]
            .iter()
            .map(|a| a.as_bytes())
            .collect();
        assert_eq!(
            tail,
            vec![
                &b"/srv/blog/./a b"[..],
                b"/srv/blog/./-x\nnl",
                b"/srv/blog/./\xff",
                b"backup@m1:/srv/blog/"
            ]
        );
        let argv = display_argv(&argv);
        // As `--files-from` does: relative names, listed directories made
        // rather than walked.
        assert!(
            argv.contains(" --relative --dirs --ignore-missing-args "),
            "{argv}"
        );
        assert!(
            !argv.contains("--files-from") && !argv.contains("--from0"),
            "{argv}"
        );
        let mut walk = job.clone();
        walk.recursive = true;
        let argv = display_argv(&walk.argv());
        assert!(argv.contains(" --relative --recursive "), "{argv}");
        assert!(!argv.contains("--no-recursive"), "{argv}");
    }

    #[test]
    fn a_list_never_walks_its_directories_whatever_the_users_options() {
        for extra in [
            &["-a"][..],
            &["-avz"],
            &["--archive"],
            &["-r"],
            &["--recursive"],
        ] {
            for long in [false, true] {
                let mut paths = vec![b"dir".to_vec()];
                if long {
                    // Past what goes as arguments: on stdin.
                    paths.extend((0..4000).map(|i| format!("{i:0400}").into_bytes()));
                }
                let mut listed = job(Some(paths));
                listed.extra = extra.iter().map(|a| a.to_string()).collect();
                let argv = listed.argv();
                assert_eq!(listed.lists_as_args(), !long);
                let user = argv.iter().rposition(|a| a == extra[0]);
                let ours = argv.iter().rposition(|a| a == "--no-recursive");
                assert!(ours.is_some() && user < ours, "{extra:?}: {argv:?}");
            }
        }
        // A walk and a tree compared whole recurse; deletions and sweeps list
        // no directory to walk.
        for kind in 0..3 {
            let mut other = job(Some(vec![b"dir".to_vec()]));
            other.recursive = kind == 0;
            other.deleting = kind == 1;
            other.sweeping = kind == 2;
            assert!(!other.argv().contains(&OsString::from("--no-recursive")));
        }
    }

    #[test]
    fn a_deletion_or_sweep_copied_from_a_brief_job_keeps_the_partial_directory() {
        for kind in [0, 1] {
            let mut job = job(Some(vec![b"dir".to_vec()]));
            job.brief = true;
            job.deleting = kind == 0;
            job.sweeping = kind == 1;
            let argv = display_argv(&job.argv());
            assert!(argv.contains("--partial-dir=.inosync-partial"), "{argv}");
            assert!(!argv.contains("-p .inosync-partial"), "{argv}");
        }
    }

    #[test]
    fn a_batch_too_long_for_arguments_is_listed_on_stdin_with_nul() {
        // Past any ARG_MAX / 4 (at most 1.5 MiB: 6 MiB / 4).
        let mut paths: Vec<Vec<u8>> = (0..4000)
            .map(|i| vec![b'a' + (i % 26) as u8; 400])
            .collect();
        paths[0] = b"-x\nnl".to_vec();
        let job = job(Some(paths));
        let argv = job.argv();
        assert!(argv.contains(&OsString::from("--files-from=-")));
        assert!(argv.contains(&OsString::from("/srv/blog/")));
        let stdin = job.stdin().expect("a list on stdin");
        assert!(stdin.starts_with(b"-x\nnl\0bbbb"));
        assert_eq!(stdin.iter().filter(|b| **b == 0).count(), 4000);
    }

    #[test]
    fn stdin_is_one_item_a_line_unless_an_item_cannot_be_said_on_one() {
        let big = |first: &[u8]| {
            let mut paths: Vec<Vec<u8>> = (0..4000)
                .map(|i| format!("{i:0400}").into_bytes())
                .collect();
            paths[0] = first.to_vec();
            job(Some(paths))
        };
        // Past what goes as arguments, with plain names: lines, no --from0
        // (which would make rsync read the user's rule files NUL-separated).
        let plain = big(b" spaced -x \\ *?");
        assert!(!plain.argv().contains(&OsString::from("--from0")));
        let stdin = plain.stdin().expect("a list");
        assert!(stdin.starts_with(b" spaced -x \\ *?\n0000"));
        assert!(!stdin.contains(&0));
        // The root as `.`: rsync skips an empty item.
        let root = big(b"");
        assert!(!root.argv().contains(&OsString::from("--from0")));
        assert!(root.stdin().expect("a list").starts_with(b".\n0000"));
        for odd in [&b"new\nline"[..], b"cr\r"] {
            let job = big(odd);
            assert!(job.argv().contains(&OsString::from("--from0")), "{odd:?}");
            assert!(
                job.stdin()
                    .expect("a list")
                    .starts_with(&[odd, b"\0"].concat())
            );
        }
        // A name rsync would read as a comment, NUL-separated or not.
        for comment in [&b"#comment"[..], b";comment"] {
            let job = big(comment);
            assert!(!job.argv().contains(&OsString::from("--from0")));
            let stdin = job.stdin().expect("a list");
            assert!(stdin.starts_with(&[b"./", comment, b"\n"].concat()));
        }
        for kind in [0, 1] {
            let mut rules = job(Some(vec![b"d/#gone".to_vec()]));
            rules.deleting = kind == 0;
            rules.sweeping = kind == 1;
            assert!(!rules.argv().contains(&OsString::from("--from0")));
            let stdin = rules.stdin().expect("rules");
            assert!(!stdin.contains(&0) && stdin.ends_with(b"\n"), "{stdin:?}");
            // A rule with a newline goes whole as an argument, before the
            // rules that hide and protect the rest: no --from0 (which would
            // make rsync read the user's rule files NUL-separated), no `?`
            // (which matched look-alike names too).
            rules.paths = Some(vec![b"d/new\nline".to_vec()]);
            let argv = rules.argv();
            assert!(!argv.contains(&OsString::from("--from0")));
            let stdin = rules.stdin().expect("rules");
            assert!(!stdin.contains(&0) && !stdin.contains(&b'?'), "{stdin:?}");
            assert_eq!(
                stdin.split(|b| *b == b'\n').filter(|l| l.len() > 1).count(),
                1
            );
            let at = |arg: &[u8]| argv.iter().position(|a| a.as_bytes() == arg);
            let rule = argv
                .iter()
                .position(|a| a.as_bytes().starts_with(b"--filter=+ /d/new\nline"))
                .expect("the rule as an argument");
            assert!(at(b"--include-from=-") < Some(rule));
            assert!(Some(rule) < at(b"--filter=H *"));
        }
    }

    #[test]
    fn deletions_and_sweeps_keep_their_rules_on_stdin() {
        for kind in [0, 1] {
            let mut job = job(Some(vec![b"gone".to_vec()]));
            job.deleting = kind == 0;
            job.sweeping = kind == 1;
            assert!(job.stdin().is_some());
            let argv = display_argv(&job.argv());
            assert!(argv.ends_with(" /srv/blog/ backup@m1:/srv/blog/"), "{argv}");
        }
    }
}
