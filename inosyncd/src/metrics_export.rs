//! Where the metrics go besides `inosyncctl metrics`: an HTTP endpoint for
//! Prometheus to scrape (`metrics_listen`, served by hyper) and a file rewritten
//! atomically for node_exporter's textfile collector (`metrics_file`). Both ask
//! the engine for the text, as the control socket does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::engine::Command;

/// How often `metrics_file` is rewritten (node_exporter reads it at its own pace).
const FILE_PERIOD: Duration = Duration::from_secs(15);

/// Prometheus's text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `metrics_listen` at start-up, so a taken or forbidden address fails the
/// start with the address named.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics_listen = \"{addr}\": cannot listen"))
}

async fn ask(engine: &mpsc::Sender<Command>) -> Option<String> {
    let (reply, answer) = oneshot::channel();
    engine.send(Command::Metrics(reply)).await.ok()?;
    answer.await.ok()
}

async fn respond(
    request: Request<Incoming>,
    engine: mpsc::Sender<Command>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return Ok(reply(StatusCode::NOT_FOUND, "see /metrics\n".into()));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into()));
    }
    Ok(match ask(&engine).await {
        Some(text) => {
            let mut response = reply(StatusCode::OK, text);
            if let Ok(value) = CONTENT_TYPE.parse() {
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, value);
            }
            response
        }
        None => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "inosyncd is stopping\n".into(),
        ),
    })
}

/// Connections served at once. A scraper needs one; more are closed as soon
/// as they are accepted, so that observers never hold more than this many of
/// the descriptors the sync path needs (inotify, fanotify, rsync's pipes).
const MAX_CONNECTIONS: usize = 16;

/// How long a client may take to send its request headers (idle or slow
/// clients free their place).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a connection lives, kept alive or not: a scraper reconnects.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Serves `GET /metrics` until the daemon stops; one task per connection, at
/// most [`MAX_CONNECTIONS`] of them, each bounded in time; a connection that
/// misbehaves ends alone. The backlog is always drained (a connection over
/// the cap is closed at once), so connecting clients never pile up.
pub async fn serve(listener: TcpListener, engine: mpsc::Sender<Command>) {
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS: wait for descriptors to come back.
                tracing::warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::info!(
                    "metrics endpoint: {MAX_CONNECTIONS} connections open; {refused} closed at \
                     once so far (the latest from {peer})"
                );
            }
            drop(stream);
            continue;
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(request, engine.clone()));
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let served = http.serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_LIFETIME, served).await {
                Ok(Err(e)) => tracing::debug!("metrics endpoint: connection from {peer}: {e}"),
                Err(_) => {
                    tracing::debug!("metrics endpoint: connection from {peer}: lived long enough")
                }
                Ok(Ok(())) => {}
            }
            drop(place);
        });
    }
}

/// Rewrites `metrics_file` every 15 s (0644: node_exporter runs as its own user),
/// never through a symlink.
pub async fn write_file(path: PathBuf, engine: mpsc::Sender<Command>) {
    let mut reported = false;
    loop {
        let Some(text) = ask(&engine).await else {
            return;
        };
        match crate::own_files::write_atomically_with_mode(&path, text.as_bytes(), 0o644) {
            Ok(()) => reported = false,
            Err(e) if !reported => {
                tracing::error!("metrics_file {}: cannot write: {e}", path.display());
                reported = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(FILE_PERIOD).await;
    }
}
