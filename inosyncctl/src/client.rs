//! The connection to inosyncd: connect, check the protocol version, and turn every
//! failure into one of the exit codes listed in the README ("Operating at runtime").

use std::path::Path;
use std::time::{Duration, Instant};

use inosync_proto::{
    AddWatch, ControlClient, MAX_FRAME_BYTES, PROTOCOL_VERSION, Setting, Status, WatchStatus,
};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tarpc::{client, context, serde_transport};
use tokio::net::UnixStream;

/// How a call failed, by exit code.
#[derive(Debug)]
pub enum CallError {
    /// Exit 3: no daemon answers on the socket.
    Unreachable(String),
    /// Exit 1: the daemon (or the call) refused; the message says why.
    Refused(String),
}

impl From<tarpc::client::RpcError> for CallError {
    fn from(e: tarpc::client::RpcError) -> Self {
        match e {
            tarpc::client::RpcError::DeadlineExceeded => CallError::Unreachable(
                "inosyncd did not answer in time: it is stopped (SIGSTOP), hung or overloaded; \
                 see its log"
                    .to_string(),
            ),
            e => CallError::Refused(format!("the call to inosyncd failed: {e}")),
        }
    }
}

impl From<inosync_proto::ControlError> for CallError {
    fn from(e: inosync_proto::ControlError) -> Self {
        CallError::Refused(e.to_string())
    }
}

/// A checked connection to the daemon.
pub struct Connection {
    client: ControlClient,
}

/// Short calls: the daemon answers from memory.
const SHORT_CALL: Duration = Duration::from_secs(10);

/// Calls that set up watches (add, reload) walk a tree first: a big one takes time.
const LONG_SETUP: Duration = Duration::from_secs(600);

/// The shortest time `verify` is given to answer (see [`Connection::verify`]).
const MIN_VERIFY: Duration = Duration::from_secs(1);

fn context_for(duration: Duration) -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + duration;
    ctx
}

/// Why `path` cannot be a Unix socket's address, if it cannot: the kernel's
/// `sun_path` holds 108 bytes with the closing NUL. A usage error (exit 2),
/// not "not reachable".
pub fn socket_path_too_long(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let most = std::mem::size_of::<libc::sockaddr_un>()
        - std::mem::offset_of!(libc::sockaddr_un, sun_path)
        - 1;
    let len = path.as_os_str().as_bytes().len();
    (len > most).then(|| {
        format!(
            "socket path {} is {len} bytes: a Unix socket's path has at most {most}",
            path.display()
        )
    })
}

/// What is at `path` when it is not a socket (as inosyncd sees it: a
/// symlink is not followed), in words; `None` for a socket or nothing.
fn not_a_socket(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::symlink_metadata(path).ok()?.file_type();
    Some(if kind.is_socket() {
        return None;
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a FIFO"
    } else {
        "a device"
    })
}

impl Connection {
    /// Connects and exchanges protocol versions (a mismatch is a warning).
    pub async fn open(socket: &Path) -> Result<Connection, CallError> {
        let stream = match UnixStream::connect(socket).await {
            Ok(stream) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CallError::Unreachable(format!(
                    "inosyncd is not running: no socket at {}",
                    socket.display()
                )));
            }
            // Something else than a socket: inosyncd refuses to replace it.
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && let Some(what) = not_a_socket(socket) =>
            {
                return Err(CallError::Unreachable(format!(
                    "inosyncd is not running: {} is {what}, not a socket (inosyncd will not \
                     start on it: remove it, or use --socket)",
                    socket.display()
                )));
            }
            // The file is there and nobody listens: a daemon that crashed or was
            // killed (the next start replaces it).
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(CallError::Unreachable(format!(
                    "inosyncd is not running: stale socket at {} (left by a daemon that \
                     stopped without cleaning up; the next start replaces it)",
                    socket.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(CallError::Refused(format!(
                    "permission denied on {}: inosyncctl must run as root, as the daemon's user, \
                     or as a member of its socket_group",
                    socket.display()
                )));
            }
            Err(e) => {
                return Err(CallError::Unreachable(format!(
                    "inosyncd is not reachable at {}: {e}",
                    socket.display()
                )));
            }
        };
        let mut codec = LengthDelimitedCodec::builder();
        codec.max_frame_length(MAX_FRAME_BYTES);
        let transport = serde_transport::new(codec.new_framed(stream), Bincode::default());
        let client = ControlClient::new(client::Config::default(), transport).spawn();
        let info = client
            .hello(context_for(SHORT_CALL))
            .await
            .map_err(|e| match e {
                // Connected, and no answer: the daemon is there but not
                // running its loop; permissions are not the problem.
                tarpc::client::RpcError::DeadlineExceeded => CallError::Unreachable(format!(
                    "inosyncd at {} accepted the connection but did not answer within {} s: \
                     it is stopped (SIGSTOP), hung or overloaded; see its log",
                    socket.display(),
                    SHORT_CALL.as_secs()
                )),
                e => CallError::Refused(format!(
                    "inosyncd at {} refused or dropped the connection ({e}): only root, the \
                     daemon's user and members of its socket_group may use it, and it closes \
                     connections past the ones it serves at once (another client holding \
                     many); its log says which",
                    socket.display()
                )),
            })?;
        if info.protocol_version != PROTOCOL_VERSION {
            eprintln!(
                "inosyncctl: warning: inosyncd {} speaks protocol {}, this inosyncctl {} speaks {}",
                info.daemon_version,
                info.protocol_version,
                env!("CARGO_PKG_VERSION"),
                PROTOCOL_VERSION
            );
        }
        Ok(Connection { client })
    }

    /// The daemon's status.
    pub async fn status(&self) -> Result<Status, CallError> {
        Ok(self.client.status(context_for(SHORT_CALL)).await??)
    }

    /// The Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String, CallError> {
        Ok(self.client.metrics(context_for(SHORT_CALL)).await??)
    }

    /// Waits until idle (one watch, or all); the call's own deadline leaves the
    /// daemon time to answer `false` at `timeout` (tarpc's default 10 s would cut
    /// long waits short).
    pub async fn wait(&self, path: Option<String>, timeout: Duration) -> Result<bool, CallError> {
        let ctx = context_for(timeout + Duration::from_secs(5));
        Ok(self.client.wait(ctx, path, timeout.as_secs_f64()).await??)
    }

    /// Adds a watch.
    pub async fn add(&self, watch: AddWatch) -> Result<WatchStatus, CallError> {
        Ok(self.client.add(context_for(LONG_SETUP), watch).await??)
    }

    /// Removes a watch; `false` when its pending changes were not synced in time.
    pub async fn remove(
        &self,
        path: &str,
        discard: bool,
        timeout: Duration,
    ) -> Result<bool, CallError> {
        let ctx = context_for(timeout + Duration::from_secs(5));
        Ok(self
            .client
            .remove(ctx, path.to_string(), discard, timeout.as_secs_f64())
            .await??)
    }

    /// Shows or sets the bandwidth limit.
    pub async fn speed(
        &self,
        kbps: Option<u32>,
        reset: bool,
        path: Option<String>,
    ) -> Result<Setting, CallError> {
        Ok(self
            .client
            .speed(context_for(SHORT_CALL), kbps, reset, path)
            .await??)
    }

    /// Shows or sets the event delay.
    pub async fn delay(
        &self,
        seconds: Option<f64>,
        reset: bool,
        path: Option<String>,
    ) -> Result<Setting, CallError> {
        Ok(self
            .client
            .delay(context_for(SHORT_CALL), seconds, reset, path)
            .await??)
    }

    /// Schedules a full sync.
    pub async fn sync(&self, path: Option<String>, force: bool) -> Result<(), CallError> {
        Ok(self
            .client
            .sync(context_for(SHORT_CALL), path, force)
            .await??)
    }

    /// Pauses (`true`) or resumes syncs.
    pub async fn pause(&self, path: Option<String>, paused: bool) -> Result<(), CallError> {
        let ctx = context_for(SHORT_CALL);
        if paused {
            self.client.pause(ctx, path).await??;
        } else {
            self.client.resume(ctx, path).await??;
        }
        Ok(())
    }

    /// Re-reads the config; returns the daemon's summary.
    pub async fn reload(&self) -> Result<String, CallError> {
        Ok(self.client.reload(context_for(LONG_SETUP)).await??)
    }

    /// Compares targets with their source; may take as long as a full sync.
    pub async fn verify(
        &self,
        path: Option<String>,
        repair: bool,
        checksum: bool,
        timeout: Duration,
    ) -> Result<inosync_proto::VerifyReport, CallError> {
        // The daemon answers a moment before the deadline with what it has
        // compared by then: a timeout shorter than that moment (`--timeout 0`)
        // could never be answered, and would read as a hung daemon.
        let ctx = context_for(timeout.max(MIN_VERIFY));
        Ok(self.client.verify(ctx, path, repair, checksum).await??)
    }
}
