//! Issue 26, item 3: a target verify cannot reach is named with the cause
//! `status` gives for it, and a target that never answers costs only its own
//! share of `--timeout`: the other pairs' results are reported.

use std::fs;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use inosync_tests::{Fixture, poll_until};

use inosync_tests::remote::free_port;

/// Three targets: a directory, a port that accepts and never speaks (a hung
/// rsync daemon), a closed port. `verify --timeout 6` answers for each.
#[test]
fn each_pair_gets_its_own_bounded_time_and_its_own_cause() {
    let fx = Fixture::new();
    fs::write(fx.src.join("file"), "file").unwrap();
    // Accepts connections (the kernel completes them) and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_target = format!("rsync://127.0.0.1:{}/m/", hung.local_addr().unwrap().port());
    let closed_target = format!("rsync://127.0.0.1:{}/m/", free_port());
    let config = format!(
        "delay = 0\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\n\
         targets = [\"{}/\", \"{hung_target}\", \"{closed_target}\"]\n",
        fx.src.display(),
        fx.dst.display()
    );
    let daemon = fx.start_toml(&config);
    let synced = poll_until(Duration::from_secs(20), || {
        let status = daemon.status();
        let targets = &status["watches"][0]["targets"];
        targets[0]["state"] == "idle" && targets[2]["failures"].as_u64() >= Some(1)
    });
    assert!(synced, "{}", daemon.status());
    let status_error = daemon.status()["watches"][0]["targets"][2]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        status_error.contains("Connection refused (111)"),
        "{status_error}"
    );

    let started = Instant::now();
    let out = daemon.ctl(&["verify", "--timeout", "6"]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{stderr}\n{}",
        daemon.log()
    );
    assert!(took < Duration::from_secs(7), "took {took:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    let src = fx.src.display();
    assert_eq!(lines.len(), 3, "{stdout}{stderr}");
    assert_eq!(lines[0], format!("{src} -> {}/: equal", fx.dst.display()));
    let hung_line = format!("{src} -> {hung_target}: not compared: no answer within ");
    assert!(lines[1].starts_with(&hung_line), "{stdout}");
    assert_eq!(
        lines[2],
        format!("{src} -> {closed_target}: not compared: {status_error}"),
        "{stdout}"
    );
    drop(hung);
}
