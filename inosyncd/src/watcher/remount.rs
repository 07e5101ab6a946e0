//! A mount came or went: the trees it touches are watched anew, whichever
//! backend watches them (the mount table is waited on apart from the epoll
//! set, see `mod.rs`).

use std::os::fd::RawFd;

use super::{BackendInUse, Change, Watcher, mounts};

impl Watcher {
    /// The mount table, for the event loop to wait on (`EPOLLPRI`: a mount came
    /// or went; then call [`Watcher::mounts_changed`]).
    pub fn mount_table_fd(&self) -> Option<RawFd> {
        self.mounts.as_ref().map(mounts::MountTable::raw_fd)
    }

    /// A mount came or went: filesystems mounted inside a tree are watched (a
    /// fanotify tree marks them; an inotify tree watches the directories of the
    /// new one, or of what the old one covered), and each mount point that
    /// changed is compared whole. A tree whose own mount changed is looked at
    /// again by the engine; a fanotify tree with a filesystem inside that cannot
    /// be marked is watched by inotify from now on.
    pub fn mounts_changed(&mut self, out: &mut Vec<Change>) {
        let Some(table) = &mut self.mounts else {
            return;
        };
        let before = table.mounts.clone();
        if let Err(e) = table.reread() {
            tracing::error!("cannot read the mount table again: {e}");
            return;
        }
        let after = table.mounts.clone();
        for (watch, path) in self.inotify.roots() {
            self.note_kernel_points(watch, &path);
            let kernel = std::fs::canonicalize(&path).unwrap_or(path);
            let kernel = kernel.as_os_str().as_encoded_bytes();
            let own = |t: &[mounts::Mount]| mounts::reachable(t, kernel).first().map(|m| m.id);
            if own(&before) != own(&after) {
                out.push(Change::RootGone { watch });
                continue;
            }
            let was = mounts::points_below(&before, kernel);
            let now = mounts::points_below(&after, kernel);
            for rel in was.symmetric_difference(&now) {
                tracing::info!(
                    "{}: a filesystem was {} at {}; watching and comparing it whole",
                    String::from_utf8_lossy(kernel),
                    if now.contains(rel) {
                        "mounted"
                    } else {
                        "unmounted"
                    },
                    String::from_utf8_lossy(rel)
                );
                self.inotify.rewatch(watch, rel, out);
                let rel = rel.clone();
                // Gone only when a mount went (not when a rename carried it).
                let went = before.iter().any(|m| !after.iter().any(|a| a.id == m.id));
                out.push(if now.contains(&rel) || !went {
                    Change::Tree { watch, rel }
                } else {
                    Change::Unmounted { watch, rel }
                });
            }
        }
        let Some(Ok(fan)) = &mut self.fanotify else {
            return;
        };
        // A kernel filesystem is never marked (`mounts::watchable`), yet its
        // mount point changes as any other when it comes or goes: rsync sees
        // it where no view hides it (`sandbox = "off"`; a black-box attack
        // found the directory under it never sent after its unmount).
        for (watch, root) in fan.root_paths() {
            let was = mounts::kernel_points_below(&before, &root);
            let now = mounts::kernel_points_below(&after, &root);
            for rel in was.symmetric_difference(&now) {
                out.push(if now.contains(rel) {
                    Change::Tree {
                        watch,
                        rel: rel.clone(),
                    }
                } else {
                    Change::Unmounted {
                        watch,
                        rel: rel.clone(),
                    }
                });
            }
        }
        let remounted = fan.refresh_mounts(&after);
        for (watch, rel, gone) in remounted.points {
            tracing::info!(
                "watch {watch}: a filesystem {} at {}; comparing it whole",
                if gone { "went" } else { "came" },
                String::from_utf8_lossy(&rel)
            );
            out.push(if gone {
                Change::Unmounted { watch, rel }
            } else {
                Change::Tree { watch, rel }
            });
        }
        for watch in remounted.roots_gone {
            out.push(Change::RootGone { watch });
        }
        for (watch, why) in remounted.failed {
            self.fall_back_to_inotify(watch, why, out);
        }
        self.poll_fanotify_groups();
    }

    /// A fanotify tree that can no longer be watched whole by fanotify: inotify
    /// from now on, every directory watched and the tree compared whole.
    fn fall_back_to_inotify(&mut self, watch: u32, why: String, out: &mut Vec<Change>) {
        let Some(Ok(fan)) = &mut self.fanotify else {
            return;
        };
        let Some((path, excludes)) = fan.take_root(watch) else {
            return;
        };
        tracing::warn!("{}: watched by inotify from now on ({why})", path.display());
        self.in_use.insert(
            watch,
            BackendInUse {
                name: "inotify",
                reason: Some(why),
            },
        );
        if let Err(e) = self.inotify.add_root(watch, &path, excludes) {
            tracing::error!("{}: cannot watch with inotify either: {e}", path.display());
        } else {
            self.note_kernel_points(watch, &path);
            self.inotify.scan_root(watch, None);
        }
        out.push(Change::Everything { watch });
    }
}
