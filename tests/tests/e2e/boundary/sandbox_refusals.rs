//! An rsync option whose writes the sandbox refuses and that are the transfer
//! itself (`--temp-dir`, `--backup-dir` outside the target) makes a failed
//! sync that names the sandbox and the option, is retried as a
//! misconfiguration, and leaves nothing behind: no file outside the mirror,
//! no temp file inside it.

use std::fs;
use std::time::Duration;

use inosync_tests::{Fixture, has_landlock, poll_until};

use super::{failed_naming, first_target, names};

/// `--temp-dir=/outside`: every file would be refused its temp file; the
/// changes must not be reported synced.
#[test]
fn a_temp_dir_outside_the_target_is_a_failed_sync_not_a_silent_success() {
    if !has_landlock() {
        eprintln!("skipped: this kernel has no Landlock");
        return;
    }
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir(&outside).unwrap();
    let daemon = fx.start_toml(&fx.simple_config(&format!(
        "rsync_args = [\"--temp-dir={}\"]",
        outside.display()
    )));
    fs::write(fx.src.join("a"), "a").unwrap();
    fs::write(fx.src.join("b"), "b").unwrap();
    let mut target = serde_json::Value::Null;
    let named = poll_until(Duration::from_secs(20), || {
        target = first_target(&daemon);
        failed_naming(&target, &["refused by the sandbox", "--temp-dir"])
    });
    assert!(
        named,
        "{target}\nmirror: {:?}\n{}",
        names(&fx.dst),
        daemon.log()
    );
    assert!(
        target["next_retry_in"].as_f64().is_some_and(|r| r > 5.0),
        "retried as a misconfiguration: {target}"
    );
    let out = daemon.ctl(&["wait", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1), "wait said the changes arrived");
    assert!(names(&outside).is_empty(), "{:?}", names(&outside));
    assert!(names(&fx.dst).is_empty(), "{:?}", names(&fx.dst));
}

/// `--backup --backup-dir` outside the target, absolute or relative to it:
/// the failure names the sandbox and the option, is not retried every second,
/// and no `.doomed.XXXXXX` temp file is left in the mirror.
#[test]
fn a_backup_dir_outside_the_target_is_named_and_leaves_no_temp_files() {
    if !has_landlock() {
        eprintln!("skipped: this kernel has no Landlock");
        return;
    }
    for relative in [false, true] {
        let fx = Fixture::new();
        let backups = fx.path("bk");
        let option = if relative {
            "--backup-dir=../bk".to_string()
        } else {
            format!("--backup-dir={}", backups.display())
        };
        fs::write(fx.src.join("doomed"), "old").unwrap();
        let daemon =
            fx.start_toml(&fx.simple_config(&format!("rsync_args = [\"--backup\", \"{option}\"]")));
        // The initial sync has run (or been refused) before the change that
        // needs a backup.
        let first = poll_until(Duration::from_secs(20), || {
            let target = first_target(&daemon);
            !target["last_sync"].is_null() || target["failures"].as_u64().unwrap_or(0) > 0
        });
        assert!(first, "{}", daemon.log());
        fs::write(fx.src.join("doomed"), "new").unwrap();
        let mut target = serde_json::Value::Null;
        let named = poll_until(Duration::from_secs(20), || {
            target = first_target(&daemon);
            failed_naming(&target, &["refused by the sandbox", "--backup-dir"])
        });
        let temp: Vec<String> = names(&fx.dst)
            .into_iter()
            .filter(|n| n.starts_with(".doomed."))
            .collect();
        assert!(
            named,
            "{option}: {target}\ntemp files: {temp:?}\n{}",
            daemon.log()
        );
        assert!(temp.is_empty(), "{option}: temp files left: {temp:?}");
        assert!(
            target["next_retry_in"].as_f64().is_some_and(|r| r > 5.0),
            "{option}: retried as a transient error: {target}"
        );
        assert!(!backups.exists(), "{option}: a backup was made outside");
        assert_eq!(
            fs::read_to_string(fx.src.join("doomed")).unwrap(),
            "new",
            "the source was touched"
        );
    }
}
