//! Names that broke inosync's shell command line: spaces, newlines, leading dashes,
//! `%`, glob characters, backslashes, and bytes that are not UTF-8.

use std::fs;

use inosync_tests::{Fixture, ODD_NAMES as NAMES, assert_trees_equal, join_bytes, write_odd_names};

#[test]
fn odd_names_sync_both_ways() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();

    write_odd_names(&fx.src);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);

    // Deletions of odd names must arrive too (they travel as missing paths).
    for name in NAMES {
        fs::remove_file(join_bytes(&fx.src, name)).unwrap();
    }
    fs::rename(
        join_bytes(&fx.src, b"dir with space"),
        join_bytes(&fx.src, b"-renamed dir\n"),
    )
    .unwrap();
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A watch whose path holds a newline: `status` keeps its row on one line
/// (the newline shown as `\n`), and `--json` has the path as it is (found by
/// a black-box attack: the row broke across lines).
#[test]
fn a_watch_path_with_a_newline_keeps_its_status_row_on_one_line() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let odd = fx.path("two\nlines -");
    fs::create_dir(&odd).unwrap();
    let odd_dst = fx.path("odd-mirror");
    fs::create_dir(&odd_dst).unwrap();
    let odd_text = odd.to_str().unwrap();
    let target = format!("{}/", odd_dst.display());
    daemon.ctl_ok(&["add", odd_text, "--target", &target, "--remote-path", ""]);
    daemon.wait_idle();
    let table = daemon.ctl_ok(&["status"]);
    assert!(table.contains("two\\nlines -"), "{table}");
    assert!(!table.lines().any(|l| l.starts_with("lines -")), "{table}");
    let json = daemon.status();
    let paths: Vec<&str> = json["watches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["path"].as_str())
        .collect();
    assert!(paths.contains(&odd_text), "{json}");
}

/// Names rsync reads as comments in a list (`#`, `;` first) arrive when the
/// batch's list is too long for arguments and goes on rsync's stdin, where
/// rsync drops such lines (found by a review: the batch said synced).
#[test]
fn names_starting_like_a_comment_arrive_in_a_list_read_on_stdin() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    daemon.ctl_ok(&["pause"]);
    // About 600 KB of paths in one directory (a batch is cut only between
    // directories): more than rsync's arguments may take.
    let long = "n".repeat(230);
    for i in 0..2_500 {
        fs::write(fx.src.join(format!("{long}{i:04}")), "x").unwrap();
    }
    // Beside them, at the root, where the list's line starts with the name.
    for name in ["#hash", ";semicolon", "# spaced"] {
        fs::write(fx.src.join(name), name).unwrap();
    }
    let recorded = inosync_tests::poll_until(std::time::Duration::from_secs(30), || {
        daemon.status()["watches"][0]["pending"].as_u64() >= Some(2_503)
    });
    assert!(recorded, "{}", daemon.log());
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}
