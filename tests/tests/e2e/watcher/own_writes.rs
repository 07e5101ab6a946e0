//! The daemon's own writes (its log, its state file) are not changes: fanotify
//! marks whole filesystems, so every line the daemon logs to a file on a marked
//! one is an event, which (at trace level, or as a "cannot be placed" line when
//! the log's directory was deleted by a log rotation) was logged in turn: a
//! loop that filled the disk at full CPU with nothing changing.

use std::fs;
use std::time::Duration;

use inosync_tests::Fixture;

use super::on_fanotify;

#[test]
fn logging_at_trace_level_does_not_feed_on_itself() {
    let fx = Fixture::new();
    fs::write(fx.src.join("f"), "x").unwrap();
    let config = fx.simple_config("");
    let daemon = fx.start_toml_with_env(&config, &[("RUST_LOG", "trace")]);
    daemon.wait_idle();
    if !on_fanotify(&daemon) {
        eprintln!("skipped: inotify watches directories, not the filesystem its log is on");
        return;
    }
    // Whatever else happens on the filesystem is traced (a filesystem mark
    // sees it all); the daemon's own log lines are not events.
    std::thread::sleep(Duration::from_millis(500));
    let own = format!("pid: {},", daemon.pid());
    let log = daemon.log();
    let fed: Vec<&str> = log.lines().filter(|l| l.contains(&own)).take(5).collect();
    assert!(
        fed.is_empty(),
        "the daemon's own writes were events ({} of them), e.g.:\n{}",
        log.lines().filter(|l| l.contains(&own)).count(),
        fed.join("\n")
    );
}
