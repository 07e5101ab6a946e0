//! Excluded paths never start an rsync, are never transferred, and are never
//! deleted on the target.

use std::fs;

use std::time::Duration;

use inosync_tests::{Fixture, assert_trees_equal, poll_until};

#[test]
fn global_and_per_watch_excludes_neither_transfer_nor_trigger() {
    let fx = Fixture::new();
    let wrapper = fx.rsync_wrapper();
    fs::create_dir_all(fx.src.join("cache")).unwrap();
    fs::create_dir_all(fx.src.join("sub/cache")).unwrap();
    fs::write(fx.src.join("keep.txt"), "keep").unwrap();
    fs::write(fx.src.join("x.tmp"), "source tmp").unwrap();
    fs::write(fx.src.join("cache/c"), "source cache").unwrap();
    // The target has its own copies of excluded paths: they must survive.
    fs::create_dir_all(fx.dst.join("cache")).unwrap();
    fs::write(fx.dst.join("x.tmp"), "target's own").unwrap();
    fs::write(fx.dst.join("cache/old"), "target's own").unwrap();

    let config = format!(
        "delay = 0\nrsync = \"{}\"\nexcludes = [\"*.tmp\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\n\
         targets = [\"{}/\"]\nexcludes = [\"/cache/\"]\n",
        wrapper.display(),
        fx.src.display(),
        fx.dst.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    let after_start = fx.rsync_calls().len();
    // One initial sync; a second when the tree was written within the start-up
    // scan's clock margin (it runs beside the first and cannot tell otherwise).
    assert!(
        (1..=2).contains(&after_start),
        "initial syncs: {:?}",
        fx.rsync_calls()
    );
    assert_eq!(fs::read_to_string(fx.dst.join("keep.txt")).unwrap(), "keep");
    assert_eq!(
        fs::read_to_string(fx.dst.join("x.tmp")).unwrap(),
        "target's own"
    );
    assert_eq!(
        fs::read_to_string(fx.dst.join("cache/old")).unwrap(),
        "target's own"
    );
    assert!(
        !fx.dst.join("cache/c").exists(),
        "excluded cache/c was transferred"
    );
    // /cache/ is anchored: sub/cache is not excluded.
    assert!(fx.dst.join("sub/cache").is_dir());

    // Changes only to excluded paths: no rsync at all.
    fs::write(fx.src.join("new.tmp"), "tmp").unwrap();
    fs::write(fx.src.join("sub/deep.tmp"), "tmp").unwrap();
    fs::write(fx.src.join("cache/new"), "cache").unwrap();
    fs::create_dir(fx.src.join("cache/newdir")).unwrap();
    fs::write(fx.src.join("cache/newdir/f"), "cache").unwrap();
    fs::remove_file(fx.src.join("x.tmp")).unwrap();
    daemon.wait_idle();
    assert_eq!(
        fx.rsync_calls().len(),
        after_start,
        "excluded changes started rsync: {:?}",
        fx.rsync_calls()
    );
    assert!(!fx.dst.join("new.tmp").exists());
    assert_eq!(
        fs::read_to_string(fx.dst.join("x.tmp")).unwrap(),
        "target's own"
    );

    // A real change starts exactly one rsync, which still leaves excluded paths
    // alone. It arrives by rename: one event, so one batch even with delay 0.
    fs::write(fx.path("real.txt"), "real").unwrap();
    fs::rename(fx.path("real.txt"), fx.src.join("sub/real.txt")).unwrap();
    daemon.wait_idle();
    assert_eq!(
        fx.rsync_calls().len(),
        after_start + 1,
        "{:?}",
        fx.rsync_calls()
    );
    assert_eq!(
        fs::read_to_string(fx.dst.join("sub/real.txt")).unwrap(),
        "real"
    );
    assert!(!fx.dst.join("sub/deep.tmp").exists());
    assert_eq!(
        fs::read_to_string(fx.dst.join("cache/old")).unwrap(),
        "target's own"
    );
    let last = fx.rsync_calls().pop().unwrap();
    assert!(
        last.contains("--exclude=*.tmp") && last.contains("--exclude=/cache/"),
        "{last}"
    );

    // Removing the tmp and cache paths from both sides leaves the rest equal.
    for root in [&fx.src, &fx.dst] {
        let _ = fs::remove_dir_all(root.join("cache"));
        for tmp in ["x.tmp", "new.tmp", "sub/deep.tmp"] {
            let _ = fs::remove_file(root.join(tmp));
        }
    }
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A source entry named like rsync's partial directory is never mirrored,
/// whether the run has that directory (a large one) or not (a brief one:
/// a few small files, see README "Performance"), listed or walked.
#[test]
fn a_source_entry_named_like_the_partial_directory_is_never_mirrored() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.counted_config(0.0));
    daemon.wait_idle();
    let before = fx.rsync_calls().len();

    // Listed (files in the root) and walked (a directory made now).
    fs::write(fx.src.join("a"), "a").unwrap();
    fs::create_dir(fx.src.join(".inosync-partial")).unwrap();
    fs::write(fx.src.join(".inosync-partial/x"), "not mirrored").unwrap();
    fs::create_dir_all(fx.src.join("new/.inosync-partial")).unwrap();
    fs::write(fx.src.join("new/b"), "b").unwrap();
    fs::write(fx.src.join("new/.inosync-partial/y"), "not mirrored").unwrap();
    daemon.wait_idle();
    let brief: Vec<String> = fx.rsync_calls()[before..]
        .iter()
        .filter(|c| !c.contains("--partial-dir") && !c.contains("progress2"))
        .cloned()
        .collect();
    assert!(!brief.is_empty(), "no brief run: {:?}", fx.rsync_calls());
    // And a large one, beside the same names.
    let before = fx.rsync_calls().len();
    let big = fs::File::create(fx.src.join("new/big")).unwrap();
    big.set_len(9 << 20).unwrap();
    drop(big);
    fs::write(fx.src.join("new/.inosync-partial/z"), "not mirrored").unwrap();
    daemon.wait_idle();
    assert!(
        fx.rsync_calls()[before..]
            .iter()
            .any(|c| c.contains("--partial-dir") && c.contains("new/big")),
        "{:?}",
        fx.rsync_calls()
    );

    assert_eq!(fs::read_to_string(fx.dst.join("a")).unwrap(), "a");
    assert_eq!(fs::read_to_string(fx.dst.join("new/b")).unwrap(), "b");
    assert_eq!(fs::metadata(fx.dst.join("new/big")).unwrap().len(), 9 << 20);
    for partial in [".inosync-partial", "new/.inosync-partial"] {
        assert!(
            !fx.dst.join(partial).exists(),
            "{partial} was mirrored by {:?}\n{}",
            fx.rsync_calls(),
            daemon.log()
        );
    }
}

/// Entries moved *into* a directory named like the partial directory (in the
/// root and below): never mirrored either. Their moves went as trees to
/// compare whole, which were listed without the rule that keeps listed paths
/// out (found by a black-box attack: `.inosync-partial/b` and
/// `d/.inosync-partial/a` were on the target).
#[test]
fn entries_moved_into_a_directory_named_like_the_partial_directory_are_never_mirrored() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("d/.inosync-partial")).unwrap();
    fs::create_dir_all(fx.src.join(".inosync-partial")).unwrap();
    fs::create_dir_all(fx.src.join("t")).unwrap();
    fs::write(fx.src.join("d/a"), "a").unwrap();
    fs::write(fx.src.join("b"), "b").unwrap();
    fs::write(fx.src.join("t/c"), "c").unwrap();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    fs::rename(fx.src.join("d/a"), fx.src.join("d/.inosync-partial/a")).unwrap();
    fs::rename(fx.src.join("b"), fx.src.join(".inosync-partial/b")).unwrap();
    fs::rename(fx.src.join("t"), fx.src.join(".inosync-partial/t")).unwrap();
    daemon.wait_idle();
    for gone in ["d/a", "b", "t"] {
        assert!(
            fs::symlink_metadata(fx.dst.join(gone)).is_err(),
            "{gone} stayed\n{}",
            daemon.log()
        );
    }
    for partial in [".inosync-partial", "d/.inosync-partial"] {
        assert!(
            !fx.dst.join(partial).exists(),
            "{partial} was mirrored\n{}",
            daemon.log()
        );
    }
}

/// A mirrored file replaced by a directory that a directory-only pattern
/// excludes (`/cache/`, `tmp/`): the target's file goes, as rsync's own
/// `--delete` would delete it (the pattern does not protect a file), and the
/// directory is never sent; a directory of the target under that name stays
/// (found by a black-box attack: the file stayed, and `wait` said idle).
#[test]
fn a_file_replaced_by_an_excluded_directory_leaves_the_mirror() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("sub")).unwrap();
    fs::write(fx.src.join("cache"), "a file, mirrored").unwrap();
    fs::write(fx.src.join("sub/tmp"), "a file, mirrored").unwrap();
    let config = format!(
        "delay = 0\ntargets = [\"{}/\"]\nexcludes = [\"/cache/\", \"tmp/\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\n",
        fx.dst.display(),
        fx.src.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    assert!(fx.dst.join("cache").is_file());
    assert!(fx.dst.join("sub/tmp").is_file());
    // Paused, so the removal and the directory are seen by one batch.
    daemon.ctl_ok(&["pause"]);
    fs::remove_file(fx.src.join("cache")).unwrap();
    fs::remove_file(fx.src.join("sub/tmp")).unwrap();
    fs::create_dir(fx.src.join("cache")).unwrap();
    fs::write(fx.src.join("cache/inside"), "excluded").unwrap();
    fs::create_dir(fx.src.join("sub/tmp")).unwrap();
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    assert!(
        !fx.dst.join("cache").exists() && !fx.dst.join("sub/tmp").exists(),
        "cache: {:?}, sub/tmp: {:?}\n{}",
        fs::symlink_metadata(fx.dst.join("cache")).map(|m| m.file_type()),
        fs::symlink_metadata(fx.dst.join("sub/tmp")).map(|m| m.file_type()),
        daemon.log()
    );
    let out = daemon.ctl(&["verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A target file your own rule file protects (`--exclude-from` in
/// `rsync_args`) stays when a directory holding it is deleted in the same
/// batch as a name with a newline: rules read NUL-separated (`--from0`, which
/// such a name used to turn on) made rsync read the user's file as one
/// pattern matching nothing, and the protected file was deleted.
#[test]
fn a_file_your_rule_file_protects_survives_a_deletion_beside_a_newline_name() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("gone")).unwrap();
    fs::write(fx.src.join("gone/a"), "a").unwrap();
    fs::write(fx.src.join("new\nline"), "odd").unwrap();
    let daemon = with_rule_file(&fx, "*.keep\n");
    daemon.wait_idle();
    fs::write(fx.dst.join("gone/local.keep"), "the target's own").unwrap();
    daemon.ctl_ok(&["pause"]);
    fs::remove_dir_all(fx.src.join("gone")).unwrap();
    fs::remove_file(fx.src.join("new\nline")).unwrap();
    let recorded = inosync_tests::poll_until(std::time::Duration::from_secs(10), || {
        daemon.status()["watches"][0]["pending"].as_u64() >= Some(2)
    });
    assert!(recorded, "{}", daemon.log());
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    assert!(
        fx.dst.join("gone/local.keep").exists(),
        "a protected file was deleted\n{}",
        daemon.log()
    );
    assert!(!fx.dst.join("gone/a").exists());
    assert!(!fx.dst.join("new\nline").exists());
}

/// A daemon whose `rsync_args` read `rules` from a file of yours
/// (`--exclude-from`); the sandbox reads rule files under /etc only (README
/// "The sandbox"), so it is off.
fn with_rule_file(fx: &Fixture, rules: &str) -> inosync_tests::Daemon {
    let file = fx.path("user-rules");
    fs::write(&file, rules).unwrap();
    fx.start_toml(&fx.simple_config(&format!(
        "sandbox = \"off\"\nrsync_args = [\"--exclude-from={}\"]",
        file.display()
    )))
}

/// What a rule file of yours (`--exclude-from` in `rsync_args`) excludes is
/// not sent when a batch's list is too long for arguments (on rsync's stdin)
/// and holds a name with a newline: such a name used to make the list
/// NUL-separated (`--from0`), and rsync then read your file NUL-separated
/// too, as one pattern that matches nothing.
#[test]
fn your_rule_file_applies_to_a_list_read_on_stdin_beside_a_newline_name() {
    let fx = Fixture::new();
    let daemon = with_rule_file(&fx, "*.secret\n");
    daemon.wait_idle();
    daemon.ctl_ok(&["pause"]);
    // About 600 KB of paths in one directory (a batch is cut only between
    // directories): more than rsync's arguments may take.
    let long = "n".repeat(230);
    for i in 0..2_500 {
        fs::write(fx.src.join(format!("{long}{i:04}")), "x").unwrap();
    }
    fs::write(fx.src.join("new\nline"), "odd").unwrap();
    fs::write(fx.src.join("key.secret"), "not for the mirror").unwrap();
    let recorded = inosync_tests::poll_until(std::time::Duration::from_secs(30), || {
        daemon.status()["watches"][0]["pending"].as_u64() >= Some(2_502)
    });
    assert!(recorded, "{}", daemon.log());
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    assert!(
        daemon.log().contains("--files-from=-"),
        "the list went as arguments: this test needs it on stdin\n{}",
        daemon.log()
    );
    assert!(
        !fx.dst.join("key.secret").exists(),
        "a file your rule file excludes was sent\n{}",
        daemon.log()
    );
    assert_eq!(fs::read(fx.dst.join("new\nline")).unwrap(), b"odd");
    assert!(fx.dst.join(format!("{long}2499")).exists());
}

/// Changes pending below a directory when a reload excludes it are not
/// sent: an exclude means never transferred. Before, the batch listed them
/// with the new `--exclude` beside them, which does not stop a listed path
/// (rsync sends a listed path's directories as implied ones), and the
/// excluded files were written to the mirror (found by a black-box attack,
/// 8 of 8 on both backends).
#[test]
fn changes_pending_below_a_directory_a_reload_excludes_are_not_sent() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("ex2")).unwrap();
    fs::write(fx.src.join("ex2/x"), "old").unwrap();
    let config = |excludes: &str| fx.config(&format!("delay = 3\nexcludes = [{excludes}]"));
    let daemon = fx.start_toml(&config("\"/nothing/\""));
    daemon.wait_idle();
    fs::write(fx.src.join("ex2/x"), "new").unwrap();
    fs::write(fx.src.join("ex2/y"), "new file").unwrap();
    fs::write(fx.src.join("kept"), "sent").unwrap();
    let pending = poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][0]["pending"].as_u64() >= Some(3)
    });
    assert!(pending, "{}", daemon.status());
    fs::write(fx.path("inosync.toml"), config("\"/ex2/\"")).unwrap();
    daemon.ctl_ok(&["reload"]);
    daemon.wait_idle();
    assert_eq!(fs::read_to_string(fx.dst.join("kept")).unwrap(), "sent");
    assert_eq!(
        fs::read_to_string(fx.dst.join("ex2/x")).unwrap(),
        "old",
        "an excluded file was sent\n{}",
        daemon.log()
    );
    assert!(!fx.dst.join("ex2/y").exists(), "{}", daemon.log());
}
