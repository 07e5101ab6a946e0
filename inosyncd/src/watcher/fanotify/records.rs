//! Parses what `read(2)` returns on a fanotify descriptor initialised with
//! `FAN_REPORT_DFID_NAME_TARGET`: a sequence of events, each a fixed header
//! followed by information records (a directory's file handle with an entry name,
//! the old and new directory+name of a rename, the object's own handle).
//!
//! The kernel is trusted to be consistent, but a record that does not fit is
//! never read past: a malformed event ends the parse of that buffer with an error
//! (the caller treats it as lost events), never a panic or an out-of-bounds read.

use std::fmt;

/// An object's identity as the kernel reports it: the filesystem id, the handle
/// type and the opaque handle bytes, packed into one byte string usable as a map
/// key and, split again, as a `struct file_handle` for `open_by_handle_at(2)`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fid(pub Vec<u8>);

impl Fid {
    /// Packs a filesystem id, handle type and handle bytes.
    pub fn new(fsid: u64, handle_type: i32, handle: &[u8]) -> Fid {
        let mut bytes = Vec::with_capacity(12 + handle.len());
        bytes.extend_from_slice(&fsid.to_ne_bytes());
        bytes.extend_from_slice(&handle_type.to_ne_bytes());
        bytes.extend_from_slice(handle);
        Fid(bytes)
    }

    /// The same handle with another filesystem key: the backend re-keys each
    /// event's handles with the filesystem's device number (fsids may collide).
    pub fn keyed(&self, key: u64) -> Fid {
        let mut bytes = self.0.clone();
        bytes[..8].copy_from_slice(&key.to_ne_bytes());
        Fid(bytes)
    }

    /// The filesystem key: the `f_fsid` of `statfs(2)` (two native ints) as the
    /// kernel reports it, or the device number once re-keyed.
    pub fn fsid(&self) -> u64 {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&self.0[..8]);
        u64::from_ne_bytes(raw)
    }

    /// The handle type for `struct file_handle`.
    pub fn handle_type(&self) -> i32 {
        let mut raw = [0u8; 4];
        raw.copy_from_slice(&self.0[8..12]);
        i32::from_ne_bytes(raw)
    }

    /// The opaque handle bytes.
    pub fn handle(&self) -> &[u8] {
        &self.0[12..]
    }
}

impl fmt::Debug for Fid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fid(fs {:x}, type {}, ", self.fsid(), self.handle_type())?;
        for byte in self.handle() {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

/// A directory and an entry name in it (`"."` names the directory itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DirEntry {
    pub dir: Fid,
    pub name: Vec<u8>,
}

/// One event: its mask and the records that came with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub mask: u64,
    /// The process that caused it (its thread group): the daemon's own writes
    /// (its log) are not changes to sync.
    pub pid: i32,
    /// Where it happened (`FAN_EVENT_INFO_TYPE_DFID_NAME`).
    pub entry: Option<DirEntry>,
    /// A rename's old place (`OLD_DFID_NAME`).
    pub old: Option<DirEntry>,
    /// A rename's new place (`NEW_DFID_NAME`).
    pub new: Option<DirEntry>,
    /// The object itself (`FAN_EVENT_INFO_TYPE_FID`): for create, delete and
    /// rename, the created, deleted or moved child.
    pub object: Option<Fid>,
}

/// Why a buffer could not be parsed to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed fanotify event: {}", self.0)
    }
}

const METADATA_LEN: usize = 24;
const INFO_HEADER_LEN: usize = 4;
const FID_FIXED_LEN: usize = INFO_HEADER_LEN + 8 + 8;

/// Parses every event in `buf`. Events parsed before a malformed one are kept.
pub fn parse(buf: &[u8], out: &mut Vec<Event>) -> Result<(), Malformed> {
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < METADATA_LEN {
            return Err(Malformed(format!("{} trailing bytes", rest.len())));
        }
        let event_len = u32_at(rest, 0) as usize;
        let version = rest[4];
        let metadata_len = u16_at(rest, 6) as usize;
        if version != libc::FANOTIFY_METADATA_VERSION {
            return Err(Malformed(format!("metadata version {version}")));
        }
        if event_len < METADATA_LEN || event_len > rest.len() || metadata_len > event_len {
            return Err(Malformed(format!(
                "event length {event_len}, metadata length {metadata_len}, {} bytes left",
                rest.len()
            )));
        }
        let mut event = Event {
            mask: u64_at(rest, 8),
            pid: u32_at(rest, 20) as i32,
            ..Event::default()
        };
        parse_records(&rest[metadata_len.max(METADATA_LEN)..event_len], &mut event)?;
        out.push(event);
        at += event_len;
    }
    Ok(())
}

fn parse_records(mut records: &[u8], event: &mut Event) -> Result<(), Malformed> {
    while !records.is_empty() {
        if records.len() < INFO_HEADER_LEN {
            return Err(Malformed("truncated information record".into()));
        }
        let info_type = records[0];
        let len = u16_at(records, 2) as usize;
        if len < INFO_HEADER_LEN || len > records.len() {
            return Err(Malformed(format!("information record length {len}")));
        }
        let record = &records[..len];
        match info_type {
            libc::FAN_EVENT_INFO_TYPE_FID | libc::FAN_EVENT_INFO_TYPE_DFID => {
                let (fid, _) = fid_record(record)?;
                if info_type == libc::FAN_EVENT_INFO_TYPE_FID {
                    event.object = Some(fid);
                } else {
                    event.entry = Some(DirEntry {
                        dir: fid,
                        name: b".".to_vec(),
                    });
                }
            }
            libc::FAN_EVENT_INFO_TYPE_DFID_NAME
            | libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
            | libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME => {
                let (dir, tail) = fid_record(record)?;
                let end = tail
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or_else(|| Malformed("entry name without its NUL".into()))?;
                let entry = Some(DirEntry {
                    dir,
                    name: tail[..end].to_vec(),
                });
                match info_type {
                    libc::FAN_EVENT_INFO_TYPE_DFID_NAME => event.entry = entry,
                    libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME => event.old = entry,
                    _ => event.new = entry,
                }
            }
            // pidfd, error records and types of later kernels: not ours to read.
            _ => {}
        }
        records = &records[len..];
    }
    Ok(())
}

/// The handle of a FID-type record and the bytes after it (the name, if any).
fn fid_record(record: &[u8]) -> Result<(Fid, &[u8]), Malformed> {
    if record.len() < FID_FIXED_LEN {
        return Err(Malformed("file handle record too short".into()));
    }
    let fsid = u64_at(record, INFO_HEADER_LEN);
    let handle_bytes = u32_at(record, INFO_HEADER_LEN + 8) as usize;
    let handle_type = u32_at(record, INFO_HEADER_LEN + 12) as i32;
    let end = FID_FIXED_LEN
        .checked_add(handle_bytes)
        .filter(|end| *end <= record.len())
        .ok_or_else(|| Malformed(format!("file handle of {handle_bytes} bytes")))?;
    Ok((
        Fid::new(fsid, handle_type, &record[FID_FIXED_LEN..end]),
        &record[end..],
    ))
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&buf[at..at + 8]);
    u64::from_ne_bytes(raw)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Builds event bytes as the kernel lays them out.
    pub struct EventBytes {
        mask: u64,
        records: Vec<u8>,
    }

    impl EventBytes {
        pub fn new(mask: u64) -> EventBytes {
            EventBytes {
                mask,
                records: Vec::new(),
            }
        }

        pub fn record(mut self, info_type: u8, fid: &Fid, name: Option<&[u8]>) -> EventBytes {
            let mut body = Vec::new();
            body.extend_from_slice(&fid.fsid().to_ne_bytes());
            body.extend_from_slice(&(fid.handle().len() as u32).to_ne_bytes());
            body.extend_from_slice(&fid.handle_type().to_ne_bytes());
            body.extend_from_slice(fid.handle());
            if let Some(name) = name {
                body.extend_from_slice(name);
                body.push(0);
            }
            while !(body.len() + INFO_HEADER_LEN).is_multiple_of(4) {
                body.push(0);
            }
            self.records.push(info_type);
            self.records.push(0);
            self.records
                .extend_from_slice(&((body.len() + INFO_HEADER_LEN) as u16).to_ne_bytes());
            self.records.extend_from_slice(&body);
            self
        }

        pub fn bytes(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&((METADATA_LEN + self.records.len()) as u32).to_ne_bytes());
            out.push(libc::FANOTIFY_METADATA_VERSION);
            out.push(0);
            out.extend_from_slice(&(METADATA_LEN as u16).to_ne_bytes());
            out.extend_from_slice(&self.mask.to_ne_bytes());
            out.extend_from_slice(&libc::FAN_NOFD.to_ne_bytes());
            out.extend_from_slice(&1234i32.to_ne_bytes());
            out.extend_from_slice(&self.records);
            out
        }
    }

    fn fid(n: u8) -> Fid {
        Fid::new(0xabcd, 1, &[n; 8])
    }

    #[test]
    fn a_create_with_its_child() {
        let bytes = EventBytes::new(libc::FAN_CREATE | libc::FAN_ONDIR)
            .record(
                libc::FAN_EVENT_INFO_TYPE_DFID_NAME,
                &fid(1),
                Some(b"new dir"),
            )
            .record(libc::FAN_EVENT_INFO_TYPE_FID, &fid(2), None)
            .bytes();
        let mut events = Vec::new();
        parse(&bytes, &mut events).unwrap();
        assert_eq!(
            events,
            vec![Event {
                mask: libc::FAN_CREATE | libc::FAN_ONDIR,
                pid: 1234,
                entry: Some(DirEntry {
                    dir: fid(1),
                    name: b"new dir".to_vec()
                }),
                object: Some(fid(2)),
                ..Event::default()
            }]
        );
    }

    #[test]
    fn a_rename_and_a_second_event_in_one_buffer() {
        let mut bytes = EventBytes::new(libc::FAN_RENAME)
            .record(libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, &fid(1), Some(b"a"))
            .record(
                libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
                &fid(3),
                Some(b"b\n"),
            )
            .record(libc::FAN_EVENT_INFO_TYPE_FID, &fid(2), None)
            .bytes();
        bytes.extend(
            EventBytes::new(libc::FAN_CLOSE_WRITE)
                .record(libc::FAN_EVENT_INFO_TYPE_DFID_NAME, &fid(3), Some(&[0xff]))
                .bytes(),
        );
        let mut events = Vec::new();
        parse(&bytes, &mut events).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].old.as_ref().unwrap().name, b"a");
        assert_eq!(events[0].new.as_ref().unwrap().dir, fid(3));
        assert_eq!(events[0].new.as_ref().unwrap().name, b"b\n");
        assert_eq!(events[0].object, Some(fid(2)));
        assert_eq!(events[1].entry.as_ref().unwrap().name, vec![0xff]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = EventBytes::new(libc::FAN_DELETE)
            .record(libc::FAN_EVENT_INFO_TYPE_DFID_NAME, &fid(1), Some(b"gone"))
            .record(libc::FAN_EVENT_INFO_TYPE_FID, &fid(2), None)
            .bytes();
        for cut in 1..bytes.len() {
            let mut events = Vec::new();
            assert!(parse(&bytes[..cut], &mut events).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn lying_lengths_are_errors() {
        let good = EventBytes::new(libc::FAN_DELETE)
            .record(libc::FAN_EVENT_INFO_TYPE_DFID_NAME, &fid(1), Some(b"x"))
            .bytes();
        // A handle length far past the record.
        let mut bad = good.clone();
        bad[METADATA_LEN + 12..METADATA_LEN + 16].copy_from_slice(&9999u32.to_ne_bytes());
        assert!(parse(&bad, &mut Vec::new()).is_err());
        // An event length of zero would loop forever.
        let mut bad = good.clone();
        bad[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(parse(&bad, &mut Vec::new()).is_err());
        // A record length of zero likewise.
        let mut bad = good;
        bad[METADATA_LEN + 2..METADATA_LEN + 4].copy_from_slice(&0u16.to_ne_bytes());
        assert!(parse(&bad, &mut Vec::new()).is_err());
    }

    #[test]
    fn overflow_has_no_records() {
        let bytes = EventBytes::new(libc::FAN_Q_OVERFLOW).bytes();
        let mut events = Vec::new();
        parse(&bytes, &mut events).unwrap();
        assert_eq!(events[0].mask, libc::FAN_Q_OVERFLOW);
        assert_eq!(events[0].entry, None);
    }
}
