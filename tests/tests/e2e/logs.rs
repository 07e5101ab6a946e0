//! Logs an administrator can live with: one line per sync (what, how much, how
//! long, exit status), log_file reopened on SIGUSR1 for logrotate, and plain lines
//! without timestamps or colours when journald is on stderr.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use inosync_tests::{Fixture, poll_until};

#[test]
fn one_line_per_sync_and_sigusr1_reopens_the_log_file() {
    let fx = Fixture::new();
    let log = fx.path("inosync.log");
    let daemon = fx.start_toml(&fx.simple_config(&format!("log_file = \"{}\"", log.display())));
    daemon.wait_idle();
    fs::write(fx.src.join("first"), "12345").unwrap();
    daemon.wait_idle();
    let text = fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .rfind(|l| l.contains("synced in"))
        .expect("a sync line");
    assert!(
        line.contains(&fx.src.display().to_string())
            && line.contains(&fx.dst.display().to_string()),
        "{line}"
    );
    assert!(
        line.contains("1 path(s)") && line.contains("bytes sent") && line.contains("exit 0"),
        "{line}"
    );
    assert!(!text.contains('\u{1b}'), "colour codes in the log file");

    // logrotate moves the file away, then sends SIGUSR1.
    let rotated = fx.path("inosync.log.1");
    fs::rename(&log, &rotated).unwrap();
    // SAFETY: plain kill(2) on the daemon under test.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGUSR1) };
    assert!(
        poll_until(Duration::from_secs(10), || log.exists()),
        "log file not reopened"
    );
    fs::write(fx.src.join("second"), "x").unwrap();
    daemon.wait_idle();
    let new = fs::read_to_string(&log).unwrap();
    assert!(
        new.contains("reopened") && new.contains("synced in"),
        "{new}"
    );
    assert!(!fs::read_to_string(&rotated).unwrap().contains("reopened"));
}

#[test]
fn under_journald_lines_carry_no_timestamp_or_colour() {
    let fx = Fixture::new();
    let out = fs::File::create(fx.path("stderr")).unwrap();
    let mut child = fx
        .quick_start()
        .env("JOURNAL_STREAM", "8:12345")
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let ready = poll_until(Duration::from_secs(20), || {
        fs::read_to_string(fx.path("stderr")).is_ok_and(|t| t.contains("synced in"))
    });
    inosync_tests::processes::kill_with_children(&mut child);
    let text = fs::read_to_string(fx.path("stderr")).unwrap();
    assert!(ready, "{text}");
    for line in text.lines() {
        assert!(
            line.trim_start().starts_with("INFO") || line.trim_start().starts_with("WARN"),
            "{line}"
        );
        assert!(!line.contains('\u{1b}'), "{line}");
    }
}

/// rsync's output is read in the C locale whatever the daemon's: under a German
/// locale rsync writes "1.234.567 bytes", which read as "? bytes sent" before.
#[test]
fn rsync_output_is_read_in_the_c_locale() {
    let fx = Fixture::new();
    let locales = fx.path("locales");
    fs::create_dir(&locales).unwrap();
    let built = std::process::Command::new("localedef")
        .args(["-i", "de_DE", "-f", "UTF-8"])
        .arg(locales.join("de_DE.UTF-8"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        built,
        "localedef de_DE.UTF-8 (glibc's locale sources) is needed"
    );
    // The locale really is German: rsync groups thousands with dots.
    fs::write(fx.src.join("big"), vec![b'x'; 200_000]).unwrap();
    let probe = std::process::Command::new("rsync")
        .args(["-a", "--stats"])
        .arg(fx.src.join("big"))
        .arg(fx.path("probe"))
        .env("LOCPATH", &locales)
        .env("LC_ALL", "de_DE.UTF-8")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&probe.stdout).contains("200.000"),
        "{}",
        String::from_utf8_lossy(&probe.stdout)
    );
    let out = fs::File::create(fx.path("stderr")).unwrap();
    let mut child = fx
        .quick_start()
        .env("LOCPATH", &locales)
        .env("LC_ALL", "de_DE.UTF-8")
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let synced = poll_until(Duration::from_secs(20), || {
        fs::read_to_string(fx.path("stderr")).is_ok_and(|t| t.contains("synced in"))
    });
    inosync_tests::processes::kill_with_children(&mut child);
    let text = fs::read_to_string(fx.path("stderr")).unwrap();
    assert!(synced, "{text}");
    let line = text.lines().find(|l| l.contains("synced in")).unwrap();
    assert!(!line.contains("? bytes"), "{line}");
    assert!(line.contains(" bytes sent"), "{line}");
}
