//! Default locations of the control socket, as SPEC §1 gives them: system paths for
//! root, the XDG runtime directory for everyone else.

use std::path::PathBuf;

/// `/run/inosync/inosyncd.sock` as root, `$XDG_RUNTIME_DIR/inosync/inosyncd.sock`
/// otherwise (falling back to `/tmp/inosync-UID/` when that is unset).
pub fn default_socket() -> PathBuf {
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    if uid == 0 {
        return PathBuf::from("/run/inosync/inosyncd.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("inosync/inosyncd.sock"),
        _ => PathBuf::from(format!("/tmp/inosync-{uid}/inosyncd.sock")),
    }
}
