//! Serves the tarpc control service on the socket. Handlers own nothing: each sends
//! a command with a reply channel to the engine and relays the answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures::StreamExt;
use inosync_proto::{
    AddWatch, Control, ControlError, MAX_FRAME_BYTES, PROTOCOL_VERSION, ServerInfo, Setting,
    Status, VerifyReport, WatchStatus,
};
use tarpc::context::Context;
use tarpc::serde_transport;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::control_codec::ControlCodec;
use crate::engine::{Command, Reply};
use crate::socket::Access;

/// The server side of one connection: a handle to the engine, and who is asking.
#[derive(Clone)]
struct Handler {
    engine: mpsc::Sender<Command>,
    /// The peer's uid (SO_PEERCRED).
    uid: u32,
    /// `Ok` for root or the daemon's user; for a member of `socket_group`, `Err`
    /// with the daemon's uid for the refusal message.
    privileged: Result<(), u32>,
}

impl Handler {
    /// `add`, `remove`, `reload` and forced syncs choose what is read and where it
    /// is written: a member of `socket_group` may read and steer, not that.
    fn require_privilege(&self, what: &str) -> Result<(), ControlError> {
        self.privileged.map_err(|own_uid| {
            tracing::warn!(
                "refused `{what}` from uid {}: not root or the daemon's user",
                self.uid
            );
            ControlError::Refused(format!(
                "`{what}` needs root or the daemon's user (uid {own_uid}): members of \
                 socket_group may read and steer (status, wait, speed, delay, pause, resume, \
                 sync), not choose what is read or where it is written"
            ))
        })
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ControlError> {
        let (tx, rx) = oneshot::channel();
        self.engine
            .send(make(tx))
            .await
            .map_err(|_| ControlError::ShuttingDown)?;
        rx.await.map_err(|_| ControlError::ShuttingDown)
    }

    /// Like `ask`, for commands whose answer may be a refusal in words.
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ControlError> {
        self.ask(make)
            .await?
            .map_err(|refusal| ControlError::Refused(refusal.to_string()))
    }
    /// [`Handler::call`] for a command that changes something, logged once
    /// when the engine has answered: who asked for what, and the refusal if
    /// it was refused (not a line before and another after).
    async fn steer<T>(
        &self,
        what: String,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, ControlError> {
        let result = self.call(make).await;
        match &result {
            Ok(_) => tracing::info!("{what} requested by uid {}", self.uid),
            Err(ControlError::Refused(why)) => {
                tracing::info!("{what} requested by uid {}: refused: {why}", self.uid)
            }
            Err(ControlError::ShuttingDown) => {}
        }
        result
    }
}

/// When a long call must answer: at the time asked for, but before the client's
/// own deadline, so it gets an answer rather than a transport error.
fn deadline_within(context: &Context, timeout_secs: f64) -> Result<Instant, ControlError> {
    if !(timeout_secs.is_finite() && timeout_secs >= 0.0) {
        return Err(ControlError::Refused(format!(
            "timeout {timeout_secs} is not a number of seconds >= 0"
        )));
    }
    let requested = Instant::now() + Duration::from_secs_f64(timeout_secs.min(1e7));
    let client_deadline = Instant::now()
        + context
            .deadline
            .saturating_duration_since(std::time::Instant::now())
            .saturating_sub(Duration::from_millis(200));
    Ok(requested.min(client_deadline))
}

/// What a runtime change applies to, for the log.
fn scope(path: &Option<String>) -> String {
    path.as_deref()
        .map_or("every watch".to_string(), |p| format!("watch {p}"))
}

fn check_path(path: &str) -> Result<(), ControlError> {
    if path.is_empty() || !path.starts_with('/') || path.contains('\0') {
        return Err(ControlError::Refused(format!(
            "{path:?} is not an absolute path"
        )));
    }
    Ok(())
}

impl Control for Handler {
    async fn hello(self, _: Context) -> ServerInfo {
        ServerInfo {
            protocol_version: PROTOCOL_VERSION,
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    async fn status(self, _: Context) -> Result<Status, ControlError> {
        self.ask(Command::Status).await
    }

    async fn metrics(self, _: Context) -> Result<String, ControlError> {
        self.ask(Command::Metrics).await
    }

    async fn wait(
        self,
        context: Context,
        path: Option<String>,
        timeout_secs: f64,
    ) -> Result<bool, ControlError> {
        let deadline = deadline_within(&context, timeout_secs)?;
        self.call(|reply| Command::Wait {
            path,
            deadline,
            reply,
        })
        .await
    }

    async fn add(self, _: Context, watch: AddWatch) -> Result<WatchStatus, ControlError> {
        self.require_privilege("add")?;
        check_path(&watch.path)?;
        self.steer(format!("add {}", watch.path), |reply| Command::Add {
            watch,
            reply,
        })
        .await
    }

    async fn remove(
        self,
        context: Context,
        path: String,
        discard: bool,
        timeout_secs: f64,
    ) -> Result<bool, ControlError> {
        self.require_privilege("remove")?;
        check_path(&path)?;
        tracing::info!("remove {path} requested by uid {}", self.uid);
        let deadline = deadline_within(&context, timeout_secs)?;
        self.call(|reply| Command::Remove {
            path,
            discard,
            deadline,
            reply,
        })
        .await
    }

    async fn speed(
        self,
        _: Context,
        kbps: Option<u32>,
        reset: bool,
        path: Option<String>,
    ) -> Result<Setting, ControlError> {
        let change = match (kbps, reset) {
            (_, true) => Some("reset".to_string()),
            (Some(kbps), false) => Some(format!("{kbps} KB/s")),
            (None, false) => None,
        };
        let Some(change) = change else {
            return self
                .call(|reply| Command::Speed {
                    kbps,
                    reset,
                    path,
                    reply,
                })
                .await;
        };
        self.steer(format!("speed {change} ({})", scope(&path)), |reply| {
            Command::Speed {
                kbps,
                reset,
                path,
                reply,
            }
        })
        .await
    }

    async fn delay(
        self,
        _: Context,
        seconds: Option<f64>,
        reset: bool,
        path: Option<String>,
    ) -> Result<Setting, ControlError> {
        let change = match (seconds, reset) {
            (_, true) => Some("reset".to_string()),
            (Some(seconds), false) => Some(format!("{seconds} s")),
            (None, false) => None,
        };
        let Some(change) = change else {
            return self
                .call(|reply| Command::Delay {
                    seconds,
                    reset,
                    path,
                    reply,
                })
                .await;
        };
        self.steer(format!("delay {change} ({})", scope(&path)), |reply| {
            Command::Delay {
                seconds,
                reset,
                path,
                reply,
            }
        })
        .await
    }

    async fn sync(self, _: Context, path: Option<String>, force: bool) -> Result<(), ControlError> {
        let what = if force {
            self.require_privilege("sync --force")?;
            format!("sync --force ({})", scope(&path))
        } else {
            format!("sync ({})", scope(&path))
        };
        self.steer(what, |reply| Command::Sync { path, force, reply })
            .await
    }

    async fn pause(self, _: Context, path: Option<String>) -> Result<(), ControlError> {
        self.steer(format!("pause ({})", scope(&path)), |reply| {
            Command::Pause {
                path,
                paused: true,
                reply,
            }
        })
        .await
    }

    async fn resume(self, _: Context, path: Option<String>) -> Result<(), ControlError> {
        self.steer(format!("resume ({})", scope(&path)), |reply| {
            Command::Pause {
                path,
                paused: false,
                reply,
            }
        })
        .await
    }

    async fn verify(
        self,
        context: Context,
        path: Option<String>,
        repair: bool,
        checksum: bool,
    ) -> Result<VerifyReport, ControlError> {
        if repair {
            self.require_privilege("verify --repair")?;
            tracing::info!(
                "verify --repair ({}) requested by uid {}",
                scope(&path),
                self.uid
            );
        }
        // Each pair gets its share of the client's time, so that one that
        // never answers cannot take the others' results with it.
        let deadline = deadline_within(&context, 1e7)?;
        self.call(|reply| Command::Verify {
            path,
            repair,
            checksum,
            deadline,
            reply,
        })
        .await
    }

    async fn reload(self, _: Context) -> Result<String, ControlError> {
        self.require_privilege("reload")?;
        self.steer("reload".to_string(), |reply| Command::Reload {
            reply: Some(reply),
        })
        .await
    }
}

/// The most control connections served at once (see [`connection_places`]).
const MAX_CONNECTIONS: usize = 64;

/// Requests in flight on one connection, at most (see `serve`).
const MAX_REQUESTS_PER_CONNECTION: usize = 4;

/// How many control connections are served at once: a quarter of the
/// descriptor limit, at most [`MAX_CONNECTIONS`]. A client that holds more
/// (a runaway script, a flood) finds the next ones closed at once, instead of
/// the daemon's descriptors spent: the sync path needs them (fanotify's
/// look-ups, rsync's pipes, the sandbox). Found by a black-box attack: 120
/// held connections under a limit of 100 lost the changes made meanwhile.
fn connection_places() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given and keeps no pointer.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    usize::try_from(soft / 4)
        .unwrap_or(MAX_CONNECTIONS)
        .clamp(4, MAX_CONNECTIONS)
}

/// Accepts connections until the listener fails; each connection is checked with
/// SO_PEERCRED and served on its own task, so a bad client harms only itself.
/// At most [`connection_places`] are served at once; more are closed as soon
/// as accepted (the backlog never fills).
pub async fn serve(listener: UnixListener, access: Access, engine: mpsc::Sender<Command>) {
    let mut codec = LengthDelimitedCodec::builder();
    codec.max_frame_length(MAX_FRAME_BYTES);
    let served_at_once = connection_places();
    let places = Arc::new(Semaphore::new(served_at_once));
    let mut closed: u64 = 0;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            closed += 1;
            if closed.is_power_of_two() {
                tracing::warn!(
                    "control socket: {served_at_once} connections open; {closed} more closed \
                     at once so far (a client holding many: see who with `ss -xp`)"
                );
            }
            drop(stream);
            continue;
        };
        let cred = match stream.peer_cred() {
            Ok(cred) if access.allows(&cred) => cred,
            Ok(cred) => {
                tracing::warn!(
                    "refused control connection from uid {} (pid {:?}): not root, not the daemon's user, not in socket_group",
                    cred.uid(),
                    cred.pid()
                );
                continue;
            }
            Err(e) => {
                tracing::warn!("refused control connection: cannot read peer credentials: {e}");
                continue;
            }
        };
        let transport = serde_transport::new(codec.new_framed(stream), ControlCodec::default());
        let handler = Handler {
            engine: engine.clone(),
            uid: cred.uid(),
            privileged: if access.privileged(&cred) {
                Ok(())
            } else {
                Err(access.own_uid())
            },
        };
        tokio::spawn(async move {
            // Requests in flight on one connection, at most: inosyncctl sends
            // one at a time; more (a pipelining client) are answered "throttled".
            BaseChannel::with_defaults(transport)
                .max_concurrent_requests(MAX_REQUESTS_PER_CONNECTION)
                .execute(handler.serve())
                .for_each(|response| async move {
                    tokio::spawn(response);
                })
                .await;
            drop(place);
        });
    }
}
