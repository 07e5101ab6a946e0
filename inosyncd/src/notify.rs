//! systemd readiness (`Type=notify`): tell the service manager when the watches
//! are set up and the socket listens, and when we start stopping. Without
//! `NOTIFY_SOCKET` (not started by systemd) this does nothing.

use std::os::unix::net::UnixDatagram;

/// Sends one sd_notify message, e.g. `READY=1`. Errors are logged, never fatal:
/// the daemon works the same without a service manager.
pub fn notify(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // An abstract socket: a leading NUL instead of the '@'.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(message.as_bytes(), &address)
            }
            None => socket.send_to(message.as_bytes(), &path),
        }
    });
    if let Err(e) = result {
        tracing::warn!("cannot notify the service manager ({message}): {e}");
    }
}
