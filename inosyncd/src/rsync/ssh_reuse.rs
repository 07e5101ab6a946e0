//! ssh connection reuse for `host:` targets: every sync to the same host shares one
//! ssh connection (ControlMaster) kept open for a minute after the last use, so a
//! one-file sync does not pay for a TCP connection, a key exchange and a login.

use std::path::Path;

use crate::config::checks::{is_daemon_target, is_local_target};

/// How long an idle master connection stays open.
const PERSIST_SECONDS: u32 = 60;

/// Whether rsync reaches `target` through a remote shell (`host:path`), rather
/// than a local directory or an rsync daemon (`rsync://`, `host::module`).
pub fn uses_remote_shell(target: &str) -> bool {
    !is_local_target(target) && !is_daemon_target(target)
}

/// The `--rsh=` argument that adds connection sharing to the remote shell rsync
/// would use: the user's own `--rsh`/`-e` (last one wins), else `RSYNC_RSH`, else
/// `ssh`. `None` when that shell is not ssh: we do not guess at other shells.
pub fn rsh_with_reuse(extra: &[String], control_dir: &Path) -> Option<String> {
    let rsh = remote_shell(extra);
    let program = rsh.split_whitespace().next()?;
    if Path::new(program).file_name()? != "ssh" || rsh.contains("ControlPath") {
        return None;
    }
    Some(format!(
        "--rsh={rsh} -o ControlMaster=auto -o ControlPersist={PERSIST_SECONDS} -o ControlPath={}/ssh-%C",
        control_dir.display()
    ))
}

/// The remote shell command rsync would use: the user's own `--rsh`/`-e` (last
/// one wins), else `RSYNC_RSH`, else `ssh`.
pub fn remote_shell(extra: &[String]) -> String {
    let mut rsh = std::env::var("RSYNC_RSH")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let mut args = extra.iter();
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--rsh=") {
            rsh = Some(value.to_string());
        } else if arg == "-e" || arg == "--rsh" {
            rsh = args.next().cloned();
        } else if let Some(value) = arg
            .strip_prefix("-e")
            .filter(|v| !v.is_empty() && !arg.starts_with("--"))
        {
            rsh = Some(value.to_string());
        }
    }
    rsh.unwrap_or_else(|| "ssh".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_remote_shell_targets_reuse_connections() {
        assert!(uses_remote_shell("backup@m1:/srv/"));
        assert!(uses_remote_shell("m1:"));
        assert!(!uses_remote_shell("rsync://m1/module/"));
        assert!(!uses_remote_shell("m1::module"));
        // rsync reads a bracketed IPv6 host whole before it looks for colons.
        assert!(!uses_remote_shell("[2001:db8::1]::backup/"));
        assert!(!uses_remote_shell("user@[2001:db8::1]::m"));
        assert!(!uses_remote_shell("RSYNC://m1/module/"));
        assert!(uses_remote_shell("[2001:db8::1]:/srv/"));
        assert!(uses_remote_shell("user@[::1]:backup"));
        assert!(!uses_remote_shell("/mnt/backup"));
    }

    #[test]
    fn the_users_ssh_options_are_kept() {
        let dir = Path::new("/run/inosync/ssh");
        let rsh = rsh_with_reuse(&["--rsh=ssh -p 2222 -i /k".into()], dir).unwrap();
        assert!(
            rsh.starts_with("--rsh=ssh -p 2222 -i /k -o ControlMaster=auto"),
            "{rsh}"
        );
        assert!(
            rsh.ends_with("ControlPath=/run/inosync/ssh/ssh-%C"),
            "{rsh}"
        );
        let rsh = rsh_with_reuse(&["-e".into(), "/usr/bin/ssh -p 22".into()], dir).unwrap();
        assert!(rsh.starts_with("--rsh=/usr/bin/ssh -p 22 -o"), "{rsh}");
        assert!(rsh_with_reuse(&["--rsh=rsh".into()], dir).is_none());
        assert!(rsh_with_reuse(&["--rsh=ssh -o ControlPath=none".into()], dir).is_none());
    }
}
