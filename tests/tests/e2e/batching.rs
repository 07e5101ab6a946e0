//! Coalescing: many changes inside one delay window make one batch, and the quick
//! check of rsync never hides a change we know about.

use std::fs;

use inosync_tests::{Fixture, assert_trees_equal};

/// 1,000 rewrites of one file inside one delay window: at most 2 rsync runs (one
/// may start mid-burst if the burst straddles the timer), final content arrives.
#[test]
fn thousand_rewrites_in_one_window_make_at_most_two_runs() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.counted_config(1.0));
    daemon.wait_idle();
    let before = fx.rsync_calls().len();
    let file = fx.src.join("hot.txt");
    for i in 0..1000 {
        fs::write(&file, format!("version {i}")).unwrap();
    }
    daemon.wait_idle();
    let runs = fx.rsync_calls().len() - before;
    assert!(
        (1..=2).contains(&runs),
        "{runs} rsync runs for 1,000 rewrites"
    );
    assert_eq!(
        fs::read_to_string(fx.dst.join("hot.txt")).unwrap(),
        "version 999"
    );
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// A file rewritten with the same size right after a sync (same second, often the
/// same mtime tick) still arrives: rsync's size + mtime quick check must not hide it.
#[test]
fn same_size_rewrite_after_a_sync_always_arrives() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let file = fx.src.join("same-size.txt");
    for i in 0..30 {
        let content = format!("content {:03}", i);
        fs::write(&file, &content).unwrap();
        daemon.wait_idle();
        assert_eq!(
            fs::read_to_string(fx.dst.join("same-size.txt")).unwrap(),
            content,
            "rewrite {i} was not synced\n{}",
            daemon.log()
        );
    }
}

/// A same-size rewrite with its mtime kept (`cp -p`, `tar x`), pending when a
/// full sync comes (`inosyncctl sync`, a lost event): a full sync compares
/// size and mtime, and would find the file equal; it still arrives (found by
/// a black-box attack: the full sync absorbed the listed path, and `wait` said
/// idle with the old content on the target).
#[test]
fn a_same_size_rewrite_with_its_mtime_kept_survives_a_full_sync() {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, UNIX_EPOCH};
    let fx = Fixture::new();
    fs::write(fx.src.join("x"), "aaaa").unwrap();
    let daemon = fx.start_toml(&fx.config("delay = 3600"));
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
    assert_eq!(fs::read_to_string(fx.dst.join("x")).unwrap(), "aaaa");
    let mtime = fs::metadata(fx.src.join("x")).unwrap();
    let kept = UNIX_EPOCH + Duration::new(mtime.mtime() as u64, mtime.mtime_nsec() as u32);
    fs::write(fx.src.join("x"), "ZZZZ").unwrap();
    fs::File::options()
        .write(true)
        .open(fx.src.join("x"))
        .unwrap()
        .set_modified(kept)
        .unwrap();
    let pending = inosync_tests::poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][0]["pending"] == 1
    });
    assert!(pending, "{}", daemon.status());
    daemon.ctl_ok(&["sync", "--wait", "--timeout", "30"]);
    assert_eq!(
        fs::read_to_string(fx.dst.join("x")).unwrap(),
        "ZZZZ",
        "{}",
        daemon.log()
    );
}

/// A directory swapped for another with the same sizes and mtimes (a
/// reproducible build: `rm -r out; mv out.new out`) while a full sync is
/// pending: the full sync would find every file equal; the swapped tree is
/// still sent again whole (found by a review: the trees recorded beside a
/// full sync were dropped).
#[test]
fn a_tree_swapped_in_with_the_same_sizes_and_mtimes_survives_a_full_sync() {
    use std::time::{Duration, UNIX_EPOCH};
    let then = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let build = |dir: &std::path::Path, text: &str| {
        fs::create_dir_all(dir.join("sub")).unwrap();
        for name in ["f", "sub/g"] {
            fs::write(dir.join(name), text).unwrap();
            fs::File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(then)
                .unwrap();
        }
    };
    let fx = Fixture::new();
    build(&fx.src.join("out"), "aaaa");
    // Traced: each change the daemon records is logged ("change: ").
    let daemon = fx.start_toml_with_env(&fx.simple_config(""), &[("RUST_LOG", "trace")]);
    daemon.wait_idle();
    build(&fx.path("out.new"), "bbbb");
    daemon.ctl_ok(&["pause"]);
    daemon.ctl_ok(&["sync"]);
    let changes = || daemon.log().matches("change: ").count();
    let before = changes();
    fs::remove_dir_all(fx.src.join("out")).unwrap();
    fs::rename(fx.path("out.new"), fx.src.join("out")).unwrap();
    // The swap read (the removal and the arrival) while the full sync waits.
    let seen = inosync_tests::poll_until(Duration::from_secs(10), || changes() >= before + 2);
    assert!(seen, "{}", daemon.log());
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    for name in ["out/f", "out/sub/g"] {
        assert_eq!(
            fs::read_to_string(fx.dst.join(name)).unwrap(),
            "bbbb",
            "{name}\n{}",
            daemon.log()
        );
    }
}

/// Many files written at once go in few batches, not one rsync per file.
#[test]
fn burst_is_coalesced() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.counted_config(2.0));
    daemon.wait_idle();
    let before = fx.rsync_calls().len();
    for d in 0..20 {
        let dir = fx.src.join(format!("dir{d}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..50 {
            fs::write(dir.join(format!("f{f}")), format!("{d}/{f}")).unwrap();
        }
    }
    daemon.wait_idle();
    let runs = fx.rsync_calls().len() - before;
    assert!(runs <= 3, "{runs} rsync runs for a 1,000-file burst");
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

/// `full_sync_interval` repairs what no event reported: here, a target file
/// changed behind the daemon's back.
#[test]
fn periodic_full_sync_repairs_the_target() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "source").unwrap();
    let daemon = fx.start_toml(&fx.simple_config("full_sync_interval = 1"));
    daemon.wait_idle();
    fs::remove_file(fx.dst.join("f")).unwrap();
    let repaired = inosync_tests::poll_until(std::time::Duration::from_secs(20), || {
        fx.dst.join("f").exists()
    });
    assert!(repaired, "no periodic full sync\n{}", daemon.log());
    assert!(daemon.log().contains("periodic full sync"));
}

#[test]
fn a_large_burst_is_split_over_several_rsync_processes() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.config("delay = 1\nmax_parallel = 4"));
    daemon.wait_idle();
    // Held while the burst is written, so that it is one batch of 6,060 paths
    // however slowly the machine writes it.
    daemon.ctl_ok(&["pause"]);
    for d in 0..60 {
        let dir = fx.src.join(format!("dir{d:02}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..100 {
            fs::write(dir.join(format!("f{f:03}")), format!("{d}/{f}")).unwrap();
        }
    }
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    assert!(
        daemon.log().contains("rsync processes"),
        "not split:\n{}",
        daemon.log()
    );
}
