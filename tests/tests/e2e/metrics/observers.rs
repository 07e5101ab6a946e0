//! Issue 26, item 6: observers never starve the sync path. 2,000 idle (or
//! slow) connections to `metrics_listen`, with the daemon's descriptor limit
//! at 1,024 (soft and hard, as `LimitNOFILE=1024` would), leave a one-file
//! change as quick as before (within 2x) and a real scrape still answered.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use inosync_tests::{Daemon, Fixture, poll_until};

use super::{free_port, http_get};

/// The median time from writing one new file to seeing it on the target.
fn one_file_latency(daemon: &Daemon, fx: &Fixture, round: &str) -> Duration {
    let mut times = Vec::new();
    for i in 0..5 {
        let name = format!("{round}-{i}");
        let started = Instant::now();
        fs::write(fx.src.join(&name), &name).unwrap();
        let arrived = poll_until(Duration::from_secs(20), || fx.dst.join(&name).exists());
        assert!(arrived, "{name} never arrived:\n{}", daemon.log());
        times.push(started.elapsed());
    }
    times.sort();
    times[2]
}

#[test]
fn idle_metrics_connections_do_not_slow_the_sync_path() {
    let fx = Fixture::new();
    let port = free_port();
    let daemon = fx.start_toml_with_nofile(
        &fx.simple_config(&format!("metrics_listen = \"127.0.0.1:{port}\"")),
        1024,
        1024,
    );
    daemon.wait_idle();
    let before = one_file_latency(&daemon, &fx, "before");
    // Half say nothing at all, half start a request and never finish it.
    let mut idle = Vec::new();
    let mut failed_in_a_row = 0;
    let addr = ([127, 0, 0, 1], port).into();
    // A burst of connects may see a SYN dropped (retransmitted after 1 s); a
    // daemon that stops accepting leaves the kernel's backlog full and every
    // connect failing.
    while idle.len() < 2000 && failed_in_a_row < 3 {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
            failed_in_a_row += 1;
            continue;
        };
        failed_in_a_row = 0;
        if idle.len() % 2 == 1 {
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
        }
        idle.push(stream);
    }
    let after = one_file_latency(&daemon, &fx, "after");
    assert_eq!(idle.len(), 2000, "connections not accepted");
    eprintln!("one-file latency: {before:?} before, {after:?} with 2,000 idle connections");
    // 2x, over a 50 ms floor for scheduling noise on a shared machine.
    assert!(
        after <= before * 2 + Duration::from_millis(50),
        "{before:?} before, {after:?} after\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(!log.contains("Too many open files"), "{log}");
    // A real scrape gets through while the idle ones are still open: once
    // those holding the endpoint's places have timed out (5 s without a
    // request), the next is served.
    let started = Instant::now();
    let answered = poll_until(Duration::from_secs(15), || {
        http_get(port, "/metrics").is_some_and(|body| body.contains("inosync_syncs_total"))
    });
    assert!(answered, "no scrape answered in 15 s:\n{}", daemon.log());
    eprintln!("a scrape answered after {:?}", started.elapsed());
    drop(idle);
}

/// The soft descriptor limit is raised to the hard one at start.
#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
    let fx = Fixture::new();
    let daemon = fx.start_toml_with_nofile(&fx.simple_config(""), 1024, 4096);
    let limits = fs::read_to_string(format!("/proc/{}/limits", daemon.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_default();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
    assert!(
        daemon
            .log()
            .contains("descriptor limit raised from 1024 to 4096"),
        "{}",
        daemon.log()
    );
}
