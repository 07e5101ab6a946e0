//! The `events` setting (inosync's `emask`): which inotify events make a path
//! pending. Names are inotify's own, as in inosync's config.

use inotify::{EventMask, WatchMask};

/// Every name accepted in `events`, with its inotify bits.
const NAMES: &[(&str, u32)] = &[
    ("IN_ACCESS", libc::IN_ACCESS),
    ("IN_MODIFY", libc::IN_MODIFY),
    ("IN_ATTRIB", libc::IN_ATTRIB),
    ("IN_CLOSE_WRITE", libc::IN_CLOSE_WRITE),
    ("IN_CLOSE_NOWRITE", libc::IN_CLOSE_NOWRITE),
    ("IN_OPEN", libc::IN_OPEN),
    ("IN_MOVED_FROM", libc::IN_MOVED_FROM),
    ("IN_MOVED_TO", libc::IN_MOVED_TO),
    ("IN_CREATE", libc::IN_CREATE),
    ("IN_DELETE", libc::IN_DELETE),
    ("IN_DELETE_SELF", libc::IN_DELETE_SELF),
    ("IN_MOVE_SELF", libc::IN_MOVE_SELF),
    ("IN_CLOSE", libc::IN_CLOSE),
    ("IN_MOVE", libc::IN_MOVE),
    ("IN_ALL_EVENTS", libc::IN_ALL_EVENTS),
];

/// Events a directory watch always needs, whatever the user chose, to keep the watch
/// table right: new, moved and deleted directories, the watch's own end, and
/// attribute changes (a directory the daemon could not read made readable).
const STRUCTURE: u32 = libc::IN_ATTRIB
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

/// A set of inotify event bits chosen by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSet(u32);

/// inosync's default emask plus `IN_ATTRIB`, so that chmod, chown and touch reach
/// the mirror, and `IN_MODIFY`, so that a write never followed by a close
/// (`truncate(2)` by path, a log kept open) arrives once the file is quiet (an
/// inosync `.py` emask is kept as given).
impl Default for EventSet {
    fn default() -> Self {
        EventSet(
            libc::IN_CLOSE_WRITE
                | libc::IN_CREATE
                | libc::IN_DELETE
                | libc::IN_MOVED_FROM
                | libc::IN_MOVED_TO
                | libc::IN_ATTRIB
                | libc::IN_MODIFY,
        )
    }
}

/// Why a list of events is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// An event name inotify does not have; the text lists the valid ones so
    /// a typo is fixed without opening the manual.
    #[error("unknown event {0:?}; valid events: {valid}", valid = valid_names())]
    Unknown(String),
    /// No event that reports a write: a changed file would reach the mirror
    /// only with a full sync (found by a black-box attack: `events = []` was
    /// taken, and nothing but new names was ever synced).
    #[error(
        "no event that reports a file's new content (IN_CLOSE_WRITE or IN_MODIFY): \
         changed files would never be synced; leave `events` out for the default"
    )]
    NoWrite,
}

fn valid_names() -> String {
    let valid: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
    valid.join(", ")
}

impl EventSet {
    /// Builds the set from names such as `"IN_CLOSE_WRITE"`; the error names the
    /// first unknown one and lists the valid ones.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<EventSet, EventsError> {
        let mut bits = 0;
        for name in names {
            let name = name.as_ref();
            match NAMES.iter().find(|(known, _)| *known == name) {
                Some((_, bit)) => bits |= bit,
                None => return Err(EventsError::Unknown(name.to_string())),
            }
        }
        if bits & (libc::IN_CLOSE_WRITE | libc::IN_MODIFY) == 0 {
            return Err(EventsError::NoWrite);
        }
        Ok(EventSet(bits))
    }

    /// The raw inotify bits (fanotify's content events use the same values).
    pub fn bits(&self) -> u32 {
        self.0
    }

    /// The names in this set, single events only, for `--check` and `status`.
    pub fn names(&self) -> Vec<&'static str> {
        NAMES
            .iter()
            .filter(|(_, bit)| bit.count_ones() == 1 && self.0 & bit != 0)
            .map(|(name, _)| *name)
            .collect()
    }

    /// Whether attribute changes (chmod, chown, touch) make a path pending.
    pub fn sees_attributes(&self) -> bool {
        self.0 & libc::IN_ATTRIB != 0
    }

    /// Whether a write never followed by a close (`IN_MODIFY` alone) is seen.
    pub fn sees_unclosed_writes(&self) -> bool {
        self.0 & libc::IN_MODIFY != 0
    }

    /// Whether an event with this mask should make its path pending.
    pub fn triggers(&self, mask: EventMask) -> bool {
        mask.bits() & self.0 != 0
    }

    /// Whether files found by scanning a new directory count as changes: they are
    /// what creates, writes and moves-in would have reported had the watch existed.
    pub fn wants_new_entries(&self) -> bool {
        self.0 & (libc::IN_CREATE | libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO) != 0
    }

    /// The mask for `inotify_add_watch`: the user's events plus those the watch table
    /// needs, on directories only, never following a symlink.
    pub fn watch_mask(&self) -> WatchMask {
        // No `IN_EXCL_UNLINK`: a write through a name removed since is the
        // only word of a change to the file's other names (see the inotify
        // backend's `removed_names`).
        let bits = self.0 | STRUCTURE | libc::IN_ONLYDIR | libc::IN_DONT_FOLLOW;
        WatchMask::from_bits_retain(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let set = EventSet::from_names(&["IN_CLOSE_WRITE", "IN_ATTRIB"]).unwrap();
        assert_eq!(set.names(), vec!["IN_ATTRIB", "IN_CLOSE_WRITE"]);
    }

    #[test]
    fn a_list_without_a_write_event_is_refused() {
        for names in [&[][..], &["IN_ATTRIB"], &["IN_CREATE", "IN_DELETE"]] {
            assert_eq!(
                EventSet::from_names(names),
                Err(EventsError::NoWrite),
                "{names:?}"
            );
        }
        assert!(EventSet::from_names(&["IN_MODIFY"]).is_ok());
    }

    #[test]
    fn unknown_name_is_named() {
        let err = EventSet::from_names(&["IN_CLOSE_WRTIE"]).unwrap_err();
        assert!(err.to_string().contains("IN_CLOSE_WRTIE"), "{err}");
    }

    #[test]
    fn structure_events_are_always_watched() {
        let set = EventSet::from_names(&["IN_CLOSE_WRITE"]).unwrap();
        assert!(
            set.watch_mask()
                .contains(WatchMask::CREATE | WatchMask::MOVED_FROM)
        );
        assert!(!set.triggers(EventMask::CREATE));
        assert!(set.triggers(EventMask::CLOSE_WRITE));
    }
}
