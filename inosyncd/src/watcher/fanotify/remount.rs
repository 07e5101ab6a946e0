//! Mounts that came or went while the daemon runs: the filesystems mounted
//! inside a fanotify tree are marked (or let go), and the mount points that
//! changed are reported.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{FanWatcher, Remounted};
use crate::watcher::mounts::{self, Mount};

impl FanWatcher {
    /// The mounts changed (`table`: the mounts now): filesystems mounted inside
    /// a tree are marked, those unmounted let go.
    pub fn refresh_mounts(&mut self, table: &[Mount]) -> Remounted {
        let mut result = Remounted::default();
        let watches: Vec<u32> = self.roots.keys().copied().collect();
        for watch in watches {
            let Some(root) = self.roots.get(&watch) else {
                continue;
            };
            let now = mounts::watchable(table, &root.path);
            if now.first().map(|m| m.id) != root.mounts.first().map(|m| m.id) {
                // The root's own mount went (or was covered): the engine looks
                // at the root and re-attaches what is there now.
                result.roots_gone.push(watch);
                continue;
            }
            let before: Vec<Mount> = root.mounts[1..].to_vec();
            let after: Vec<Mount> = now[1..].to_vec();
            if before == after {
                continue;
            }
            let root_path = root.path.clone();
            let points_before = root.points_below();
            // By id, filesystem and mounted directory, not by place: a mount
            // carried elsewhere by a rename above it is the same mount, its
            // mark kept (ids are reused at once: the filesystem tells a new
            // mount from the old one).
            let had = |list: &[Mount], mount: &Mount| {
                list.iter()
                    .any(|m| (m.id, m.dev, &m.root) == (mount.id, mount.dev, &mount.root))
            };
            for gone in before.iter().filter(|m| !had(&after, m)) {
                self.groups.unmark(gone.dev);
            }
            let mut kept = vec![now[0].clone()];
            for mount in &after {
                if had(&before, mount) {
                    kept.push(mount.clone());
                    continue;
                }
                let through = Path::new(std::ffi::OsStr::from_bytes(&mount.point)).to_path_buf();
                match self.mark(mount, &through) {
                    Ok(()) => kept.push(mount.clone()),
                    Err(e) => {
                        let why = super::FanotifyError::Submount {
                            fstype: mount.fstype.clone(),
                            point: through,
                            cause: Box::new(e),
                        };
                        result.failed.push((watch, why.to_string()));
                    }
                }
            }
            if let Some(root) = self.roots.get_mut(&watch) {
                root.mounts = kept;
            }
            let points_after = mounts::points_below(&now, &root_path);
            // A place left by a mount that is still there (carried by a
            // rename) is compared, but nothing was unmounted.
            let unmounted = before.iter().any(|m| !had(&after, m));
            for point in points_before.symmetric_difference(&points_after) {
                let gone = unmounted && !points_after.contains(point);
                result.points.push((watch, point.clone(), gone));
            }
            // Paths remembered through the old mounts may be wrong now.
            self.generation += 1;
            self.index_roots();
        }
        result
    }
}
