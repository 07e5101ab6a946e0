//! Faults during churn lose nothing: the convergence churn (`convergence`:
//! 26 kinds of change, under CPU load, against a local, an `rsync://` and an
//! ssh target) while a nemesis (`faults`) injects faults at random moments in
//! random combinations: SIGKILL of a daemon and a restart with the same config
//! and state file; SIGKILL of the rsync runs (and the ssh under them) a daemon
//! started, mid-transfer; the `rsync://` server killed and restarted; sshd
//! stopped and started, ssh's shared connection killed; the local target's
//! filesystem full, then grown; an inotify queue overflow; a daemon stopped
//! (SIGSTOP) for a few seconds. After the last fault heals, every target must
//! equal the source, `inosyncctl verify` must find no drift, and each daemon's
//! metrics must count what hit it since its last start.
//!
//! CI runs two short runs; `NEMESIS_RUNS`, `NEMESIS_OPS`, `NEMESIS_SEED` and
//! `NEMESIS_PACE_US` make the soak (`contrib/soak/nemesis`);
//! `NEMESIS_LOG_DIR=DIR` keeps both daemons' logs and the fault timeline of a
//! run that diverged.

mod faults;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use inosync_tests::Daemon;

use crate::convergence::rig::{self, Rig, env_number};
use faults::{Kind, LOCAL_FS_SIZE, Nemesis, Report, SinceStart, Targets};

/// The sum of every series of metric `name` in a Prometheus text, those with
/// label `filter` (`reason="initial"`) only when given.
fn metric(text: &str, name: &str, filter: Option<&str>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| filter.is_none_or(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What a daemon's metrics must show of what hit it since its last start.
fn check_metrics(
    name: &str,
    daemon: &Daemon,
    hit: SinceStart,
    problems: &mut Vec<String>,
) -> String {
    let text = daemon.ctl_ok(&["metrics"]);
    let initial = metric(
        &text,
        "inosync_full_syncs_total",
        Some("reason=\"initial\""),
    );
    let failures = metric(&text, "inosync_failures_total", None);
    let overflows = metric(&text, "inosync_overflows_total", None);
    if initial < 1.0 {
        problems.push(format!("{name}: no initial full sync counted"));
    }
    if hit.transfers_killed > 0 && failures < 1.0 {
        problems.push(format!(
            "{name}: {} transfer(s) killed, inosync_failures_total {failures}",
            hit.transfers_killed
        ));
    }
    if f64::from(hit.overflows) > overflows {
        problems.push(format!(
            "{name}: {} overflow(s) caused, inosync_overflows_total {overflows}",
            hit.overflows
        ));
    }
    format!("{name}: failures {failures}, overflows {overflows}, initial full syncs {initial}")
}

/// `inosyncctl verify` of a daemon: no drift (exit 0).
fn check_verify(name: &str, daemon: &Daemon, problems: &mut Vec<String>) {
    let out = daemon.ctl(&["verify"]);
    if !out.status.success() {
        problems.push(format!(
            "{name}: verify exited {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

fn faults_line(report: &Report) -> String {
    Kind::ALL
        .iter()
        .filter_map(|k| {
            report
                .counts
                .get(k)
                .map(|(n, hit)| format!("{}={n}/{hit}", k.name()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One run: churn with the nemesis beside it, heal, converge, check.
fn run_once(seed: u64, ops: u64) -> Result<String, String> {
    let mut rig = Rig::start(Some(LOCAL_FS_SIZE));
    faults::make_flood_files(&rig.fx);
    let settled = rig.wait(Duration::from_secs(60));
    assert!(settled.is_empty(), "{settled:?}");
    let pace = Duration::from_micros(env_number("NEMESIS_PACE_US", 2000));
    let stop = AtomicBool::new(false);
    let fanotify = rig.fanotify;
    let Rig {
        daemon,
        ssh_daemon,
        rsyncd,
        sshd,
        local_fs,
        config,
        ssh_config,
        fx,
        ..
    } = &mut rig;
    let targets = Targets {
        daemon,
        ssh_daemon,
        rsyncd,
        sshd,
        local_fs: local_fs
            .as_ref()
            .expect("the local target has its own filesystem"),
        fx,
        config,
        ssh_config,
        fanotify,
    };
    let mut nemesis = Nemesis::new(targets, seed);
    let fx = &*fx;
    let churned = std::thread::scope(|s| {
        let injecting = s.spawn(|| nemesis.run(&stop));
        let churned = rig::churn(fx, fanotify, seed, ops, pace);
        stop.store(true, Ordering::Relaxed);
        injecting.join().expect("the nemesis panicked");
        churned
    });
    let report = nemesis.report;
    let healed = Instant::now();
    let mut problems = rig.wait(Duration::from_secs(300));
    let converged = healed.elapsed();
    problems.extend(rig.compare());
    let mut metrics = Vec::new();
    if problems.is_empty() {
        check_verify("daemon", rig.daemon(), &mut problems);
        check_verify("ssh daemon", rig.ssh_daemon(), &mut problems);
        for (i, (name, daemon)) in [("daemon", rig.daemon()), ("ssh daemon", rig.ssh_daemon())]
            .into_iter()
            .enumerate()
        {
            metrics.push(check_metrics(
                name,
                daemon,
                report.since_start[i],
                &mut problems,
            ));
        }
    }
    drop(churned.generator);
    let backend = if rig.fanotify { "fanotify" } else { "inotify" };
    if problems.is_empty() {
        return Ok(format!(
            "seed {seed} ({backend}): {ops} ops in {:.2}s; faults {}; equal {:.2}s after the last \
             fault healed; verify equal; {}",
            churned.took.as_secs_f64(),
            faults_line(&report),
            converged.as_secs_f64(),
            metrics.join("; ")
        ));
    }
    if let Some(dir) = std::env::var_os("NEMESIS_LOG_DIR") {
        let dir = std::path::Path::new(&dir);
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(
            dir.join(format!("nemesis-{backend}-seed{seed}.log")),
            format!("{}\n\n{}", report.timeline.join("\n"), rig.logs()),
        );
    }
    Err(format!(
        "seed {seed} ({backend}), {ops} ops: {}\nfaults: {}\n--- timeline ---\n{}\n--- log tail ---\n{}",
        problems.join("\n"),
        faults_line(&report),
        report.timeline.join("\n"),
        rig.log_tail(60)
    ))
}

#[test]
fn faults_during_churn_lose_nothing() {
    let runs = env_number("NEMESIS_RUNS", 2);
    let ops = env_number("NEMESIS_OPS", 1000);
    let first_seed = env_number("NEMESIS_SEED", 1);
    let mut failures = Vec::new();
    for seed in first_seed..first_seed + runs {
        match run_once(seed, ops) {
            Ok(line) => eprintln!("nemesis: {line}"),
            Err(problem) => {
                eprintln!("nemesis: seed {seed} diverged");
                failures.push(problem);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs diverged:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
