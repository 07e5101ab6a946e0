//! Layouts that would destroy data are refused.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use inosync_tests::{Fixture, refused_start};

use super::s;

// 1. Overlapping local paths.

#[test]
fn targets_overlapping_the_source_are_refused_and_nothing_is_touched() {
    let fx = Fixture::new();
    fs::write(fx.src.join("file"), "source").unwrap();
    let sibling = fx.path("sibling");
    fs::create_dir(&sibling).unwrap();
    fs::write(sibling.join("file"), "sibling").unwrap();
    let sock = fx.path("other.sock");
    let quick = |target: &Path| {
        refused_start(&[
            "-s".as_ref(),
            sock.as_os_str(),
            fx.src.as_os_str(),
            target.as_os_str(),
        ])
    };
    // The target is an ancestor of the source.
    let stderr = quick(fx.dir.path());
    assert!(
        stderr.contains("contains the watched directory"),
        "{stderr}"
    );
    assert!(stderr.contains(&s(&fx.src)), "{stderr}");
    // The target is inside the source, also when reached through a symlink.
    let stderr = quick(&fx.src.join("mirror"));
    assert!(
        stderr.contains("is inside the watched directory"),
        "{stderr}"
    );
    let link = fx.path("link");
    symlink(&fx.src, &link).unwrap();
    let stderr = quick(&link.join("mirror"));
    assert!(stderr.contains("is inside"), "{stderr}");
    // The source itself.
    assert!(quick(&fx.src).contains("same directory"));
    assert_eq!(fs::read_to_string(fx.src.join("file")).unwrap(), "source");
    assert_eq!(fs::read_to_string(sibling.join("file")).unwrap(), "sibling");
    assert!(!fx.src.join("mirror").exists());
    assert!(!sock.exists(), "a refused start must leave no socket");

    // Two watches of a config whose destinations nest: refused by --check too.
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let config = fx.path("nested.toml");
    fs::write(
        &config,
        format!(
            "[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n\
             [[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/blog\"]\n",
            s(&fx.src),
            s(&fx.dst),
            s(&other),
            s(&fx.dst)
        ),
    )
    .unwrap();
    let stderr = refused_start(&["--check".as_ref(), "-c".as_ref(), config.as_os_str()]);
    assert!(stderr.contains(&format!("{}/blog", s(&fx.dst))), "{stderr}");
    assert!(
        stderr.contains("contains the destination") || stderr.contains("is inside the destination"),
        "{stderr}"
    );
}

#[test]
fn add_and_reload_refuse_overlaps_and_a_quick_start_add_needs_a_target() {
    let fx = Fixture::new();
    let blog = fx.path("blog");
    fs::create_dir(&blog).unwrap();
    fs::write(blog.join("post"), "hello").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    let stderr = daemon.ctl_fails(1, &["add", &s(&blog)]);
    assert!(stderr.contains("--target"), "{stderr}");
    // Inside the first watch's mirror, where its --delete would remove it.
    let inside = format!("{}/srv/blog", s(&fx.dst));
    let stderr = daemon.ctl_fails(1, &["add", &s(&blog), "--target", &inside]);
    assert!(
        stderr.contains(&s(&fx.dst)) && stderr.contains(&inside),
        "{stderr}"
    );
    let stderr = daemon.ctl_fails(
        1,
        &["add", &s(&blog), "--target", &format!("{}/m", s(&fx.src))],
    );
    assert!(
        stderr.contains("is inside the watched directory"),
        "{stderr}"
    );
    let stderr = daemon.ctl_fails(1, &["add", "/", "--target", &s(&fx.path("x"))]);
    assert!(
        stderr.contains("whole system") || stderr.contains("contains"),
        "{stderr}"
    );
    assert_eq!(daemon.status()["watches"].as_array().map(Vec::len), Some(1));
    assert!(!fx.dst.join("srv").exists() && !fx.path("x").exists());
    // A target of its own is fine.
    let own = fx.path("blog-mirror");
    daemon.ctl_ok(&["add", &s(&blog), "--target", &s(&own), "--remote-path", ""]);
    daemon.wait_idle();
    assert_eq!(fs::read_to_string(own.join("post")).unwrap(), "hello");
    drop(daemon);

    // reload: a config whose second watch would mirror into the first's mirror.
    let fx = Fixture::new();
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    let config = fx.path("inosync.toml");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/nested\"]\n",
        s(&other),
        s(&fx.dst)
    ));
    fs::write(&config, text).unwrap();
    let stderr = daemon.ctl_fails(1, &["reload"]);
    assert!(stderr.contains("nested"), "{stderr}");
    assert_eq!(daemon.status()["watches"].as_array().map(Vec::len), Some(1));
    // The log says it as loudly as for a SIGHUP: the next restart would fail.
    let log = daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("reload: reload failed, old config kept")),
        "{log}"
    );
}

/// `inosyncd SOURCE TARGET` (its state and socket in the fixture), which
/// must refuse to start; its stderr.
fn quick_start_refused(fx: &Fixture, target: &Path) -> String {
    refused_start(&[
        "--state".as_ref(),
        fx.state_file().as_os_str(),
        "-s".as_ref(),
        fx.path("ctl.sock").as_os_str(),
        fx.src.as_os_str(),
        target.as_os_str(),
    ])
}

/// A target below a bind mount of the source is inside the source, though
/// no path says so: compared by filesystem and place on it, it is refused
/// at start and `--check`. Before: accepted, and the mirror nested in the
/// source at every sync (a black-box attack, 3 of 3).
#[test]
fn a_target_below_a_bind_mount_of_the_source_is_refused() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "x").unwrap();
    let shown = fx.path("shown");
    fs::create_dir(&shown).unwrap();
    let _bind = inosync_tests::Mount::bind(&fx.src, &shown);
    let target = shown.join("sub");
    let stderr = quick_start_refused(&fx, &target);
    assert!(stderr.contains("inside"), "{stderr}");
    assert!(
        !fx.src.join("sub").exists(),
        "the mirror nested in the source"
    );
}

/// The target shown inside the source by a bind mount (rsync crosses into
/// it) is refused too: the places of the filesystems mounted below a source
/// count as the source's (a review: the mirror was copied into itself).
#[test]
fn a_target_bind_mounted_inside_the_source_is_refused() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "x").unwrap();
    let inside = fx.src.join("m");
    fs::create_dir(&inside).unwrap();
    let _bind = inosync_tests::Mount::bind(&fx.dst, &inside);
    let stderr = quick_start_refused(&fx, &fx.dst);
    assert!(
        stderr.contains("same directory") || stderr.contains("inside"),
        "{stderr}"
    );
    assert!(!fx.dst.join("f").exists(), "the mirror was written");
}

/// The source shown inside the target by a bind mount: the target's full
/// sync (`--delete`) would reach the source through it and empty it. The
/// places of the filesystems mounted below a target count as the target's
/// (a black-box attack: the source was emptied, 4 of 4).
#[test]
fn a_source_bind_mounted_inside_the_target_is_refused() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "x").unwrap();
    let inner = fx.dst.join("inner");
    fs::create_dir(&inner).unwrap();
    let _bind = inosync_tests::Mount::bind(&fx.src, &inner);
    let stderr = quick_start_refused(&fx, &fx.dst);
    assert!(
        stderr.contains("same directory")
            || stderr.contains("inside")
            || stderr.contains("contains"),
        "{stderr}"
    );
    assert!(fx.src.join("f").exists(), "the source was emptied");
}
