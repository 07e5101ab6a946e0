//! Metrics, checked with the real tools: `promtool check metrics` on what
//! `inosyncctl metrics` prints, the real Prometheus server scraping
//! `metrics_listen` and answering a query through its HTTP API, and the file
//! node_exporter's textfile collector reads.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use inosync_tests::{Fixture, poll_until};

mod lag;
mod observers;

pub(crate) use inosync_tests::remote::free_port;

/// `GET path` on loopback; the body, or `None` if nothing answered.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// The value of the first sample of `name` whose labels contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .find(|l| l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What an administrator alerts on is there and right: syncs by result, bytes,
/// replication lag while a change waits, and the text passes promtool's lint.
#[test]
fn metrics_count_syncs_show_the_lag_and_pass_promtool() {
    let fx = Fixture::new();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    fs::write(fx.src.join("a"), "one").unwrap();
    daemon.wait_idle();
    let text = daemon.ctl_ok(&["metrics"]);
    let watch = format!("watch=\"{}\"", fx.src.display());
    let synced = sample(&text, "inosync_syncs_total", "result=\"synced\"").unwrap_or(0.0);
    assert!(synced >= 2.0, "initial sync and one batch: {text}");
    assert!(
        sample(&text, "inosync_bytes_sent_total", &watch).is_some_and(|b| b > 0.0),
        "{text}"
    );
    // One, or two under inotify when the tree changed while its watches were
    // being set up beside the first.
    assert!(
        sample(&text, "inosync_full_syncs_total", "reason=\"initial\"").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "inosync_oldest_pending_seconds", &watch),
        Some(0.0)
    );
    assert!(text.contains("inosync_build_info{version="), "{text}");
    promtool_check(&text);

    // A change held by a pause: the lag grows while it waits.
    daemon.ctl_ok(&["pause"]);
    fs::write(fx.src.join("b"), "two").unwrap();
    let lagging = poll_until(Duration::from_secs(10), || {
        let text = daemon.ctl_ok(&["metrics"]);
        sample(&text, "inosync_oldest_pending_seconds", &watch).is_some_and(|s| s >= 1.0)
            && sample(&text, "inosync_pending_paths", &watch) == Some(1.0)
    });
    assert!(lagging, "{}", daemon.ctl_ok(&["metrics"]));
    daemon.ctl_ok(&["resume"]);
    daemon.wait_idle();
    let text = daemon.ctl_ok(&["metrics"]);
    assert_eq!(
        sample(&text, "inosync_oldest_pending_seconds", &watch),
        Some(0.0)
    );
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real Prometheus server scrapes `metrics_listen` and finds
/// `inosync_syncs_total` through its query API.
#[test]
fn prometheus_scrapes_metrics_listen() {
    let fx = Fixture::new();
    let metrics_port = free_port();
    let daemon =
        fx.start_toml(&fx.simple_config(&format!("metrics_listen = \"127.0.0.1:{metrics_port}\"")));
    daemon.wait_idle();
    let body = http_get(metrics_port, "/metrics").expect("metrics_listen answers");
    assert!(body.contains("inosync_syncs_total"), "{body}");
    assert!(
        http_get(metrics_port, "/other").is_some_and(|b| b.contains("see /metrics")),
        "other paths are 404"
    );

    let web_port = free_port();
    let config = fx.path("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: inosync\n    \
             static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let log = fs::File::create(fx.path("prometheus.log")).unwrap();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", fx.path("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package prometheus; .ci/run installs it)"),
    );
    let mut last = String::new();
    let found = poll_until(Duration::from_secs(60), || {
        last = http_get(web_port, "/api/v1/query?query=inosync_syncs_total").unwrap_or_default();
        last.contains("\"status\":\"success\"") && last.contains("\"result\":[{")
    });
    assert!(
        found,
        "last answer: {last}\n--- prometheus log ---\n{}",
        fs::read_to_string(fx.path("prometheus.log")).unwrap_or_default()
    );
    assert!(last.contains(&fx.src.display().to_string()), "{last}");
}

/// `metrics_file` is written for node_exporter's textfile collector: readable by
/// its user, in the text format, passing promtool.
#[test]
fn metrics_file_is_written_for_the_textfile_collector() {
    let fx = Fixture::new();
    let file = fx.path("inosync.prom");
    let daemon =
        fx.start_toml(&fx.simple_config(&format!("metrics_file = \"{}\"", file.display())));
    daemon.wait_idle();
    let written = poll_until(Duration::from_secs(10), || {
        fs::read_to_string(&file).is_ok_and(|t| t.contains("inosync_build_info"))
    });
    assert!(written, "{}", daemon.log());
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    promtool_check(&fs::read_to_string(&file).unwrap());
}
