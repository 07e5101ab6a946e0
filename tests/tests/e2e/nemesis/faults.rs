//! The nemesis: faults injected at random moments, in random combinations,
//! while the churn runs. Each kind is a thing that happens to a mirror host in
//! production (a crash, the OOM killer, a backup host rebooting, a dropped
//! connection, a full disk, lost events, a stalled machine); the ones that last
//! are healed after a random while, and all of them when the churn ends.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use inosync_tests::processes::{self, child_groups, control_masters, signal, signal_group};
use inosync_tests::remote::{RsyncDaemon, Sshd};
use inosync_tests::{Daemon, Fixture, Mount, Rng};

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// SIGKILL of a daemon, restarted after a while with the same config and
    /// state file.
    DaemonKilled,
    /// SIGKILL of the rsync runs a daemon started, mid-transfer: their whole
    /// process group, rsync's first process alone, or the ssh under it.
    RsyncKilled,
    /// The `rsync://` target's server and every transfer it serves killed,
    /// started again after a while.
    RsyncdDown,
    /// The ssh target's sshd and every session killed, started again after a
    /// while (shared connections to it break).
    SshdDown,
    /// ssh's shared connection (ControlMaster) killed.
    MasterKilled,
    /// The local target's filesystem full (shrunk to what it holds), grown
    /// again after a while.
    TargetFull,
    /// More events than the inotify queue holds while a daemon is stopped:
    /// the kernel drops them and says so (inotify only; fanotify's queue has
    /// no limit).
    Overflow,
    /// SIGSTOP of a daemon, SIGCONT after a few seconds (a stalled machine).
    Stalled,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 8] = [
        Kind::DaemonKilled,
        Kind::RsyncKilled,
        Kind::RsyncdDown,
        Kind::SshdDown,
        Kind::MasterKilled,
        Kind::TargetFull,
        Kind::Overflow,
        Kind::Stalled,
    ];

    /// How it is named in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::DaemonKilled => "daemon-killed",
            Kind::RsyncKilled => "rsync-killed",
            Kind::RsyncdDown => "rsyncd-down",
            Kind::SshdDown => "sshd-down",
            Kind::MasterKilled => "controlmaster-killed",
            Kind::TargetFull => "target-full",
            Kind::Overflow => "overflow",
            Kind::Stalled => "daemon-stopped",
        }
    }

    /// Whether it lasts until healed.
    fn lasts(self) -> bool {
        matches!(
            self,
            Kind::DaemonKilled
                | Kind::RsyncdDown
                | Kind::SshdDown
                | Kind::TargetFull
                | Kind::Stalled
        )
    }
}

/// What the nemesis acts on; the tree and its churn belong to the test.
pub struct Targets<'a> {
    /// The daemon of the local and `rsync://` targets (`None` while killed).
    pub daemon: &'a mut Option<Daemon>,
    /// The daemon of the ssh target.
    pub ssh_daemon: &'a mut Option<Daemon>,
    /// The `rsync://` target's server.
    pub rsyncd: &'a mut RsyncDaemon,
    /// The ssh target's server.
    pub sshd: &'a mut Sshd,
    /// The local target's filesystem.
    pub local_fs: &'a Mount,
    /// The temp directory, configs and state files.
    pub fx: &'a Fixture,
    /// Config of `daemon`, for its restarts.
    pub config: &'a str,
    /// Config of `ssh_daemon`.
    pub ssh_config: &'a str,
    /// Whether the daemons watch with fanotify (no overflow to cause).
    pub fanotify: bool,
}

/// What hit one run of a daemon (since its last start): what its metrics
/// must show.
#[derive(Debug, Default, Clone, Copy)]
pub struct SinceStart {
    /// rsync transfers killed (each a failed run).
    pub transfers_killed: u32,
    /// Queue overflows caused.
    pub overflows: u32,
}

/// What the nemesis did in one run.
#[derive(Debug, Default)]
pub struct Report {
    /// Per kind: injected, and how many of those hit something (a kill with
    /// no rsync running hits nothing).
    pub counts: BTreeMap<Kind, (u32, u32)>,
    /// What happened when, for a run that diverged.
    pub timeline: Vec<String>,
    /// Per daemon (0: local and `rsync://`, 1: ssh), what hit its current run.
    pub since_start: [SinceStart; 2],
}

/// A fault that lasts, until `heal_at`.
struct Active {
    kind: Kind,
    daemon: usize,
    heal_at: Instant,
}

/// The injector of one run.
pub struct Nemesis<'a> {
    targets: Targets<'a>,
    rng: Rng,
    active: Vec<Active>,
    started: Instant,
    /// Per daemon: an overflow was caused during its current stop. The kernel
    /// queues one overflow event until it is read, so another one caused
    /// before the daemon goes on is the same overflow to it.
    overflowed_while_stopped: [bool; 2],
    /// What it did.
    pub report: Report,
}

/// The local target's filesystem size when it is not full.
pub const LOCAL_FS_SIZE: &str = "256m";

impl<'a> Nemesis<'a> {
    /// A nemesis for `targets`, its choices from `seed`.
    pub fn new(targets: Targets<'a>, seed: u64) -> Nemesis<'a> {
        Nemesis {
            targets,
            rng: Rng::new(seed ^ 0x6E65_6D65_7369_7321),
            active: Vec::new(),
            started: Instant::now(),
            overflowed_while_stopped: [false; 2],
            report: Report::default(),
        }
    }

    /// Injects faults every 100–600 ms until `stop` is set, heals each after
    /// its while, then heals everything still active.
    pub fn run(&mut self, stop: &std::sync::atomic::AtomicBool) {
        use std::sync::atomic::Ordering;
        let mut next = Instant::now() + self.millis(50, 300);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
            self.heal_due(false);
            if Instant::now() >= next {
                self.inject_one();
                next = Instant::now() + self.millis(100, 600);
            }
        }
        self.heal_due(true);
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.rng.below((high - low) as usize) as u64)
    }

    fn note(&mut self, what: String) {
        let at = self.started.elapsed().as_secs_f64();
        self.report.timeline.push(format!("{at:7.3}s {what}"));
    }

    fn count(&mut self, kind: Kind, hit: bool) {
        let entry = self.report.counts.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += u32::from(hit);
    }

    fn is_active(&self, kind: Kind, daemon: usize) -> bool {
        self.active
            .iter()
            .any(|a| a.kind == kind && a.daemon == daemon)
    }

    fn daemon(&self, which: usize) -> Option<&Daemon> {
        match which {
            0 => self.targets.daemon.as_ref(),
            _ => self.targets.ssh_daemon.as_ref(),
        }
    }

    /// One fault of a random kind, on a random daemon where that matters.
    fn inject_one(&mut self) {
        let kind = Kind::ALL[self.rng.below(Kind::ALL.len())];
        let which = self.rng.below(2);
        if kind == Kind::Overflow && self.targets.fanotify {
            return;
        }
        let which = match kind {
            Kind::RsyncdDown | Kind::TargetFull => 0,
            Kind::SshdDown | Kind::MasterKilled => 1,
            _ => which,
        };
        if kind.lasts() && self.is_active(kind, which) {
            return;
        }
        // A stopped or killed daemon is not stopped or killed again (its
        // heal would act on another run of it).
        let down = self.is_active(Kind::DaemonKilled, which);
        let stalled = self.is_active(Kind::Stalled, which);
        let needs_daemon = matches!(
            kind,
            Kind::DaemonKilled | Kind::RsyncKilled | Kind::Overflow | Kind::Stalled
        );
        if needs_daemon && down {
            return;
        }
        let hit = match kind {
            Kind::DaemonKilled => {
                self.kill_daemon(which);
                true
            }
            Kind::RsyncKilled => self.kill_rsync(which),
            Kind::RsyncdDown => {
                self.targets.rsyncd.stop();
                true
            }
            Kind::SshdDown => {
                self.targets.sshd.stop();
                true
            }
            Kind::MasterKilled => {
                let masters = control_masters(&self.targets.fx.dir.path().join("ssh"));
                for m in &masters {
                    signal(m.pid, libc::SIGKILL);
                }
                !masters.is_empty()
            }
            Kind::TargetFull => self.fill_local_target(),
            Kind::Overflow => self.overflow(which, stalled),
            Kind::Stalled => {
                if let Some(d) = self.daemon(which) {
                    signal(d.pid(), libc::SIGSTOP);
                }
                true
            }
        };
        self.note(format!(
            "{} on daemon {which}{}",
            kind.name(),
            if hit { "" } else { " (nothing to hit)" }
        ));
        self.count(kind, hit);
        if kind.lasts() && hit {
            let heal_at = Instant::now() + self.millis(200, 2500);
            self.active.push(Active {
                kind,
                daemon: which,
                heal_at,
            });
        }
    }

    /// Heals the faults whose while is over (all of them with `all`).
    fn heal_due(&mut self, all: bool) {
        let now = Instant::now();
        let (due, kept): (Vec<Active>, Vec<Active>) = std::mem::take(&mut self.active)
            .into_iter()
            .partition(|a| all || a.heal_at <= now);
        self.active = kept;
        for fault in due {
            match fault.kind {
                Kind::DaemonKilled => self.restart_daemon(fault.daemon),
                Kind::RsyncdDown => self.targets.rsyncd.restart(),
                Kind::SshdDown => self.targets.sshd.restart(),
                Kind::TargetFull => {
                    if let Err(e) = self.targets.local_fs.resize(LOCAL_FS_SIZE) {
                        panic!("cannot grow the local target's filesystem again: {e}");
                    }
                }
                Kind::Stalled => {
                    if let Some(d) = self.daemon(fault.daemon) {
                        signal(d.pid(), libc::SIGCONT);
                    }
                    self.overflowed_while_stopped[fault.daemon] = false;
                }
                Kind::RsyncKilled | Kind::MasterKilled | Kind::Overflow => {}
            }
            self.note(format!(
                "healed {} on daemon {}",
                fault.kind.name(),
                fault.daemon
            ));
        }
    }

    fn kill_daemon(&mut self, which: usize) {
        let slot = match which {
            0 => &mut *self.targets.daemon,
            _ => &mut *self.targets.ssh_daemon,
        };
        if let Some(daemon) = slot.as_mut() {
            daemon.kill();
        }
        *slot = None;
        self.overflowed_while_stopped[which] = false;
        // A stall of that run ends with it.
        self.active
            .retain(|a| !(a.kind == Kind::Stalled && a.daemon == which));
    }

    fn restart_daemon(&mut self, which: usize) {
        let fx = self.targets.fx;
        match which {
            0 => *self.targets.daemon = Some(fx.restart_toml(self.targets.config)),
            _ => *self.targets.ssh_daemon = Some(fx.restart_second("ssh", self.targets.ssh_config)),
        }
        self.report.since_start[which] = SinceStart::default();
    }

    /// SIGKILL of what a daemon runs now: each run's process group (rsync's
    /// temp files stay), or its first process alone (the receiver sees the
    /// connection close), or (ssh target) the ssh under rsync.
    fn kill_rsync(&mut self, which: usize) -> bool {
        let Some(pid) = self.daemon(which).map(Daemon::pid) else {
            return false;
        };
        // Mid-transfer: the next run, if none runs now (within a second).
        let deadline = Instant::now() + Duration::from_secs(1);
        while child_groups(pid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let how = self.rng.below(if which == 1 { 3 } else { 2 });
        let mut transfers = 0;
        let mut hit = false;
        if how == 2 {
            for p in processes::descendants(pid)
                .into_iter()
                .filter(|p| p.cmdline.starts_with("ssh ") && p.ppid != pid)
            {
                signal(p.pid, libc::SIGKILL);
                hit = true;
            }
        } else {
            let children = processes::children(pid);
            for group in child_groups(pid) {
                // The ssh of the renames is no transfer: its failure falls
                // back to one, and counts as no failed run.
                let transfer = children
                    .iter()
                    .any(|c| c.pid == group && c.cmdline.contains("rsync"));
                if how == 0 {
                    signal_group(group, libc::SIGKILL);
                } else {
                    signal(group, libc::SIGKILL);
                }
                transfers += u32::from(transfer);
                hit = true;
            }
        }
        self.report.since_start[which].transfers_killed += transfers;
        hit
    }

    /// Shrinks the local target's tmpfs to what it holds (plus a page or two:
    /// the kernel refuses less than it holds, and it may grow meanwhile).
    fn fill_local_target(&mut self) -> bool {
        for margin in [8u64, 64, 1024] {
            let used = self.targets.local_fs.used_bytes() / 1024;
            if self
                .targets
                .local_fs
                .resize(&format!("{}k", used + margin))
                .is_ok()
            {
                return true;
            }
        }
        false
    }

    /// Stops a daemon (unless it is stopped already), makes more inotify
    /// events than its queue holds (a chmod makes one; two files in turn, so
    /// the kernel merges none), and lets it go on. Each overflow counted must
    /// reach the daemon as one: a running daemon has read the overflows
    /// caused before (its metrics show them) when the next one is caused, and
    /// a stopped one counts one however many are caused before it goes on.
    fn overflow(&mut self, which: usize, stalled: bool) -> bool {
        let Some(pid) = self.daemon(which).map(Daemon::pid) else {
            return false;
        };
        let files = flood_files(self.targets.fx);
        let counted = !stalled || !self.overflowed_while_stopped[which];
        if stalled {
            self.overflowed_while_stopped[which] = true;
        } else if let Some(daemon) = self.daemon(which) {
            let caused = f64::from(self.report.since_start[which].overflows);
            inosync_tests::poll_until(Duration::from_secs(10), || {
                super::metric(
                    &daemon.ctl_ok(&["metrics"]),
                    "inosync_overflows_total",
                    None,
                ) >= caused
            });
        }
        if !stalled {
            signal(pid, libc::SIGSTOP);
        }
        let events = max_queued_events() + 1000;
        for i in 0..events {
            let mode = if (i / 2) % 2 == 0 { 0o644 } else { 0o600 };
            let _ = fs::set_permissions(&files[i % 2], fs::Permissions::from_mode(mode));
        }
        if !stalled {
            signal(pid, libc::SIGCONT);
        }
        self.report.since_start[which].overflows += u32::from(counted);
        true
    }
}

/// The two files an overflow is made with, in a directory of the tree the
/// churn leaves alone: made before the daemons start watching it (under
/// inotify a directory made while its daemon is stopped has no watch yet,
/// and its changes would not even be queued).
pub fn flood_files(fx: &Fixture) -> [std::path::PathBuf; 2] {
    let dir = fx.src.join("flood");
    [dir.join("a"), dir.join("b")]
}

/// Makes [`flood_files`].
pub fn make_flood_files(fx: &Fixture) {
    for file in flood_files(fx) {
        fs::create_dir_all(file.parent().expect("in a directory")).expect("mkdir flood");
        fs::write(&file, "x").expect("write flood file");
    }
}

/// The kernel's inotify queue length (`fs.inotify.max_queued_events`).
fn max_queued_events() -> usize {
    fs::read_to_string(Path::new("/proc/sys/fs/inotify/max_queued_events"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384)
}
