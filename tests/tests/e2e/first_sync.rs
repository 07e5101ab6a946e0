//! A first sync into an empty target, cut over several rsync processes when
//! CPUs are free (README "How a sync works"): the mirror is the tree one
//! process would have made, attributes of the root and its directories
//! included; a part that fails fails the whole sync, which is retried; and
//! options that tie the tree together keep it in one process.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use inosync_tests::{Fixture, assert_trees_equal, write_odd_names};

/// A tree with several top-level directories of different sizes, files,
/// links and odd names at the top, modes and old mtimes on directories.
fn varied_tree(root: &Path) {
    for (dir, subdirs) in [("big", 40), ("middle", 12), ("small", 3), ("-rf", 2)] {
        for i in 0..subdirs {
            let sub = root.join(dir).join(format!("sub{i}"));
            fs::create_dir_all(&sub).unwrap();
            fs::write(sub.join("file"), format!("{dir} {i}")).unwrap();
        }
    }
    fs::create_dir(root.join("empty")).unwrap();
    fs::write(root.join("top-file"), "at the top").unwrap();
    symlink("big/sub0/file", root.join("link")).unwrap();
    symlink("/nonexistent", root.join("dangling")).unwrap();
    write_odd_names(root);
    fs::set_permissions(root.join("middle"), fs::Permissions::from_mode(0o711)).unwrap();
    for dir in ["big", "middle", "big/sub1", "empty", "."] {
        set_mtime(&root.join(dir), 1_500_000_000 + dir.len() as i64);
    }
}

fn set_mtime(path: &Path, secs: i64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let times = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a NUL-terminated path and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

/// The mtimes of the root and its directories, which `assert_trees_equal`
/// does not compare.
fn assert_directory_mtimes_equal(src: &Path, dst: &Path) {
    for dir in ["", "big", "middle", "big/sub1", "empty", "-rf"] {
        let (a, b) = (src.join(dir), dst.join(dir));
        let (a, b) = (fs::metadata(&a).unwrap(), fs::metadata(&b).unwrap());
        assert_eq!(
            (a.mtime(), a.mtime_nsec()),
            (b.mtime(), b.mtime_nsec()),
            "mtime of {dir:?}"
        );
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn a_first_sync_into_an_empty_target_is_cut_and_makes_the_same_mirror() {
    let fx = Fixture::new();
    varied_tree(&fx.src);
    fs::write(fx.src.join("excluded-file"), "never sent").unwrap();
    fs::create_dir(fx.src.join("cache")).unwrap();
    fs::write(fx.src.join("cache/x"), "never sent").unwrap();
    fs::remove_dir(&fx.dst).unwrap();
    let daemon = fx.start_toml(&fx.config(&format!(
        "delay = 0\nrsync = \"{}\"\nexcludes = [\"/cache/\", \"/excluded-file\"]",
        fx.rsync_wrapper().display()
    )));
    daemon.wait_idle();
    // Before the excluded entries go from the source, which changes its mtime.
    assert_directory_mtimes_equal(&fx.src, &fx.dst);
    for excluded in ["cache", "excluded-file"] {
        assert!(!fx.dst.join(excluded).exists(), "{excluded} was sent");
        fs::remove_dir_all(fx.src.join(excluded))
            .or_else(|_| fs::remove_file(fx.src.join(excluded)))
            .unwrap();
    }
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let calls = fx.rsync_calls();
    let top_level = calls.iter().filter(|c| c.contains("--dirs")).count();
    let walks = calls.iter().filter(|c| c.contains("--recursive")).count();
    if cpus() > 1 {
        assert_eq!(top_level, 1, "the top level in one run: {calls:#?}");
        assert!(
            walks >= 2,
            "the directories walked side by side: {calls:#?}"
        );
    }
    // Its parts delete nothing (`--delete` comes with `--delete-delay`; a
    // name here holds the word). Under inotify a full sync may follow (the
    // tree changed as the watches were set up: the mtimes set above).
    let parts: Vec<&String> = calls
        .iter()
        .filter(|c| c.contains("--dirs") || c.contains("/./"))
        .collect();
    assert!(
        parts.iter().all(|c| !c.contains("--delete-delay")),
        "nothing to delete in an empty target: {parts:#?}"
    );
}

#[test]
fn a_part_of_a_first_sync_that_fails_fails_the_sync_which_is_retried() {
    let fx = Fixture::new();
    varied_tree(&fx.src);
    // The walk of `middle` fails the first time, before it copied anything
    // (an I/O error, exit 11); the calls log, the one file a sandboxed
    // rsync may write outside its target, counts.
    let calls = fx.calls_log();
    let wrapper = fx.path("failing-rsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{calls}'\n\
             case \"$*\" in *'/./middle'*) \
             if [ \"$(grep -c -- '/./middle' '{calls}')\" -le 1 ]; then \
             echo 'rsync error: error in file I/O (code 11)' >&2; exit 11; fi;; esac\nexec '{rsync}' \"$@\"\n",
            calls = calls.display(),
            rsync = inosync_tests::real_rsync().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let daemon =
        fx.start_toml(&fx.config(&format!("delay = 0\nrsync = \"{}\"", wrapper.display())));
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    assert_directory_mtimes_equal(&fx.src, &fx.dst);
    if cpus() > 1 {
        let calls = fx.rsync_calls();
        assert!(
            calls.iter().any(|c| c.contains("--dirs")),
            "the first sync was never cut: {calls:#?}"
        );
        let log = daemon.log();
        assert!(
            log.contains("exit 11"),
            "the failed part was reported: {log}"
        );
    }
}

#[test]
fn hard_links_across_top_level_directories_keep_the_sync_whole() {
    let fx = Fixture::new();
    varied_tree(&fx.src);
    fs::create_dir(fx.src.join("other")).unwrap();
    fs::hard_link(fx.src.join("big/sub0/file"), fx.src.join("other/link")).unwrap();
    let daemon = fx.start_toml(&fx.config(&format!(
        "delay = 0\nrsync = \"{}\"\nrsync_args = [\"-H\"]",
        fx.rsync_wrapper().display()
    )));
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    let (a, b) = (
        fs::metadata(fx.dst.join("big/sub0/file")).unwrap(),
        fs::metadata(fx.dst.join("other/link")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "the two names are one file on the target");
    let calls = fx.rsync_calls();
    assert!(
        calls.iter().all(|c| !c.contains("--dirs")),
        "one process: {calls:#?}"
    );
}

/// A first sync of the varied tree with a rule file in the source root
/// excluding `secret` and the config's `top` lines: the file it excludes is
/// never sent, and the sync is one process.
fn first_sync_with_a_root_rule_file(top: &str) {
    let fx = Fixture::new();
    varied_tree(&fx.src);
    // The root's rule file, which only a walk of the root reads.
    fs::write(fx.src.join(".rsync-filter"), "- secret\n").unwrap();
    fs::write(fx.src.join("big/sub0/secret"), "not for the mirror").unwrap();
    fs::write(fx.path("rules"), ": .rsync-filter\n").unwrap();
    let top = top.replace("RULES", &fx.path("rules").display().to_string());
    let daemon = fx.start_toml(&fx.config(&format!(
        "delay = 0\nrsync = \"{}\"\n{top}",
        fx.rsync_wrapper().display()
    )));
    daemon.wait_idle();
    let calls = fx.rsync_calls();
    assert!(
        !fx.dst.join("big/sub0/secret").exists(),
        "a file the root's rule file excludes was sent: {calls:#?}"
    );
    assert!(fx.dst.join("big/sub0/file").exists());
    assert!(
        calls.iter().all(|c| !c.contains("--dirs")),
        "one process: {calls:#?}"
    );
}

#[test]
fn a_filter_file_read_in_each_directory_keeps_the_first_sync_whole() {
    first_sync_with_a_root_rule_file("rsync_args = [\"--filter=: .rsync-filter\"]");
}

#[test]
fn a_rule_file_naming_a_per_directory_rule_keeps_the_first_sync_whole() {
    // lsyncd's `filterFrom` becomes such a rule (README "lsyncd configs").
    // The sandbox reads rule files under /etc only (README "The sandbox"):
    // off here, for one beside the trees.
    first_sync_with_a_root_rule_file("sandbox = \"off\"\nrsync_args = [\"--filter=merge RULES\"]");
}

#[test]
fn a_tree_whose_top_level_is_one_directory_is_one_process() {
    let fx = Fixture::new();
    for i in 0..5 {
        fs::create_dir_all(fx.src.join(format!("html/sub{i}"))).unwrap();
        fs::write(fx.src.join(format!("html/sub{i}/page")), "page").unwrap();
    }
    fs::write(fx.src.join("index"), "top").unwrap();
    let daemon = fx.start_toml(&fx.config(&format!(
        "delay = 0\nrsync = \"{}\"",
        fx.rsync_wrapper().display()
    )));
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    // Nothing to cut: one process, and no slot held that it cannot use.
    let calls = fx.rsync_calls();
    assert!(calls.iter().all(|c| !c.contains("--dirs")), "{calls:#?}");
}
