//! The control socket: modes, stale files, peer checks, and hostile clients.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use inosync_tests::{Fixture, bin};

#[test]
fn socket_is_private_and_a_stale_one_is_replaced() {
    let fx = Fixture::new();
    let socket = fx.path("run/inosync/ctl.sock");
    fs::create_dir_all(socket.parent().unwrap().parent().unwrap()).unwrap();
    // A stale socket: bound once, nobody listening any more.
    fs::create_dir(socket.parent().unwrap()).unwrap();
    fs::set_permissions(socket.parent().unwrap(), fs::Permissions::from_mode(0o700)).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let log = fs::File::create(fx.path("log")).unwrap();
    let mut child = Command::new(bin("inosyncd"))
        .arg("-s")
        .arg(&socket)
        .arg("--state")
        .arg(fx.state_file())
        .arg(&fx.src)
        .arg(&fx.dst)
        .stderr(log)
        .spawn()
        .unwrap();
    let ready = inosync_tests::poll_until(Duration::from_secs(20), || {
        Command::new(bin("inosyncctl"))
            .arg("-s")
            .arg(&socket)
            .arg("status")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let mode = fs::metadata(&socket).map(|m| m.permissions().mode() & 0o777);
    inosync_tests::processes::kill_with_children(&mut child);
    assert!(ready, "{}", fs::read_to_string(fx.path("log")).unwrap());
    assert_eq!(mode.unwrap(), 0o600);

    // A socket directory the daemon creates itself is 0700.
    let mut fresh = Fixture::new();
    fresh.socket = fresh.path("fresh/dir/ctl.sock");
    let daemon = fresh.start(&[fresh.src.as_os_str(), fresh.dst.as_os_str()]);
    let dir_mode = fs::metadata(fresh.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    daemon.wait_idle();
}

#[test]
fn garbage_and_oversized_frames_close_only_that_connection() {
    let fx = Fixture::new();
    let daemon = fx.start(&[fx.src.as_os_str(), fx.dst.as_os_str()]);
    // Random bytes.
    let mut garbage = UnixStream::connect(&fx.socket).unwrap();
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = garbage.write_all(&noise);
    let _ = garbage.shutdown(std::net::Shutdown::Write);
    // A length prefix announcing ~4 GiB: must not be allocated.
    let mut oversized = UnixStream::connect(&fx.socket).unwrap();
    let _ = oversized.write_all(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]);
    // A client that connects and says nothing.
    let _silent = UnixStream::connect(&fx.socket).unwrap();
    let started = Instant::now();
    let status = daemon.status();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status["pid"], daemon.pid());
    // The hostile connections were closed by the daemon.
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = std::io::Read::read(&mut garbage, &mut buf);
    assert!(
        matches!(&closed, Ok(0))
            || closed.as_ref().is_err_and(|e| !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )),
        "garbage connection still open: {closed:?}"
    );
    let rss_kb: u64 = fs::read_to_string(format!("/proc/{}/status", daemon.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(
        rss_kb < 200 * 1024,
        "peak RSS {rss_kb} kB after an oversized frame"
    );
    daemon.wait_idle();
}

#[test]
fn a_request_whose_deadline_is_past_the_clock_panics_nothing() {
    let fx = Fixture::new();
    let daemon = fx.start(&[fx.src.as_os_str(), fx.dst.as_os_str()]);
    // A request whose deadline is 2^63 seconds away, in a length-prefixed frame:
    // tarpc's own decoder adds it to the clock, which panics.
    let payload = [0u8, 253, 0, 0, 0, 0, 0, 0, 0, 128, 0];
    let mut frame = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    let mut far = UnixStream::connect(&fx.socket).unwrap();
    far.write_all(&frame).unwrap();
    far.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    let closed = std::io::Read::read(&mut far, &mut buf);
    assert!(
        matches!(&closed, Ok(0))
            || closed.as_ref().is_err_and(|e| !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )),
        "connection still open: {closed:?}"
    );
    assert_eq!(daemon.status()["pid"], daemon.pid());
    let log = daemon.log();
    assert!(!log.contains("panicked"), "daemon log:\n{log}");
    daemon.wait_idle();
}

/// A `hello` request (tarpc's envelope in bincode, varint integers) whose
/// deadline is `secs` from now, in a length-prefixed frame.
fn hello_frame(secs: u32) -> Vec<u8> {
    let mut payload = vec![0u8, 252]; // ClientMessage::Request; a u32 follows
    payload.extend_from_slice(&secs.to_le_bytes());
    payload.push(0); // nanos
    payload.extend_from_slice(&[0; 16]); // trace id
    payload.extend_from_slice(&[0, 0]); // span id, sampling decision
    payload.extend_from_slice(&[1, 0]); // request id 1, `hello`
    let mut frame = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    frame
}

#[test]
fn a_request_with_a_deadline_years_away_is_answered() {
    let fx = Fixture::new();
    let daemon = fx.start(&[fx.src.as_os_str(), fx.dst.as_os_str()]);
    // 2^36 ms is as far as tokio's timer queue reaches; then 31 years.
    for secs in [68_719_477, 1_000_000_005] {
        let mut client = UnixStream::connect(&fx.socket).unwrap();
        client.write_all(&hello_frame(secs)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut length = [0u8; 4];
        let answered = std::io::Read::read_exact(&mut client, &mut length);
        assert!(answered.is_ok(), "no answer for a deadline {secs} s away");
        assert!(u32::from_be_bytes(length) > 0);
    }
    let log = daemon.log();
    assert!(!log.contains("panicked"), "daemon log:\n{log}");
    daemon.wait_idle();
}

#[test]
fn a_user_who_is_not_permitted_is_refused() {
    let fx = Fixture::new();
    let daemon = fx.start(&[fx.src.as_os_str(), fx.dst.as_os_str()]);
    // Open the file-system permissions on purpose: the SO_PEERCRED check must
    // refuse `nobody` by itself.
    fs::set_permissions(fx.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&fx.socket, fs::Permissions::from_mode(0o777)).unwrap();
    let ctl = fx.path("inosyncctl");
    fs::copy(bin("inosyncctl"), &ctl).unwrap();
    fs::set_permissions(&ctl, fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&ctl)
        .arg("-s")
        .arg(&fx.socket)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(
        daemon
            .log()
            .contains("refused control connection from uid 65534"),
        "{}",
        daemon.log()
    );
    // Root still gets in.
    daemon.wait_idle();
}

/// A daemon that accepts the connection and does not answer (stopped with
/// SIGSTOP, hung): `inosyncctl` says so and exits 3, instead of blaming the
/// socket's permissions (found by a black-box attack).
#[test]
fn a_daemon_that_does_not_answer_is_named_as_such() {
    let fx = Fixture::new();
    let daemon = fx.start_quick();
    daemon.wait_idle();
    inosync_tests::processes::signal(daemon.pid(), libc::SIGSTOP);
    let out = daemon.ctl(&["status"]);
    inosync_tests::processes::signal(daemon.pid(), libc::SIGCONT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("did not answer") && !stderr.contains("socket_group"),
        "{stderr}"
    );
    daemon.wait_idle();
}

/// A client holding a flood of control connections open (more than the
/// daemon's descriptor limit) while files change: it is the one that waits,
/// not the sync path; every change arrives (found by a black-box attack: under
/// fanotify the changes made meanwhile were dropped, with `wait` saying idle).
#[test]
fn a_flood_of_control_connections_costs_no_change() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("sub")).unwrap();
    let daemon = fx.start_toml_with_nofile(&fx.simple_config(""), 100, 100);
    daemon.wait_idle();
    let mut held = Vec::new();
    for _ in 0..120 {
        match UnixStream::connect(&fx.socket) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    fs::write(fx.src.join("during the flood"), "written while held").unwrap();
    fs::create_dir(fx.src.join("new")).unwrap();
    fs::write(fx.src.join("new/x"), "x").unwrap();
    fs::write(fx.src.join("sub/y"), "y").unwrap();
    // The flood lasts a moment while the daemon reads those events.
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    let arrived = inosync_tests::poll_until(Duration::from_secs(20), || {
        fx.dst.join("during the flood").exists()
            && fx.dst.join("new/x").exists()
            && fx.dst.join("sub/y").exists()
    });
    assert!(arrived, "{}", daemon.log());
    daemon.wait_idle();
    inosync_tests::assert_trees_equal(&fx.src, &fx.dst, &daemon);
}
