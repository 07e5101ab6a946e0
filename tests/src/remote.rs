//! Real remote targets for the tests: an `rsync --daemon` and an `sshd`, each on a
//! free loopback port with its own temp config, started and stopped by the test.
//! Stopping one ends its connections too (every process it forked), as when
//! its host goes down; dropping one leaves nothing of it running.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{poll_until, real_rsync};

/// A loopback port nobody listens on now (also: an unreachable target).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let up = poll_until(Duration::from_secs(20), || {
        matches!(child.try_wait(), Ok(Some(_))) || TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(
        up && matches!(child.try_wait(), Ok(None)),
        "{what} did not start on port {port}"
    );
}

/// An `rsync --daemon` serving one writable module, `m`, from a directory.
pub struct RsyncDaemon {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    config: PathBuf,
}

impl RsyncDaemon {
    /// Serves `dir` as `rsync://127.0.0.1:PORT/m/`; `work` holds its config and log.
    pub fn start(work: &Path, dir: &Path) -> RsyncDaemon {
        let config = work.join("rsyncd.conf");
        fs::write(
            &config,
            format!(
                "pid file = {work}/rsyncd.pid\nlog file = {work}/rsyncd.log\nuse chroot = true\n\
                 [m]\npath = {dir}\nread only = false\nuid = root\ngid = root\nmunge symlinks = false\n",
                work = work.display(),
                dir = dir.display()
            ),
        )
        .expect("write rsyncd.conf");
        let mut daemon = RsyncDaemon {
            child: None,
            port: free_port(),
            config,
        };
        daemon.restart();
        daemon
    }

    /// The rsync URL of the module.
    pub fn url(&self) -> String {
        format!("rsync://127.0.0.1:{}/m/", self.port)
    }

    /// Stops the daemon and every transfer it serves (SIGKILL, as when its
    /// host goes down): the target goes away.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            kill_tree(child);
        }
    }

    /// Starts it again on the same port: the target comes back.
    pub fn restart(&mut self) {
        self.stop();
        let mut child = Command::new(real_rsync())
            .args(["--daemon", "--no-detach", "--address=127.0.0.1"])
            .arg(format!("--port={}", self.port))
            .arg(format!("--config={}", self.config.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsync --daemon");
        wait_for_port(self.port, &mut child, "rsync --daemon");
        self.child = Some(child);
    }
}

impl Drop for RsyncDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGKILL to `child` and everything it forked (whatever session they moved
/// to), then reaps it.
fn kill_tree(mut child: Child) {
    let below = crate::processes::descendants(child.id());
    let _ = child.kill();
    for p in below {
        crate::processes::signal(p.pid, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// An sshd on a loopback port that lets root in with a key generated for the test.
pub struct Sshd {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    key: PathBuf,
    config: PathBuf,
}

impl Sshd {
    /// Whether sshd is installed (`.ci/run` installs openssh-server).
    pub fn available() -> bool {
        Path::new("/usr/sbin/sshd").exists()
    }

    /// Generates host and client keys in `work` and starts sshd.
    pub fn start(work: &Path) -> Sshd {
        let host_key = work.join("ssh_host_ed25519_key");
        let key = work.join("id_ed25519");
        for path in [&host_key, &key] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .status()
                .expect("run ssh-keygen");
            assert!(status.success(), "ssh-keygen failed");
        }
        let authorized = work.join("authorized_keys");
        fs::copy(key.with_extension("pub"), &authorized).expect("authorized_keys");
        fs::create_dir_all("/run/sshd").expect("sshd privilege separation dir");
        let port = free_port();
        let config = work.join("sshd_config");
        // SHLVL=1: bash started by sshd then counts as a nested shell and reads
        // no ~/.bashrc, so a session does what rsync asks and nothing of the
        // machine's (a session killed while a .bashrc held a lock, e.g.
        // pyenv's rehash, would stall every later one for a minute).
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nListenAddress [::1]\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPidFile {}/sshd.pid\nLogLevel ERROR\nSetEnv SHLVL=1\n",
                host_key.display(),
                authorized.display(),
                work.display()
            ),
        )
        .expect("write sshd_config");
        let mut sshd = Sshd {
            child: None,
            port,
            key,
            config,
        };
        sshd.restart();
        sshd
    }

    /// Stops sshd and every session it serves (SIGKILL, as when its host goes
    /// down): the target goes away, shared connections to it break.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            kill_tree(child);
        }
    }

    /// Starts it again on the same port, with the same keys: the target comes back.
    pub fn restart(&mut self) {
        self.stop();
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        wait_for_port(self.port, &mut child, "sshd");
        self.child = Some(child);
    }

    /// A TOML config that mirrors `src` to `remote` on this sshd (as root over
    /// loopback), with `top` (e.g. `delay = 0`) at the top level.
    pub fn config(&self, top: &str, src: &Path, remote: &Path) -> String {
        self.config_at("127.0.0.1", top, src, remote)
    }

    /// As [`Sshd::config`], the target naming the host as `host` (it also
    /// listens on `[::1]`).
    pub fn config_at(&self, host: &str, top: &str, src: &Path, remote: &Path) -> String {
        format!(
            "{top}\nrsync_args = [\"{}\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\n\
             targets = [\"root@{host}:{}/\"]\n",
            self.rsh(),
            src.display(),
            remote.display()
        )
    }

    /// The `--rsh` argument that reaches this sshd with the test key.
    pub fn rsh(&self) -> String {
        self.rsh_with(&format!("-i {}", self.key.display()))
    }

    /// The `--rsh` argument that reaches this sshd, naming the key (or the
    /// config file) with `identity`, e.g. `-i/path/key` or `-oIdentityFile=...`.
    pub fn rsh_with(&self, identity: &str) -> String {
        format!(
            "--rsh=ssh -p {} {identity} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.port
        )
    }

    /// The client key the sshd accepts (outside `~/.ssh`, so the sandbox lets
    /// ssh read it only when `--rsh` names it).
    pub fn key(&self) -> &Path {
        &self.key
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
