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
