//! The watch root's own attributes (a chmod, chown or touch of the root): a
//! run of their own, after the rest of the batch. Listed with the other
//! paths, the root would be `.`, and rsync's `--dirs` sends every entry of a
//! `.` it lists (each file again, with `--ignore-times`); as a full sync's
//! `SRC/ DST` with every entry hidden and protected, it sends the root's
//! mode, owner, times (and ACLs or xattrs when the user's options ask) and
//! nothing else (see `command.rs`).

use super::job::{FullPart, Job};

impl Job {
    /// Takes the root (the empty path) out of the list; whether it was listed.
    pub fn take_root(&mut self) -> bool {
        let Some(paths) = self.paths.as_mut() else {
            return false;
        };
        let before = paths.len();
        paths.retain(|path| !path.is_empty());
        paths.len() != before
    }

    /// The run that sends the root's attributes alone.
    pub fn root_attributes(&self) -> Job {
        Job {
            paths: None,
            part: FullPart::RootAttributes,
            moves: Vec::new(),
            trees: Vec::new(),
            made: Vec::new(),
            unsettled: Vec::new(),
            sweep: Vec::new(),
            split: 1,
            into_empty: false,
            recursive: false,
            walk: false,
            resend: false,
            deleting: false,
            sweeping: false,
            compare_contents: false,
            ..self.clone()
        }
    }

    /// Whether a batch of listed paths has nothing left to do (its root
    /// taken out, see [`Job::take_root`]).
    pub fn has_nothing_listed(&self) -> bool {
        self.paths.as_ref().is_some_and(Vec::is_empty)
            && self.moves.is_empty()
            && self.trees.is_empty()
            && self.made.is_empty()
            && self.sweep.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn listed(paths: &[&[u8]]) -> Job {
        Job {
            rsync: "/usr/bin/rsync".into(),
            source: "/srv/blog".into(),
            destination: "/mirror/blog".into(),
            extra: vec!["--delete-excluded".into(), "-r".into()],
            paths: Some(paths.iter().map(|p| p.to_vec()).collect()),
            ..Job::default()
        }
    }

    #[test]
    fn the_root_is_taken_out_of_the_list() {
        let mut job = listed(&[b"", b"a"]);
        assert!(job.take_root());
        assert_eq!(job.paths, Some(vec![b"a".to_vec()]));
        assert!(!job.take_root());
        assert!(!job.has_nothing_listed());
        let mut alone = listed(&[b""]);
        assert!(alone.take_root());
        assert!(alone.has_nothing_listed());
    }

    #[test]
    fn the_roots_run_hides_and_protects_every_entry_before_the_users_rules() {
        let argv = listed(&[b""]).root_attributes().argv();
        let at = |arg: &str| argv.iter().position(|a| a == &OsString::from(arg));
        let (hide, protect) = (at("--filter=H *").unwrap(), at("--filter=P *").unwrap());
        let users = at("--delete-excluded").unwrap();
        assert!(hide < users && protect < users, "{argv:?}");
        // Whatever the user's `-r`: the root alone.
        assert!(
            at("--no-recursive").unwrap() > at("-r").unwrap(),
            "{argv:?}"
        );
        assert!(at("--delete").is_none(), "{argv:?}");
        assert_eq!(argv[argv.len() - 2], OsString::from("/srv/blog/"));
        assert_eq!(argv[argv.len() - 1], OsString::from("/mirror/blog"));
    }
}
