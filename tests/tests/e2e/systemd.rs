//! The shipped systemd units pass `systemd-analyze verify` without a warning, and
//! the daemon tells a service manager when it is ready and when it stops.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use inosync_tests::{Fixture, bin};

fn unit(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib/systemd")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn units_verify_cleanly() {
    let fx = Fixture::new();
    for name in ["inosyncd.service", "inosyncd-user.service"] {
        // verify checks that ExecStart exists: point it at the binary just built.
        let text = unit(name).replace("/usr/bin/inosyncd", &bin("inosyncd").display().to_string());
        let path = fx.path(name);
        fs::write(&path, text).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .expect("systemd-analyze (package systemd) is installed");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{name}: {stderr}"
        );
    }
    assert!(unit("inosyncd.service").contains("Type=notify"));
    assert!(unit("inosyncd.service").contains("ExecReload=/bin/kill -HUP $MAINPID"));
}

#[test]
fn ready_and_stopping_reach_the_service_manager() {
    let fx = Fixture::new();
    let notify_path = fx.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = fx
        .quick_start()
        .env("NOTIFY_SOCKET", &notify_path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 within 20 s");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    // Ready means ready: the control socket answers already.
    let answered = Command::new(bin("inosyncctl"))
        .arg("-s")
        .arg(&fx.socket)
        .arg("status")
        .output()
        .unwrap()
        .status
        .success();
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let n = notify.recv(&mut buf).expect("STOPPING=1 after SIGTERM");
    let stopping = String::from_utf8_lossy(&buf[..n]).into_owned();
    let status = child.wait().unwrap();
    assert!(message.contains("READY=1"), "{message}");
    assert!(
        message.contains(&format!("MAINPID={}", child.id())),
        "{message}"
    );
    assert!(answered, "READY=1 came before the socket answered");
    assert_eq!(stopping, "STOPPING=1");
    assert!(status.success());
}
