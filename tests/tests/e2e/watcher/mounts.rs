//! Mounts: the daemon never keeps a watched filesystem busy, every filesystem
//! reachable under a watch root is watched (mounted before the start or while
//! running), and two filesystems that report the same fsid are told apart.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use inosync_tests::{Fixture, assert_trees_equal, poll_until, run_ok};

use crate::safety::Mount;

fn state(daemon: &inosync_tests::Daemon) -> String {
    daemon.status()["watches"][0]["targets"][0]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn unmounting_a_watched_filesystem_works_and_shows_source_missing() {
    let fx = Fixture::new();
    let _tmpfs = Mount::tmpfs(&fx.src);
    fs::write(fx.src.join("f"), "on the tmpfs").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    // A plain umount, as an administrator types it: not lazy, not forced.
    let out = Command::new("umount").arg(&fx.src).output().unwrap();
    assert!(
        out.status.success(),
        "umount of the watched filesystem failed: {}\nfds: {:?}",
        String::from_utf8_lossy(&out.stderr),
        fs::read_dir(format!("/proc/{}/fd", daemon.pid())).map(|d| d
            .flatten()
            .filter_map(|e| fs::read_link(e.path()).ok())
            .collect::<Vec<_>>())
    );
    let unmounted = Instant::now();
    assert!(
        poll_until(Duration::from_secs(5), || state(&daemon)
            == "source missing"),
        "{}\n{}",
        daemon.status(),
        daemon.log()
    );
    let noticed = unmounted.elapsed();
    eprintln!("umount: source missing {noticed:.2?} after the umount");
    assert!(noticed < Duration::from_millis(1500), "{noticed:?}");
    assert_eq!(
        fs::read_to_string(fx.dst.join("f")).unwrap(),
        "on the tmpfs",
        "the mirror was touched"
    );
}

#[test]
fn filesystems_mounted_inside_a_tree_are_watched() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("cache")).unwrap();
    fs::create_dir(fx.src.join("shared")).unwrap();
    let shared = fx.path("shared");
    fs::create_dir(&shared).unwrap();
    let _tmpfs = Mount::tmpfs(&fx.src.join("cache"));
    let _bind = Mount::bind(&shared, &fx.src.join("shared"));
    fs::write(fx.src.join("cache/before"), "cached").unwrap();
    fs::write(shared.join("before"), "shared").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    fs::write(fx.src.join("cache/after"), "on the tmpfs").unwrap();
    fs::create_dir_all(fx.src.join("cache/d/e")).unwrap();
    fs::write(fx.src.join("cache/d/e/deep"), "deep on the tmpfs").unwrap();
    fs::write(fx.src.join("shared/through-the-mount"), "bind").unwrap();
    // Written through the bind mount's other name: the tree sees it too.
    fs::write(shared.join("from-outside"), "bind source").unwrap();
    let arrived = poll_until(Duration::from_secs(10), || {
        [
            "cache/after",
            "cache/d/e/deep",
            "shared/through-the-mount",
            "shared/from-outside",
        ]
        .iter()
        .all(|p| fx.dst.join(p).exists())
    });
    assert!(arrived, "{}\n{}", daemon.status(), daemon.log());
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

#[test]
fn a_filesystem_mounted_and_unmounted_while_running() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("rt")).unwrap();
    fs::write(fx.src.join("rt/covered"), "below the mount point").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    let mounted = Mount::tmpfs(&fx.src.join("rt"));
    fs::write(fx.src.join("rt/new"), "on the new tmpfs").unwrap();
    fs::create_dir(fx.src.join("rt/dir")).unwrap();
    fs::write(fx.src.join("rt/dir/inside"), "deeper").unwrap();
    let arrived = poll_until(Duration::from_secs(10), || {
        fx.dst.join("rt/dir/inside").exists() && !fx.dst.join("rt/covered").exists()
    });
    assert!(arrived, "{}\n{}", daemon.status(), daemon.log());
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    // Unmounted again: the mount point's own content is the source once more.
    drop(mounted);
    let back = poll_until(Duration::from_secs(10), || {
        fx.dst.join("rt/covered").exists() && !fx.dst.join("rt/new").exists()
    });
    assert!(back, "{}\n{}", daemon.status(), daemon.log());
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// An ext4 image and its clone: the same UUID, so the same `f_fsid`.
fn clone_pair(fx: &Fixture) -> Option<(Mount, Mount)> {
    let mkfs = ["/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let a = fx.path("a.img");
    run_ok(Command::new("truncate").arg("-s").arg("32M").arg(&a));
    run_ok(
        Command::new(mkfs)
            .args(["-q", "-F", "-U", "6f1c2b7e-0000-4000-8000-00000000cafe"])
            .arg(&a),
    );
    fs::copy(&a, fx.path("b.img")).unwrap();
    let mut mounts = Vec::new();
    for name in ["a", "b"] {
        let at = fx.path(name);
        fs::create_dir(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-o", "loop"])
            .arg(fx.path(&format!("{name}.img")))
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        mounts.push(Mount::adopt(&at));
    }
    let b = mounts.pop()?;
    let a = mounts.pop()?;
    Some((a, b))
}

#[test]
fn two_filesystems_with_one_fsid_are_told_apart() {
    let fx = Fixture::new();
    let Some((_a, _b)) = clone_pair(&fx) else {
        eprintln!("skipped: no mkfs.ext4 or loop devices");
        return;
    };
    let fsid = |p: &Path| {
        String::from_utf8(run_ok(Command::new("stat").args(["-f", "-c", "%i"]).arg(p)).stdout)
            .unwrap()
    };
    assert_eq!(fsid(&fx.path("a")), fsid(&fx.path("b")), "not a clone");
    let (dst_a, dst_b) = (fx.path("dst/a"), fx.path("dst/b"));
    let config = format!(
        "delay = 0\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n\
         [[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n",
        fx.path("a").display(),
        dst_a.display(),
        fx.path("b").display(),
        dst_b.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    for (fs_root, name) in [(fx.path("a"), "in-a"), (fx.path("b"), "in-b")] {
        fs::create_dir(fs_root.join(format!("{name}-dir"))).unwrap();
        fs::write(fs_root.join(format!("{name}-dir/file")), name).unwrap();
        fs::write(fs_root.join(name), name).unwrap();
    }
    let arrived = poll_until(Duration::from_secs(10), || {
        dst_a.join("in-a-dir/file").exists() && dst_b.join("in-b-dir/file").exists()
    });
    assert!(arrived, "{}\n{}", daemon.status(), daemon.log());
    daemon.wait_idle();
    assert_trees_equal(&fx.path("a"), &dst_a, &daemon);
    assert_trees_equal(&fx.path("b"), &dst_b, &daemon);
}

/// A filesystem mounted in the tree, carried elsewhere by a rename of a
/// directory above it, then unmounted: the kernel says nothing of a mount's
/// new place, so the unmount was compared at the old one and what the
/// filesystem held stayed on the mirror (found by a black-box attack under
/// fanotify). A directory move with a mount point below reads the mount
/// table again.
#[test]
fn a_mount_carried_by_a_rename_then_unmounted_leaves_the_mirror() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("p/mnt")).unwrap();
    let mounted = Mount::tmpfs(&fx.src.join("p/mnt"));
    fs::write(fx.src.join("p/mnt/a"), "on the tmpfs").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    fs::rename(fx.src.join("p"), fx.src.join("q")).unwrap();
    let moved = Mount::adopt(&fx.src.join("q/mnt"));
    std::mem::forget(mounted);
    daemon.wait_idle();
    fs::write(fx.src.join("q/mnt/b"), "written after the move").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    drop(moved);
    let left = poll_until(Duration::from_secs(10), || !fx.dst.join("q/mnt/a").exists());
    assert!(
        left,
        "the unmounted files stayed on the mirror\n{}",
        daemon.log()
    );
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A filesystem unmounted from inside the tree while a transfer from it
/// runs: each rsync sees the source in a mount namespace of its own, where
/// the unmount reaches only once nothing there is open, so the filesystem
/// stayed busy (`fsck` "in use", a loop device that cannot be detached) for
/// as long as the transfer ran (found by a black-box attack). The watch's
/// running transfer is started again at the unmount.
#[test]
fn an_unmount_inside_the_tree_is_not_held_by_a_running_transfer() {
    let fx = Fixture::new();
    let point = fx.src.join("lp");
    fs::create_dir(&point).unwrap();
    let mounted = Mount::tmpfs(&point);
    let daemon = fx.start_quick();
    daemon.wait_idle();
    daemon.ctl_ok(&["speed", "100"]);
    fs::write(point.join("big"), vec![7u8; 8 << 20]).unwrap();
    // About 80 s at 100 KB/s: running until the unmount.
    let sending = poll_until(Duration::from_secs(20), || {
        fs::read_dir(fx.dst.join("lp")).is_ok_and(|mut d| d.next().is_some())
    });
    assert!(sending, "the transfer never started\n{}", daemon.log());
    let out = Command::new("umount").arg(&point).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::mem::forget(mounted);
    let needle = point.display().to_string();
    let released = poll_until(Duration::from_secs(10), || {
        inosync_tests::processes::descendants(daemon.pid())
            .iter()
            .all(|p| {
                !fs::read_to_string(format!("/proc/{}/mountinfo", p.pid))
                    .unwrap_or_default()
                    .contains(&needle)
            })
    });
    assert!(
        released,
        "a transfer still holds the unmounted filesystem\n{}",
        daemon.log()
    );
    daemon.ctl_ok(&["speed", "0"]);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// The entries of a directory, sorted (empty when it cannot be read).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A kernel filesystem mounted inside a tree (a chroot's `proc` and `sys`):
/// its files are made up as they are read, and no event says when they
/// change. Before, the tree fell back to inotify (fanotify cannot mark
/// procfs), rsync copied `/proc` into the mirror (`kcore` among it) and was
/// held on its errors for ever, so `wait` never said idle. A run as root
/// shows rsync the source with such mounts taken away, so the mirror holds
/// what lies under the mount point on the source's own filesystem; the
/// watchers leave them alone.
#[test]
fn a_kernel_filesystem_mounted_inside_a_tree_is_not_mirrored() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting needs root");
        return;
    }
    let fx = Fixture::new();
    let proc_point = fx.src.join("chroot/proc");
    let sys_point = fx.src.join("chroot/sys");
    fs::create_dir_all(&proc_point).unwrap();
    fs::create_dir_all(&sys_point).unwrap();
    fs::write(proc_point.join("under"), "below the mount point").unwrap();
    fs::write(fx.src.join("chroot/etc-motd"), "hello").unwrap();
    run_ok(
        Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(&proc_point),
    );
    let proc_mount = Mount::adopt(&proc_point);
    // A namespace's file bind-mounted in the tree (`ip netns` does so).
    let ns_point = fx.src.join("chroot/netns");
    fs::write(&ns_point, "below the namespace").unwrap();
    run_ok(
        Command::new("mount")
            .args(["--bind", "/proc/self/ns/net"])
            .arg(&ns_point),
    );
    let ns_mount = Mount::adopt(&ns_point);
    let daemon = fx.start_quick();
    let idle = daemon.ctl(&["wait", "--timeout", "30"]);
    assert!(
        idle.status.success(),
        "never idle: {}\n{}\n{}",
        String::from_utf8_lossy(&idle.stderr),
        daemon.status(),
        daemon.log()
    );
    assert_eq!(entries(&fx.dst.join("chroot/proc")), ["under"]);
    assert_eq!(
        fs::read_to_string(fx.dst.join("chroot/etc-motd")).unwrap(),
        "hello"
    );
    assert_eq!(
        fs::read_to_string(fx.dst.join("chroot/netns")).unwrap(),
        "below the namespace",
        "{}",
        daemon.log()
    );
    if std::env::var("INOSYNC_TEST_BACKEND").as_deref() != Ok("inotify") {
        // Not fallen back to inotify for a filesystem it need not watch.
        assert_eq!(
            daemon.status()["watches"][0]["backend"],
            "fanotify",
            "{}",
            daemon.status()
        );
    }
    // The root, `chroot` and `chroot/sys`; nothing of `/proc`'s thousands.
    inosync_tests::assert_watched(&daemon.status()["watches"][0], 3);
    // One mounted while running, beside a change.
    run_ok(
        Command::new("mount")
            .args(["-t", "sysfs", "sysfs"])
            .arg(&sys_point),
    );
    let sys_mount = Mount::adopt(&sys_point);
    fs::write(fx.src.join("chroot/after"), "written after the mount").unwrap();
    let idle = daemon.ctl(&["wait", "--timeout", "30"]);
    assert!(
        idle.status.success(),
        "never idle: {}\n{}",
        String::from_utf8_lossy(&idle.stderr),
        daemon.log()
    );
    assert!(fx.dst.join("chroot/after").exists(), "{}", daemon.log());
    assert!(entries(&fx.dst.join("chroot/sys")).is_empty());
    // Unmounted: the directory is the source's own again, and watched.
    drop(proc_mount);
    drop(sys_mount);
    drop(ns_mount);
    daemon.wait_idle();
    fs::write(proc_point.join("later"), "written once unmounted").unwrap();
    fs::write(sys_point.join("later"), "written once unmounted").unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// With `sandbox = "off"` rsync sees a kernel filesystem mounted inside a
/// tree (README: exclude such mount points there), and its unmount must be
/// compared whole as any other: under fanotify it was not (the watcher leaves
/// kernel filesystems alone, and so missed their unmount too), and the file
/// under the mount point never arrived while `wait` said idle (found by a
/// black-box attack, 3 of 3).
#[test]
fn a_kernel_filesystem_unmounted_inside_a_tree_is_compared_whole() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting needs root");
        return;
    }
    let fx = Fixture::new();
    let point = fx.src.join("jail/mq");
    fs::create_dir_all(&point).unwrap();
    fs::write(point.join("UNDER"), "below the mount point").unwrap();
    run_ok(
        Command::new("mount")
            .args(["-t", "mqueue", "mqueue"])
            .arg(&point),
    );
    let mounted = Mount::adopt(&point);
    let daemon = fx.start_toml(&fx.simple_config("sandbox = \"off\""));
    daemon.wait_idle();
    drop(mounted);
    let arrived = poll_until(Duration::from_secs(10), || {
        fx.dst.join("jail/mq/UNDER").exists()
    });
    assert!(arrived, "{}", daemon.log());
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// One directory shown at two places by a bind mount, a tree in each
/// (`/data/a`, and `/srv/data/b` with `/srv/data` a bind mount of `/data`):
/// a directory of either tree is named through whichever mount puts it in
/// a tree, not through the first one that reaches it (a review: `/data/a`
/// was named `/srv/data/a`, outside every tree, and its changes went
/// unseen).
#[test]
fn two_trees_on_one_directory_shown_twice_by_a_bind_mount_both_arrive() {
    let fx = Fixture::new();
    let data = fx.path("data");
    let srv_data = fx.path("srv/data");
    fs::create_dir_all(data.join("a/sub")).unwrap();
    fs::create_dir_all(data.join("b/sub")).unwrap();
    fs::create_dir_all(&srv_data).unwrap();
    let _bind = Mount::bind(&data, &srv_data);
    let (dst_a, dst_b) = (fx.path("dst/a"), fx.path("dst/b"));
    let config = format!(
        "delay = 0\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n\
         [[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n",
        data.join("a").display(),
        dst_a.display(),
        srv_data.join("b").display(),
        dst_b.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    for tree in [data.join("a"), srv_data.join("b")] {
        fs::write(tree.join("sub/file"), "written below the root").unwrap();
        fs::create_dir(tree.join("new")).unwrap();
        fs::write(tree.join("new/file"), "in a new directory").unwrap();
    }
    daemon.wait_idle();
    assert_trees_equal(&data.join("a"), &dst_a, &daemon);
    assert_trees_equal(&srv_data.join("b"), &dst_b, &daemon);
}
