//! The mounts of the daemon's mount namespace (`/proc/self/mountinfo`): which
//! filesystems are reachable below a watch root, and whether that changed. A
//! filesystem mounted inside a tree is part of what rsync mirrors (it crosses
//! mount points), so the watcher must watch it too, from the moment it appears
//! to the moment it goes.

use std::collections::BTreeSet;
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

/// One line of `/proc/self/mountinfo`, as far as the watcher needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount's id (unique while it exists).
    pub id: u64,
    /// The id of the mount it sits on.
    pub parent: u64,
    /// The filesystem's device number (`st_dev` of everything on it).
    pub dev: u64,
    /// The directory of the filesystem that is mounted (`/` for the whole one; a
    /// subdirectory for a bind mount of it).
    pub root: Vec<u8>,
    /// Where it is mounted.
    pub point: Vec<u8>,
    /// The filesystem type (`ext4`, `tmpfs`, ...), for messages.
    pub fstype: String,
}

/// Parses the text of `/proc/self/mountinfo`; lines that do not parse are
/// skipped (the kernel writes them; a field added by a later kernel is after
/// the separator and ignored).
pub fn parse(text: &[u8]) -> Vec<Mount> {
    text.split(|b| *b == b'\n').filter_map(parse_line).collect()
}

fn parse_line(line: &[u8]) -> Option<Mount> {
    let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let number = |f: &[u8]| std::str::from_utf8(f).ok()?.parse::<u64>().ok();
    let id = number(fields.first()?)?;
    let parent = number(fields.get(1)?)?;
    let (major, minor) = std::str::from_utf8(fields.get(2)?).ok()?.split_once(':')?;
    let dev = libc::makedev(major.parse().ok()?, minor.parse().ok()?);
    let separator = fields.iter().position(|f| *f == b"-")?;
    let fstype = String::from_utf8_lossy(fields.get(separator + 1)?).into_owned();
    Some(Mount {
        id,
        parent,
        dev,
        root: unescape(fields.get(3)?),
        point: unescape(fields.get(4)?),
        fstype,
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` (octal).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && let Some(octal) = field.get(i + 1..i + 4)
            && octal.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                octal
                    .iter()
                    .fold(0u8, |n, b| n.wrapping_mul(8).wrapping_add(b - b'0')),
            );
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

/// Whether `path` is `dir` or lies below it (by component).
pub fn is_within(path: &[u8], dir: &[u8]) -> bool {
    let dir = if dir.len() > 1 {
        dir.strip_suffix(b"/").unwrap_or(dir)
    } else {
        dir
    };
    path == dir
        || dir == b"/"
        || (path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/')
}

/// The mounts visible now at or below `root` (an absolute path with symlinks
/// resolved), and the mount `root` itself lies on, deepest mount points last.
/// A mount point covered by a later mount at the same place shows the later one.
pub fn reachable(mounts: &[Mount], root: &[u8]) -> Vec<Mount> {
    // The mount `root` is on: the visible one with the longest point above it.
    let on = visible(mounts)
        .filter(|m| is_within(root, &m.point))
        .max_by_key(|m| m.point.len())
        .cloned();
    let mut out: Vec<Mount> = on.into_iter().collect();
    out.extend(
        visible(mounts)
            .filter(|m| m.point != root && is_within(&m.point, root))
            .cloned(),
    );
    out.sort_by_key(|m| m.point.len());
    out.dedup_by_key(|m| m.id);
    out
}

/// [`reachable`] without the kernel's filesystems mounted inside the tree (a
/// chroot's `proc`) and what is mounted below them: nothing there is watched
/// or mirrored (`crate::kernel_filesystems`), so nothing there is marked.
pub fn watchable(mounts: &[Mount], root: &[u8]) -> Vec<Mount> {
    let all = reachable(mounts, root);
    let kernel: Vec<Vec<u8>> = all
        .iter()
        .skip(1)
        .filter(|m| m.is_kernel())
        .map(|m| m.point.clone())
        .collect();
    all.into_iter()
        .enumerate()
        .filter(|(i, m)| *i == 0 || !kernel.iter().any(|k| is_within(&m.point, k)))
        .map(|(_, m)| m)
        .collect()
}

/// The mount points of the kernel's filesystems strictly below `root`
/// (relative to it): directories the inotify backend does not descend into.
pub fn kernel_points_below(mounts: &[Mount], root: &[u8]) -> BTreeSet<Vec<u8>> {
    reachable(mounts, root)
        .into_iter()
        .skip(1)
        .filter(|m| m.is_kernel() && m.point != root && is_within(&m.point, root))
        .map(|m| below(&m.point, root))
        .collect()
}

impl Mount {
    /// Whether it is one of the kernel's own filesystems (`proc`, `sysfs`, ...).
    pub fn is_kernel(&self) -> bool {
        crate::kernel_filesystems::is_named(&self.fstype)
    }
}

/// Mounts not covered by another mount at the same point. Linear: a host
/// with thousands of mounts asks this for every root check (a review timed
/// the pairwise version at 14 ms for 3,000 mounts).
fn visible(mounts: &[Mount]) -> impl Iterator<Item = &Mount> {
    let covered: std::collections::HashSet<(u64, &[u8])> = mounts
        .iter()
        .map(|m| (m.parent, m.point.as_slice()))
        .collect();
    mounts
        .iter()
        .filter(move |m| !covered.contains(&(m.id, m.point.as_slice())))
}

/// The mount points strictly below `root` (relative to it): what a tree holds
/// of other filesystems.
pub fn points_below(mounts: &[Mount], root: &[u8]) -> BTreeSet<Vec<u8>> {
    reachable(mounts, root)
        .into_iter()
        .filter(|m| m.point != root && is_within(&m.point, root))
        .map(|m| below(&m.point, root))
        .collect()
}

/// `point` relative to `root` (which it lies below), without a leading `/`,
/// whether `root` ends with one or not.
fn below(point: &[u8], root: &[u8]) -> Vec<u8> {
    let root = root.strip_suffix(b"/").unwrap_or(root);
    let rel = point.get(root.len()..).unwrap_or_default();
    rel.strip_prefix(b"/").unwrap_or(rel).to_vec()
}

/// `/proc/self/mountinfo`, open: readable anew, and pollable (`EPOLLPRI`) for
/// changes of the mount namespace.
pub struct MountTable {
    file: std::fs::File,
    /// What it said when last read.
    pub mounts: Vec<Mount>,
}

impl MountTable {
    /// Opens and reads the table.
    pub fn open() -> std::io::Result<MountTable> {
        let file = std::fs::File::open(Path::new("/proc/self/mountinfo"))?;
        let mut table = MountTable {
            file,
            mounts: Vec::new(),
        };
        table.reread()?;
        Ok(table)
    }

    /// Reads the table again (after the kernel said it changed).
    pub fn reread(&mut self) -> std::io::Result<()> {
        self.file.rewind()?;
        let mut text = Vec::new();
        self.file.read_to_end(&mut text)?;
        self.mounts = parse(&text);
        Ok(())
    }

    /// Whether a mount came or went since the table was opened or this was
    /// last asked (a poll that does not wait; each open of the table keeps
    /// its own count, so the watcher's and this one's do not mix).
    pub fn changed(&self) -> bool {
        let mut fd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one pollfd we own, no wait.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        // Unknown (an error): read again to be sure.
        ready != 0 && (ready < 0 || fd.revents & (libc::POLLPRI | libc::POLLERR) != 0)
    }

    /// The descriptor to poll (`EPOLLPRI` when a mount came or went).
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] = b"\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
60 27 0:50 / /srv/www/cache rw - tmpfs tmpfs rw
61 27 254:0 /data/shared /srv/www/shared\\040dir rw - ext4 /dev/vda rw
62 27 0:51 / /srv/www2 rw - tmpfs tmpfs rw
63 60 0:52 / /srv/www/cache rw - tmpfs tmpfs rw
";

    #[test]
    fn mounts_below_a_root_are_found_and_covered_ones_left_out() {
        let mounts = parse(TABLE);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[2].point, b"/srv/www/shared dir");
        assert_eq!(mounts[2].root, b"/data/shared");
        assert_eq!(mounts[0].dev, libc::makedev(254, 0));
        let ids: Vec<u64> = reachable(&mounts, b"/srv/www")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, [27, 63, 61]);
        let points: Vec<Vec<u8>> = points_below(&mounts, b"/srv/www").into_iter().collect();
        assert_eq!(points, [b"cache".to_vec(), b"shared dir".to_vec()]);
        assert!(points_below(&mounts, b"/srv/www2").is_empty());
    }

    #[test]
    fn kernel_filesystems_inside_a_tree_and_what_is_below_them_are_not_watchable() {
        let table = b"\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
70 27 0:60 / /srv/jail/proc rw - proc proc rw
71 70 0:61 / /srv/jail/proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
72 27 0:62 / /srv/jail/sys rw - sysfs sysfs rw
73 72 0:63 / /srv/jail/sys/fs/cgroup rw - tmpfs tmpfs rw
74 27 0:64 / /srv/jail/tmp rw - tmpfs tmpfs rw
75 27 0:65 / /srv/jail/procs rw - tmpfs tmpfs rw
";
        let mounts = parse(table);
        let ids: Vec<u64> = watchable(&mounts, b"/srv/jail")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, [27, 74, 75]);
        let points: Vec<Vec<u8>> = kernel_points_below(&mounts, b"/srv/jail")
            .into_iter()
            .collect();
        assert_eq!(
            points,
            [
                b"proc".to_vec(),
                b"proc/sys/fs/binfmt_misc".to_vec(),
                b"sys".to_vec()
            ]
        );
        // A tree inside the kernel's own is refused before it gets here.
        assert!(kernel_points_below(&mounts, b"/srv/jail/tmp").is_empty());
    }

    #[test]
    fn within_is_by_component() {
        assert!(is_within(b"/srv/www/a", b"/srv/www"));
        assert!(is_within(b"/srv/www", b"/srv/www"));
        assert!(!is_within(b"/srv/www2", b"/srv/www"));
        assert!(is_within(b"/anything", b"/"));
    }

    #[test]
    fn the_real_table_parses() {
        let table = MountTable::open().unwrap();
        assert!(table.mounts.iter().any(|m| m.point == b"/"));
    }
}
