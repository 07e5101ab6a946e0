//! `inosyncctl status` at 80 columns: long paths shortened in the middle
//! (their last component whole), a state on one line, and the ERROR column
//! starting with rsync's own cause rather than the exit code.

use std::fs;
use std::time::Duration;

use inosync_tests::{Fixture, poll_until};

#[test]
fn the_table_shortens_paths_and_shows_the_cause_first() {
    let fx = Fixture::new();
    let blog = fx.path("srv/a-rather-long-directory-name/and-another-one/blog");
    fs::create_dir_all(&blog).unwrap();
    let afile = fx.path("backup-with-a-long-name/afile");
    fs::create_dir_all(&afile).unwrap();
    let config = format!(
        "delay = 0\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/dst\"]\n",
        blog.display(),
        afile.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    // The target breaks at runtime: a regular file where a directory was.
    fs::remove_dir_all(&afile).unwrap();
    fs::write(&afile, "a regular file").unwrap();
    fs::write(blog.join("post"), "hello").unwrap();
    let failed = poll_until(Duration::from_secs(30), || {
        daemon.status()["watches"][0]["targets"][0]["failures"]
            .as_u64()
            .is_some_and(|f| f >= 1)
    });
    assert!(failed, "{}", daemon.log());

    let table = daemon.ctl_ok(&["status"]);
    eprintln!("{table}");
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "{line}\n{table}");
    }
    let row = table
        .lines()
        .find(|l| l.contains("…/blog"))
        .unwrap_or_else(|| panic!("the watch path is not shortened in the middle:\n{table}"));
    assert!(row.trim_start().starts_with('/'), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("→ /") && l.contains("…/afile/dst")),
        "the destination is not shortened in the middle:\n{table}"
    );
    assert!(
        row.contains("retrying in ") && row.contains(" s ") || row.contains("retry due"),
        "the state is not on one line:\n{table}"
    );
    assert!(row.contains("mkdir"), "the cause is not first:\n{table}");
    assert!(!table.contains("rsync exited with"), "{table}");
    // No word of a path is broken over two lines.
    assert!(
        !table
            .lines()
            .any(|l| l.trim_start().starts_with("e/") || l.trim().ends_with("afil")),
        "{table}"
    );
}

/// A watch with a local and an unreachable `rsync://` target (its state
/// `retrying in 8.3 s`): still at most 80 columns, and the remote target
/// keeps its host.
#[test]
fn a_retrying_remote_target_fits_80_columns_and_keeps_its_host() {
    let fx = Fixture::new();
    let blog = fx.path("srv/a-rather-long-directory-name/and-another-one/blog");
    fs::create_dir_all(&blog).unwrap();
    let port = inosync_tests::remote::free_port();
    let config = format!(
        "delay = 0\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\n\
         targets = [\"{}/mirror-with-a-long-name/\", \"rsync://127.0.0.1:{port}/m/backups/blog/\"]\n",
        blog.display(),
        fx.dst.display()
    );
    let daemon = fx.start_toml(&config);
    let failed = poll_until(Duration::from_secs(30), || {
        daemon.status()["watches"][0]["targets"][1]["failures"]
            .as_u64()
            .is_some_and(|f| f >= 1)
    });
    assert!(failed, "{}", daemon.log());
    let table = daemon.ctl_ok(&["status"]);
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "{line}\n{table}");
    }
    assert!(
        table.contains(&format!("rsync://127.0.0.1:{port}/")),
        "the remote target lost its host:\n{table}"
    );
}
