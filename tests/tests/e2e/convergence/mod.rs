//! Convergence under hostile churn: every kind of change a program can make to
//! a tree (see `ops`: creates, same-size rewrites, appends, truncates by path,
//! writes through descriptors kept open, chmod, old mtimes, deep mkdirs written
//! at once, renames onto existing names, directory moves across subtrees and
//! onto empty directories, tree deletions, `RENAME_EXCHANGE`, hard links,
//! files becoming directories and back, moves out of the tree and in from
//! outside, deleted-and-made-again directories, fifos, directories becoming
//! symlinks, writes through hard links outside the tree; odd names), made while
//! batches are in flight (rsync slowed by a wrapper that sleeps before and
//! after it) and the CPUs are busy. At quiescence every target must equal the
//! source, while descriptors the churn opened are still open.
//!
//! Three targets at once: a local directory, an ssh target (where moves are
//! renames) and an `rsync://` one (where they are transfers). The suite runs
//! under both backends.
//!
//! CI runs a short version; `CONVERGE_RUNS`, `CONVERGE_OPS` and `CONVERGE_SEED`
//! make the long soak (`contrib/soak`, 100 seeds x 3,000 operations per
//! backend); `CONVERGE_LOG=FILE` keeps the whole daemon log of a run that
//! diverged (with the differences at its end), `CONVERGE_OPLOG=FILE` writes
//! every operation of the last run with its time and paths. The operations of a
//! seed are the same on every run until a write meets a fifo that rsync happens
//! to hold open, so a divergence is usually replayed within a few tries with
//! `CONVERGE_SEED=N CONVERGE_RUNS=1` and `RUST_LOG=debug,inosyncd::engine=trace`
//! (every change the engine records, every batch's paths).

mod ops;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use inosync_tests::remote::{RsyncDaemon, Sshd};
use inosync_tests::{Fixture, Rng, compare_trees, real_rsync};

use ops::Churn;

/// Spinning threads that keep the CPUs busy until dropped.
struct Load(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Load {
    fn start(threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) + 1);
                    }
                })
            })
            .collect();
        Load(stop, handles)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for handle in self.1.drain(..) {
            let _ = handle.join();
        }
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

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run: churn under load, then both targets must equal the source.
fn run_once(seed: u64, ops: u64) -> Result<String, String> {
    let fx = Fixture::new();
    let remote = fx.path("remote");
    let over_ssh = fx.path("over-ssh");
    fs::create_dir(&remote).unwrap();
    fs::create_dir(&over_ssh).unwrap();
    let rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
    // Moves are renames over ssh: that target must converge too.
    let sshd = Sshd::start(fx.dir.path());
    let wrapper = slow_rsync(&fx);
    let config = format!(
        "delay = 0.3\nrsync = \"{}\"\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\", \"{}\"]\n",
        wrapper.display(),
        fx.src.display(),
        fx.dst.display(),
        rsyncd.url()
    );
    let daemon = fx.start_toml(&config);
    // The ssh options are for rsync's remote shell, which an rsync:// target must
    // not get: the ssh target has a daemon of its own on the same tree.
    let ssh_config = format!(
        "delay = 0.3\nrsync = \"{}\"\nrsync_args = [\"{}\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"root@127.0.0.1:{}/\"]\n",
        wrapper.display(),
        sshd.rsh(),
        fx.src.display(),
        over_ssh.display()
    );
    let ssh_daemon = fx.start_second("ssh", &ssh_config);
    daemon.wait_idle();
    ssh_daemon.wait_idle();
    let fanotify = daemon.status()["watches"][0]["backend"] == "fanotify";
    let started = Instant::now();
    // Writes through a hard link outside the tree: only fanotify can see them.
    // The churn works below the root: a root it emptied would be a source the
    // daemon refuses to mirror by a full sync (an empty mount point), by design.
    let work = fx.src.join("work");
    fs::create_dir(&work).unwrap();
    let mut churn = Churn::new(&work, &fx.path("outside"), fanotify);
    {
        let _load = Load::start(2);
        let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Spread over several batches: each operation takes at least `pace`.
        let pace = std::time::Duration::from_micros(env_number("CONVERGE_PACE_US", 1000));
        for _ in 0..ops {
            let began = Instant::now();
            churn.step(&mut rng);
            if let Some(rest) = pace.checked_sub(began.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    }
    let churned = started.elapsed();
    let churn_counts = churn.made.clone();
    let out = daemon.ctl(&["wait", "--timeout", "120"]);
    let ssh_out = ssh_daemon.ctl(&["wait", "--timeout", "120"]);
    let converged = started.elapsed() - churned;
    let mut problems = Vec::new();
    if !ssh_out.status.success() {
        problems.push(format!(
            "ssh wait failed: {}",
            String::from_utf8_lossy(&ssh_out.stderr)
        ));
    }
    // A race is retried within seconds, never after the 30 s of a misconfig.
    if converged > std::time::Duration::from_secs(15) {
        problems.push(format!(
            "took {converged:.2?} to converge after the last operation"
        ));
    }
    if !out.status.success() {
        problems.push(format!(
            "wait failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    for (name, target) in [
        ("local", &fx.dst),
        ("rsync://", &remote),
        ("ssh", &over_ssh),
    ] {
        if let Err(diff) = compare_trees(&fx.src, target) {
            problems.push(format!("{name} target differs: {diff}"));
        }
    }
    if std::env::var_os("CONVERGE_VERBOSE").is_some() {
        for line in daemon
            .log()
            .lines()
            .filter(|l| l.contains("failed") || l.contains("WARN"))
        {
            eprintln!("  {line}");
        }
    }
    // The generator proves something only if it made every kind of change.
    if ops >= 1000 {
        let missing: Vec<&str> = ops::CLASSES
            .iter()
            .filter(|c| !churn_counts.contains_key(*c))
            .filter(|c| fanotify || !c.contains("outside the tree"))
            .copied()
            .collect();
        if !missing.is_empty() {
            problems.push(format!("the churn never made: {}", missing.join(", ")));
        }
    }
    let open = churn.still_open();
    drop(churn);
    if problems.is_empty() {
        let made: Vec<String> = churn_counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        Ok(format!(
            "seed {seed} ({}): {ops} ops in {churned:.2?}, equal {converged:.2?} after the last \
             ({open} descriptor(s) still open); made: {}",
            if fanotify { "fanotify" } else { "inotify" },
            made.join(", ")
        ))
    } else {
        let log = daemon.log();
        if let Some(path) = std::env::var_os("CONVERGE_LOG") {
            let _ = std::fs::write(path, format!("{log}\n--- problems ---\n{problems:#?}\n"));
        }
        let tail: String = log
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        Err(format!(
            "seed {seed}, {ops} ops: {}\n--- log tail ---\n{tail}",
            problems.join("\n")
        ))
    }
}

#[test]
fn hostile_churn_with_moves_during_transfers_converges() {
    let runs = env_number("CONVERGE_RUNS", 2);
    let ops = env_number("CONVERGE_OPS", 1500);
    let first_seed = env_number("CONVERGE_SEED", 1);
    let mut failures = Vec::new();
    for seed in first_seed..first_seed + runs {
        match run_once(seed, ops) {
            Ok(line) => eprintln!("converge: {line}"),
            Err(problem) => failures.push(problem),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs diverged:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
