//! A source directory swapped for a symlink after the daemon's checks and
//! before rsync's own open: rsync must not read through it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

use inosync_tests::{Fixture, assert_trees_equal, is_root, poll_until, real_rsync};

/// `mv d d.real; ln -s /etc d` timed to the moment rsync opens the listed
/// `d/passwd`: rsync followed the link and put `/etc/passwd` (anything its
/// sandbox lets it read: as root, all of `/etc`) into the mirror until the
/// next run (found by a black-box attack, 5 of 8 tries of a swap loop). The
/// moment is made exact here: an rsync wrapper holds the run after the
/// daemon's checks until the test has swapped, and holds its end until the
/// test has read the mirror. A daemon run as root shows rsync the source
/// where its symlinks are not followed (README "Safety").
#[test]
fn a_directory_swapped_for_a_symlink_at_rsyncs_open_is_not_read_through() {
    if !is_root() {
        eprintln!("skipped: the source's own mount namespace needs root");
        return;
    }
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("d")).unwrap();
    let held = Held::start(&fx, &fx.src, "d/passwd");
    fs::rename(fx.src.join("d"), fx.src.join("d.real")).unwrap();
    symlink("/etc", fx.src.join("d")).unwrap();
    let ran = held.swapped();
    assert!(ran, "the held run never ended\n{}", held.daemon.log());
    let mirrored = read_no_follow(&fx.dst, "d/passwd");
    let secret = fs::read("/etc/passwd").unwrap();
    held.release();
    let daemon = &held.daemon;
    assert_ne!(
        mirrored.as_deref(),
        Some(secret.as_slice()),
        "rsync read /etc/passwd through the swapped-in link into the mirror\n{}",
        daemon.log()
    );
    // The held run could not read it (and the mirror keeps what it had).
    assert_eq!(
        mirrored.as_deref(),
        Some(b"the source's own".as_slice()),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("in a mount namespace of its own"),
        "{}",
        daemon.log()
    );
    fs::remove_file(fx.src.join("d")).unwrap();
    fs::rename(fx.src.join("d.real"), fx.src.join("d")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, daemon);
}

/// The watch root itself swapped for a symlink (`mv src src.real; ln -s
/// /etc src`) by a writer of its parent directory, at rsync's start: the
/// view covers the root's parent, so the root's own name cannot be followed
/// either (found by a review: a view of the root alone moves with the
/// renamed directory, and rsync followed the new link).
#[test]
fn a_root_swapped_for_a_symlink_at_rsyncs_start_is_not_read_through() {
    if !is_root() {
        eprintln!("skipped: the source's own mount namespace needs root");
        return;
    }
    let fx = Fixture::new();
    let held = Held::start(&fx, &fx.src, "passwd");
    let daemon = &held.daemon;
    let mirrored = held.swap_while_stopped(&fx.dst, "passwd", || {
        fs::rename(&fx.src, fx.path("src.real")).unwrap();
        symlink("/etc", &fx.src).unwrap();
    });
    assert_eq!(
        mirrored.as_deref(),
        Some(b"the source's own".as_slice()),
        "rsync read through the swapped-in root\n{}",
        daemon.log()
    );
    fs::remove_file(&fx.src).unwrap();
    fs::rename(fx.path("src.real"), &fx.src).unwrap();
    held.synced_when_back(&fx.src, &fx.dst);
}

/// A directory above the root's parent that another user owns (`/home/alice`
/// above `/home/alice/sites/blog`) swapped for a symlink at rsync's start, so
/// that the root's path leads to `/etc`: the view held only the root's
/// parent, and rsync mirrored `/etc` as the whole tree (found by a black-box
/// attack: `shadow` in the mirror, the sync reported done). The view now
/// holds every directory a user other than root could replace.
#[test]
fn a_directory_another_user_could_replace_swapped_at_rsyncs_start_is_not_read_through() {
    if !is_root() {
        eprintln!("skipped: the source's own mount namespace needs root");
        return;
    }
    let fx = Fixture::new();
    let home = fx.path("home");
    let root = home.join("sites/blog");
    fs::create_dir_all(&root).unwrap();
    for owned in [home.clone(), home.join("sites"), root.clone()] {
        std::os::unix::fs::chown(&owned, Some(65534), Some(65534)).unwrap();
    }
    // Where the swapped path leads: its `blog` is `/etc`.
    let evil = fx.path("evil");
    fs::create_dir(&evil).unwrap();
    symlink("/etc", evil.join("blog")).unwrap();
    let held = Held::start(&fx, &root, "passwd");
    let daemon = &held.daemon;
    let mirrored = held.swap_while_stopped(&fx.dst, "passwd", || {
        fs::rename(home.join("sites"), home.join("sites.real")).unwrap();
        symlink(&evil, home.join("sites")).unwrap();
    });
    assert_eq!(
        mirrored.as_deref(),
        Some(b"the source's own".as_slice()),
        "rsync read through the swapped-in directory\n{}",
        daemon.log()
    );
    fs::remove_file(home.join("sites")).unwrap();
    fs::rename(home.join("sites.real"), home.join("sites")).unwrap();
    held.synced_when_back(&root, &fx.dst);
}

/// A daemon whose next run, of `listed` changed from "the source's own",
/// is held by [`holding_wrapper`] after the daemon's checks.
struct Held {
    daemon: inosync_tests::Daemon,
    hold: std::path::PathBuf,
    _elsewhere: tempfile::TempDir,
}

impl Held {
    fn start(fx: &Fixture, root: &Path, listed: &str) -> Held {
        let hold = fx.path("hold");
        fs::create_dir(&hold).unwrap();
        fs::write(root.join(listed), "the source's own").unwrap();
        // Not beside the root: the view of its parent must not hold the
        // rsync the run starts (it would go to the root alone).
        let elsewhere = tempfile::tempdir().unwrap();
        let wrapper = holding_wrapper(elsewhere.path(), &hold);
        let config = format!(
            "delay = 0\nrsync = \"{}\"\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\n\
             targets = [\"{}/\"]\n",
            wrapper.display(),
            root.display(),
            fx.dst.display()
        );
        let writable = hold.display().to_string();
        let daemon =
            fx.start_toml_with_env(&config, &[("INOSYNC_TEST_SANDBOX_WRITABLE", &writable)]);
        daemon.wait_idle();
        fs::write(hold.join("armed"), "").unwrap();
        fs::write(root.join(listed), "changed").unwrap();
        assert!(
            poll_until(Duration::from_secs(20), || hold.join("started").exists()),
            "no run started\n{}",
            daemon.log()
        );
        Held {
            daemon,
            hold,
            _elsewhere: elsewhere,
        }
    }

    /// Lets the held rsync run; whether it ended (it then holds its end).
    fn swapped(&self) -> bool {
        fs::write(self.hold.join("swapped"), "").unwrap();
        poll_until(Duration::from_secs(20), || self.hold.join("ran").exists())
    }

    /// Lets the held run end.
    fn release(&self) {
        fs::write(self.hold.join("release"), "").unwrap();
    }

    /// Makes `swap` with the daemon stopped (so that its own root check
    /// cannot see it and stop the run first), lets the held rsync run, and
    /// returns the mirror's `listed` as that run left it.
    fn swap_while_stopped(
        &self,
        mirror: &Path,
        listed: &str,
        swap: impl FnOnce(),
    ) -> Option<Vec<u8>> {
        let pid = self.daemon.pid() as i32;
        // SAFETY: signals to our own child.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        swap();
        let ran = self.swapped();
        let mirrored = read_no_follow(mirror, listed);
        self.release();
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        assert!(ran, "the held run never ended\n{}", self.daemon.log());
        mirrored
    }

    /// Once the swap is undone: re-attached by the root's check (once a
    /// second), then synced whole and equal.
    fn synced_when_back(&self, root: &Path, mirror: &Path) {
        let back = poll_until(Duration::from_secs(20), || {
            self.daemon.status()["watches"][0]["source_missing"].is_null()
        });
        assert!(back, "{}", self.daemon.log());
        self.daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
        assert_trees_equal(root, mirror, &self.daemon);
    }
}

/// An rsync wrapper that, once `hold/armed` exists, holds the first run
/// after its start (the daemon's checks are done) until `hold/swapped`, runs
/// the real rsync, and holds its end until `hold/release`; other runs go
/// straight through. Each wait gives up after 30 s.
fn holding_wrapper(dir: &Path, hold: &Path) -> std::path::PathBuf {
    let wrapper = dir.join("holding-rsync");
    let h = hold.display();
    let script = format!(
        "#!/bin/sh\n\
         wait_for() {{ n=0; while [ ! -e '{h}'/\"$1\" ] && [ $n -lt 3000 ]; do sleep 0.01; n=$((n+1)); done; }}\n\
         if [ -e '{h}/armed' ] && mkdir '{h}/taken' 2>/dev/null; then\n\
         : > '{h}/started'; wait_for swapped\n\
         '{rsync}' \"$@\"; rc=$?\n\
         : > '{h}/ran'; wait_for release\n\
         exit $rc\n\
         fi\n\
         exec '{rsync}' \"$@\"\n",
        rsync = real_rsync().display()
    );
    fs::write(&wrapper, script).unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

/// `root/relative`'s content, read without following any symlink on the
/// way (the mirror's `d` may be a link by then); `None` when it cannot be.
fn read_no_follow(root: &Path, relative: &str) -> Option<Vec<u8>> {
    let mut dir = fs::File::open(root).ok()?;
    let mut parts = relative.split('/').peekable();
    while let Some(part) = parts.next() {
        let path = format!(
            "/proc/self/fd/{}/{part}",
            std::os::fd::AsRawFd::as_raw_fd(&dir)
        );
        let next = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        dir = next;
        if parts.peek().is_none() {
            let mut content = Vec::new();
            dir.read_to_end(&mut content).ok()?;
            return Some(content);
        }
    }
    None
}
