//! Watching whole directories: a new directory is watched first and listed
//! second (so nothing written into it before its watch existed is missed), a
//! rescan after an overflow, and what to tell an administrator when the watch
//! limit is reached.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::super::absolute;
use super::watch_tree::NodeId;
use super::{Change, InotifyWatcher};
use crate::watcher::join;

impl InotifyWatcher {
    /// Watches directory `name` below `parent` and everything below it, then lists
    /// its entries as changes when `emit` is set.
    pub(super) fn scan_dir(
        &mut self,
        watch: u32,
        parent: NodeId,
        name: &[u8],
        rel: Vec<u8>,
        emit: bool,
        out: &mut Vec<Change>,
    ) {
        let Some(node) = self.add_dir_watch(watch, parent, name, &rel, out) else {
            return;
        };
        self.scan_children(watch, node, rel, emit, out);
    }

    /// Lists a watched directory, adding watches for subdirectories depth first.
    pub(super) fn scan_children(
        &mut self,
        watch: u32,
        node: NodeId,
        rel: Vec<u8>,
        emit: bool,
        out: &mut Vec<Change>,
    ) {
        let mut stack = vec![(node, rel)];
        while let Some((dir_node, dir_rel)) = stack.pop() {
            let Some(root) = self.roots.get(&watch) else {
                return;
            };
            let abs = absolute(&root.path, &dir_rel);
            let entries = match crate::deep_paths::read_dir(&root.path, &dir_rel) {
                Ok(entries) => entries,
                // Gone already: its deletion event is queued behind this one.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    continue;
                }
                Err(e) => {
                    tracing::warn!("cannot list {}: {e}", abs.display());
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.as_bytes();
                let child_rel = join(&dir_rel, name);
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                let Some(root) = self.roots.get(&watch) else {
                    return;
                };
                if root.excludes.matches(&child_rel, is_dir) {
                    continue;
                }
                if emit {
                    out.push(Change::Path {
                        watch,
                        rel: child_rel.clone(),
                    });
                    // A file in a directory that arrived may have other
                    // names, and have been written through this one before
                    // the directory was watched (`mkdir n; ln d/a n/x; echo
                    // > n/x`, read after all three: a black-box fuzzer left
                    // `d/a` with its old bytes): they are looked for.
                    if !is_dir
                        && let Some(root) = self.roots.get(&watch)
                        && crate::watcher::has_other_links(&root.path, &child_rel)
                    {
                        self.note_links(watch);
                        out.push(Change::Linked {
                            watch,
                            rel: Some(child_rel.clone()),
                        });
                    }
                }
                if is_dir
                    && let Some(child) = self.add_dir_watch(watch, dir_node, name, &child_rel, out)
                {
                    stack.push((child, child_rel));
                }
                // After the directory's own watch exists (see `scan_root`).
                if self.changed_since.is_some()
                    && let Ok(meta) = entry.metadata()
                {
                    self.note_ctime(&meta);
                }
            }
        }
    }

    pub(super) fn add_dir_watch(
        &mut self,
        watch: u32,
        parent: NodeId,
        name: &[u8],
        rel: &[u8],
        out: &mut Vec<Change>,
    ) -> Option<NodeId> {
        let root = self.roots.get(&watch)?;
        if root.kernel_points.contains(rel) {
            // A chroot's `proc`: made up as it is read, never mirrored.
            return None;
        }
        let root = &root.path;
        let abs = absolute(root, rel);
        let added = if abs.as_os_str().len() < crate::deep_paths::LONG {
            self.add_watch(&abs)
        } else {
            // Deeper than a path can name: watched through a descriptor.
            crate::deep_paths::open_dir_below(root, rel)
                .and_then(|dir| self.add_watch_through(&crate::deep_paths::proc_path(&dir)))
        };
        match added {
            Ok(wd) => {
                if let Some(root) = self.roots.get_mut(&watch)
                    && !root.unreadable.is_empty()
                {
                    root.unreadable.remove(rel);
                }
                Some(self.tree.insert(Some(parent), watch, name, wd))
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => None,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                if !self.limit_reported {
                    let root = self
                        .roots
                        .get(&watch)
                        .map(|r| r.path.clone())
                        .unwrap_or_default();
                    let in_tree = count_dirs(&root);
                    let elsewhere = self.tree.total() - self.tree.count(watch) as usize;
                    let needed = in_tree + elsewhere;
                    let limit = max_user_watches().map_or("?".into(), |n| n.to_string());
                    let message = format!(
                        "inotify watch limit reached (fs.inotify.max_user_watches = {limit}) at {}: \
                         {} directories watched, {needed} needed",
                        abs.display(),
                        self.tree.total()
                    );
                    tracing::error!(
                        "{message}. Raise the limit to at least {needed} (plus what other \
                         programs of this user watch), e.g. `sysctl fs.inotify.max_user_watches={}` \
                         and a file in /etc/sysctl.d/ to keep it. Until then this tree is kept right \
                         by periodic full syncs",
                        (needed * 2).max(65536)
                    );
                    self.limit_reported = true;
                    if let Some(root) = self.roots.get_mut(&watch) {
                        root.degraded = Some(message);
                    }
                } else if let Some(root) = self.roots.get_mut(&watch) {
                    root.degraded.get_or_insert_with(|| {
                        "inotify watch limit reached (fs.inotify.max_user_watches)".into()
                    });
                }
                out.push(Change::Everything { watch });
                None
            }
            Err(e) => {
                // Not readable by the daemon's user now (`EACCES`), or another
                // reason the directory has no watch: the tree is not fully
                // watched, as at the limit. `wait` and the periodic full syncs
                // then cover it, and each tries its watch again (before, it was
                // only logged, and nothing written in the directory once it
                // could be read ever arrived; a black-box attack).
                // Said once per directory: it is tried again before every full
                // sync while it stays so.
                if self.unwatchable_reported.insert(abs.clone()) {
                    tracing::warn!(
                        "cannot watch {}: {e}; the tree is kept right by full syncs, and the \
                         watch is tried again before each",
                        abs.display()
                    );
                }
                let first = self.roots.get_mut(&watch).is_some_and(|root| {
                    root.unreadable
                        .insert(rel.to_vec(), format!("cannot watch {}: {e}", abs.display()))
                        .is_none()
                });
                // Once per directory: a `touch` of one still unreadable tries
                // its watch again, and each such try was a full sync (found
                // by a review).
                if first {
                    out.push(Change::Everything { watch });
                }
                None
            }
        }
    }

    /// After an overflow: watch every directory that may have appeared unseen, and
    /// ask for a full sync of every tree.
    pub(super) fn rescan_all(&mut self, out: &mut Vec<Change>) {
        let watches: Vec<(u32, NodeId)> = self
            .roots
            .iter()
            .filter_map(|(watch, root)| root.node.map(|n| (*watch, n)))
            .collect();
        for (watch, node) in watches {
            self.scan_children(watch, node, Vec::new(), false, out);
            out.push(Change::Everything { watch });
            self.note_links(watch);
        }
    }
}

/// Directories at and below `dir`, not following symlinks (to size the watch
/// limit an administrator needs).
fn count_dirs(dir: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        count += 1;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
    }
    count
}

/// The watch limit in force: `fs.inotify.max_user_watches`, or the lower limit of
/// the user namespace the daemon runs in.
pub(super) fn max_user_watches() -> Option<u64> {
    let read =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let global = read("/proc/sys/fs/inotify/max_user_watches");
    let namespace = read("/proc/sys/user/max_inotify_watches");
    match (global, namespace) {
        (Some(g), Some(n)) => Some(g.min(n)),
        (g, n) => g.or(n),
    }
}
