//! The set-up the convergence churn and the fault soak share: a source tree,
//! three targets (a local directory, an `rsync://` daemon, an ssh target),
//! two daemons (one with the local and the `rsync://` target; the ssh target
//! has one of its own, since the ssh options must not reach the `rsync://`
//! target), rsync slowed by a wrapper so batches are in flight while the tree
//! moves, the churn under CPU load, and the final check of every target.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use inosync_tests::remote::{RsyncDaemon, Sshd};
use inosync_tests::{Daemon, Fixture, Load, Mount, Rng, compare_trees, real_rsync};

use super::ops::{self, Churn};

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Everything one run needs; dropped at the end of the run (daemons killed,
/// servers stopped, the local target's filesystem unmounted).
pub struct Rig {
    /// Daemons first: they go before what they write to.
    pub daemon: Option<Daemon>,
    /// The daemon of the ssh target.
    pub ssh_daemon: Option<Daemon>,
    /// The `rsync://` target's server.
    pub rsyncd: RsyncDaemon,
    /// The ssh target's server.
    pub sshd: Sshd,
    /// The local target's own filesystem, when asked for (it can fill up).
    pub local_fs: Option<Mount>,
    /// The config of the first daemon (written again at each restart).
    pub config: String,
    /// The config of the ssh target's daemon.
    pub ssh_config: String,
    /// Where the `rsync://` daemon writes.
    pub remote: PathBuf,
    /// Where the ssh target is.
    pub over_ssh: PathBuf,
    /// Whether the daemons watch with fanotify.
    pub fanotify: bool,
    /// The temp directory, the tree and the local target; last to go.
    pub fx: Fixture,
}

/// What a churn made.
pub struct Churned {
    /// How long the operations took.
    pub took: Duration,
    /// Operations made, by class.
    pub made: std::collections::BTreeMap<&'static str, u64>,
    /// Descriptors the churn keeps open until the generator is dropped.
    pub generator: Churn,
}

impl Rig {
    /// Starts the targets and both daemons and waits until they are idle.
    /// `local_fs`: the local target is a tmpfs of that size (`64m`).
    pub fn start(local_fs: Option<&str>) -> Rig {
        let fx = Fixture::new();
        let local_fs = local_fs.map(|size| Mount::tmpfs_sized(&fx.dst, size));
        let remote = fx.path("remote");
        let over_ssh = fx.path("over-ssh");
        fs::create_dir(&remote).unwrap();
        fs::create_dir(&over_ssh).unwrap();
        let rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
        // Moves are renames over ssh: that target must converge too.
        let sshd = Sshd::start(fx.dir.path());
        let wrapper = slow_rsync(&fx);
        let config = format!(
            "delay = 0.3\nio_timeout = 30\nrsync = \"{}\"\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\", \"{}\"]\n",
            wrapper.display(),
            fx.src.display(),
            fx.dst.display(),
            rsyncd.url()
        );
        let daemon = fx.start_toml(&config);
        let ssh_config = format!(
            "delay = 0.3\nio_timeout = 30\nrsync = \"{}\"\nrsync_args = [\"{}\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"root@127.0.0.1:{}/\"]\n",
            wrapper.display(),
            sshd.rsh(),
            fx.src.display(),
            over_ssh.display()
        );
        let ssh_daemon = fx.start_second("ssh", &ssh_config);
        let fanotify = daemon.status()["watches"][0]["backend"] == "fanotify";
        let rig = Rig {
            daemon: Some(daemon),
            ssh_daemon: Some(ssh_daemon),
            rsyncd,
            sshd,
            local_fs,
            config,
            ssh_config,
            remote,
            over_ssh,
            fanotify,
            fx,
        };
        let problems = rig.wait(Duration::from_secs(60));
        assert!(
            problems.is_empty(),
            "not idle after the start: {problems:?}"
        );
        rig
    }

    /// The first daemon (panics while it is down).
    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("the daemon runs")
    }

    /// The ssh target's daemon.
    pub fn ssh_daemon(&self) -> &Daemon {
        self.ssh_daemon.as_ref().expect("the ssh daemon runs")
    }

    /// `ops` random operations from `seed` (see [`churn`]).
    pub fn churn(&self, seed: u64, ops: u64, pace: Duration) -> Churned {
        churn(&self.fx, self.fanotify, seed, ops, pace)
    }

    /// Waits until both daemons have nothing pending or running; the problems
    /// found (a `wait` that timed out).
    pub fn wait(&self, timeout: Duration) -> Vec<String> {
        let secs = timeout.as_secs().to_string();
        let mut problems = Vec::new();
        for (name, daemon) in [("", self.daemon()), ("ssh ", self.ssh_daemon())] {
            let out = daemon.ctl(&["wait", "--timeout", &secs]);
            if !out.status.success() {
                problems.push(format!(
                    "{name}wait failed: {}; its processes:\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    inosync_tests::processes::describe_tree(daemon.pid())
                ));
            }
        }
        problems
    }

    /// Every target compared with the source.
    pub fn compare(&self) -> Vec<String> {
        [
            ("local", &self.fx.dst),
            ("rsync://", &self.remote),
            ("ssh", &self.over_ssh),
        ]
        .into_iter()
        .filter_map(|(name, target)| {
            compare_trees(&self.fx.src, target)
                .err()
                .map(|diff| format!("{name} target differs: {diff}"))
        })
        .collect()
    }

    /// Whether the churn made every class it can make under this backend
    /// (checked on long runs: a generator that skips a class proves little).
    pub fn missing_classes(&self, churned: &Churned) -> Vec<&'static str> {
        ops::CLASSES
            .iter()
            .filter(|c| !churned.made.contains_key(*c))
            .filter(|c| self.fanotify || !c.contains("outside the tree"))
            .copied()
            .collect()
    }

    /// Both daemons' logs, to keep (`*_LOG` variables) or show.
    pub fn logs(&self) -> String {
        let log = |name: &str| fs::read_to_string(self.fx.path(name)).unwrap_or_default();
        format!(
            "--- inosyncd (local, rsync://) ---\n{}\n--- inosyncd (ssh) ---\n{}",
            log("inosyncd.log"),
            log("ssh.log")
        )
    }

    /// The last `lines` lines of the first daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(self.fx.path("inosyncd.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// `ops` random operations from `seed` in `fx`'s tree, each taking at least
/// `pace`, in `work/` below the root (a root the churn emptied would be a
/// source the daemon refuses to mirror by a full sync, an empty mount point,
/// by design), with two CPU-bound threads beside them. Writes through a hard
/// link outside the tree are made only under `fanotify` (inotify cannot see
/// them, a documented limit).
pub fn churn(fx: &Fixture, fanotify: bool, seed: u64, ops: u64, pace: Duration) -> Churned {
    let work = fx.src.join("work");
    fs::create_dir_all(&work).unwrap();
    let mut generator = Churn::new(&work, &fx.path("outside"), fanotify);
    let started = Instant::now();
    {
        let _load = Load::start(2);
        let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for _ in 0..ops {
            let began = Instant::now();
            generator.step(&mut rng);
            if let Some(rest) = pace.checked_sub(began.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    }
    Churned {
        took: started.elapsed(),
        made: generator.made.clone(),
        generator,
    }
}

/// An rsync that sleeps before and after the real one, so batches are in flight
/// while the tree moves.
fn slow_rsync(fx: &Fixture) -> PathBuf {
    let wrapper = fx.path("slow-rsync");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nsleep 0.05\n'{}' \"$@\"\nrc=$?\nsleep 0.05\nexit $rc\n",
            real_rsync().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}
