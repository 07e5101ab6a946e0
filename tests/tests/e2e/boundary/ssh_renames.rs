//! The ssh rename script checks exactly the path it then renames through: a
//! parent directory whose name ends in a newline is not read as another one.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::time::Duration;

use inosync_tests::remote::Sshd;
use inosync_tests::{Fixture, poll_until};

use super::names;

/// The mirror has a real `d` and a `d\n` that a hostile user replaced with a
/// symlink to a directory outside it. A rename below `d\n` in the source must
/// not rename anything out there (the old script checked `$(dirname ...)`,
/// which strips the newline, so it checked `d` and renamed through `d\n`).
#[test]
fn an_ssh_rename_never_leaves_the_mirror_through_a_name_ending_in_a_newline() {
    assert!(
        Sshd::available(),
        "sshd is not installed (.ci/run installs it)"
    );
    let fx = Fixture::new();
    let remote = fx.path("remote");
    let outside = fx.path("outside");
    fs::create_dir(&remote).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("f"), "outside the mirror").unwrap();
    let inode = fs::metadata(outside.join("f")).unwrap().ino();
    let sshd = Sshd::start(fx.dir.path());
    fs::create_dir(fx.src.join("d")).unwrap();
    fs::create_dir(fx.src.join("d\n")).unwrap();
    fs::write(fx.src.join("d\n/f"), "mirrored").unwrap();
    let daemon = fx.start_toml(&sshd.config("delay = 0", &fx.src, &remote));
    daemon.wait_idle();
    fs::remove_dir_all(remote.join("d\n")).unwrap();
    symlink(&outside, remote.join("d\n")).unwrap();
    fs::rename(fx.src.join("d\n/f"), fx.src.join("d\n/f2")).unwrap();
    // The batch's renames are done (or refused) before its transfer starts;
    // the log says when.
    let renamed = poll_until(Duration::from_secs(30), || {
        daemon.log().contains("move(s) renamed on the target")
    });
    assert!(
        renamed,
        "the move never reached the target\n{}",
        daemon.log()
    );
    assert_eq!(names(&outside), ["f"], "{}", daemon.log());
    let meta = fs::symlink_metadata(outside.join("f")).unwrap();
    assert_eq!(meta.ino(), inode, "outside/f was replaced");
    assert_eq!(
        fs::read_to_string(outside.join("f")).unwrap(),
        "outside the mirror"
    );
    assert!(
        daemon.log().contains("0 of 1 move(s) renamed"),
        "{}",
        daemon.log()
    );
}
