//! Names a writer of the source plants for rsync to follow on the target.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use inosync_tests::{Fixture, assert_trees_equal};

/// A symlink in the source named like rsync's partial directory
/// (`d/.inosync-partial -> /outside`): rsync's own rule for that name matches
/// directories only, so the link was mirrored, and the next transfer of
/// `d/victim` took `/outside/victim` for its partial file, through the link:
/// it got the source file's mode (with `sandbox = "off"` it was moved into
/// the mirror). Never mirrored now, and a link of that name on the target is
/// deleted by the next full sync (found by a black-box attack).
#[test]
fn a_symlink_named_like_the_partial_directory_is_never_mirrored_nor_followed() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), "outside file").unwrap();
    fs::set_permissions(outside.join("victim"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::create_dir(fx.src.join("d")).unwrap();
    fs::write(fx.src.join("d/victim"), big(1)).unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    symlink(&outside, fx.src.join("d/.inosync-partial")).unwrap();
    daemon.wait_idle();
    assert!(
        fs::symlink_metadata(fx.dst.join("d/.inosync-partial")).is_err(),
        "the link was mirrored\n{}",
        daemon.log()
    );
    fs::write(fx.src.join("d/victim"), big(2)).unwrap();
    fs::set_permissions(fx.src.join("d/victim"), fs::Permissions::from_mode(0o666)).unwrap();
    daemon.wait_idle();
    let victim = fs::metadata(outside.join("victim")).unwrap();
    assert_eq!(victim.mode() & 0o7777, 0o644, "{}", daemon.log());
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"outside file");
    assert_eq!(fs::read(fx.dst.join("d/victim")).unwrap(), big(2));
    // One planted on the target (by whoever may write there) goes with the
    // next full sync.
    symlink(&outside, fx.dst.join("d/.inosync-partial")).unwrap();
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
    assert!(fs::symlink_metadata(fx.dst.join("d/.inosync-partial")).is_err());
    fs::remove_file(fx.src.join("d/.inosync-partial")).unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"outside file");
}

/// The mirror's directory replaced by a symlink while the daemon runs
/// (`mv mirror x; ln -s /other mirror`): nothing is written or deleted where
/// it leads; the run is refused, naming both places, until a reload or a
/// restart (found by a black-box attack: `/other`'s files were deleted and
/// the source copied there).
#[test]
fn a_mirror_replaced_by_a_symlink_is_not_written_through() {
    let fx = Fixture::new();
    fs::write(fx.src.join("first"), "1").unwrap();
    let other = fx.path("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("precious"), "not the mirror's").unwrap();
    // Named like a file of the source that moves: the renames on a local
    // target go first, and must not rename it.
    fs::write(other.join("first"), "other's own").unwrap();
    let config = format!(
        "delay = 0\ntargets = [\"{}/\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\n",
        fx.dst.display(),
        fx.src.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    fs::rename(&fx.dst, fx.path("mirror.old")).unwrap();
    symlink(&other, &fx.dst).unwrap();
    fs::write(fx.src.join("second"), "2").unwrap();
    fs::rename(fx.src.join("first"), fx.src.join("moved")).unwrap();
    let out = daemon.ctl(&["wait", "--timeout", "3"]);
    assert!(!out.status.success());
    let out = daemon.ctl(&["sync", "--wait", "--timeout", "5"]);
    assert!(!out.status.success());
    assert_eq!(
        fs::read_to_string(other.join("precious")).unwrap(),
        "not the mirror's"
    );
    assert_eq!(
        fs::read_to_string(other.join("first")).unwrap(),
        "other's own"
    );
    assert!(!other.join("moved").exists() && !other.join("second").exists());
    let status = daemon.status();
    let error = status["watches"][0]["targets"][0]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("now leads to"), "{status}");
    // Meant: a reload takes the new place, and gives it a full sync at once
    // (it holds none of the mirror: a rotated-in disk), which `wait` waits
    // for (found by a black-box attack: only the pending paths went there).
    daemon.ctl_ok(&["reload"]);
    daemon.ctl_ok(&["wait", "--timeout", "30"]);
    assert_eq!(fs::read_to_string(other.join("second")).unwrap(), "2");
    assert_eq!(fs::read_to_string(other.join("moved")).unwrap(), "1");
    assert!(!other.join("first").exists() && !other.join("precious").exists());
    assert_trees_equal(&fx.src, &other, &daemon);
}

/// A mirrored symlink (and a file) renamed in the source to the partial
/// directory's name: the move is not repeated as a rename on the target
/// (the link there would lead rsync's partial files outside the mirror); the
/// old names go, the new one is never mirrored (found by a black-box attack:
/// with `sandbox = "off"` a file behind the link was moved into the mirror).
#[test]
fn an_entry_renamed_to_the_partial_directorys_name_is_not_renamed_on_the_target() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("big"), "outside file").unwrap();
    fs::create_dir_all(fx.src.join("x")).unwrap();
    fs::create_dir_all(fx.src.join("y")).unwrap();
    symlink(&outside, fx.src.join("x/lnk")).unwrap();
    fs::write(fx.src.join("y/plain"), "plain").unwrap();
    fs::write(fx.src.join("x/big"), big(1)).unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    assert!(fs::symlink_metadata(fx.dst.join("x/lnk")).is_ok());
    fs::rename(fx.src.join("x/lnk"), fx.src.join("x/.inosync-partial")).unwrap();
    fs::rename(fx.src.join("y/plain"), fx.src.join("y/.inosync-partial")).unwrap();
    daemon.wait_idle();
    fs::write(fx.src.join("x/big"), big(2)).unwrap();
    daemon.wait_idle();
    for gone in [
        "x/lnk",
        "x/.inosync-partial",
        "y/plain",
        "y/.inosync-partial",
    ] {
        assert!(
            fs::symlink_metadata(fx.dst.join(gone)).is_err(),
            "{gone} on the mirror\n{}",
            daemon.log()
        );
    }
    assert_eq!(fs::read(fx.dst.join("x/big")).unwrap(), big(2));
    assert_eq!(fs::read(outside.join("big")).unwrap(), b"outside file");
}

/// 3 MiB that differ with `seed`: large enough for rsync to use its partial
/// directory.
fn big(seed: u8) -> Vec<u8> {
    (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}
