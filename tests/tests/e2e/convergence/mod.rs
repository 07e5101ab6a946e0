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
//! (every change the engine records, every batch's paths). The set-up (`rig`)
//! is shared with the fault soak (`nemesis`).

pub mod ops;
pub mod rig;

use std::time::Duration;

use rig::{Rig, env_number};

/// One run: churn under load, then every target must equal the source.
fn run_once(seed: u64, ops: u64) -> Result<String, String> {
    let rig = Rig::start(None);
    // Spread over several batches: each operation takes at least `pace`.
    let pace = Duration::from_micros(env_number("CONVERGE_PACE_US", 1000));
    let churned = rig.churn(seed, ops, pace);
    let waited = std::time::Instant::now();
    let mut problems = rig.wait(Duration::from_secs(120));
    let converged = waited.elapsed();
    // A race is retried within seconds, never after the 30 s of a misconfig.
    if converged > Duration::from_secs(15) {
        problems.push(format!(
            "took {converged:.2?} to converge after the last operation"
        ));
    }
    problems.extend(rig.compare());
    if std::env::var_os("CONVERGE_VERBOSE").is_some() {
        for line in rig
            .daemon()
            .log()
            .lines()
            .filter(|l| l.contains("failed") || l.contains("WARN"))
        {
            eprintln!("  {line}");
        }
    }
    // The generator proves something only if it made every kind of change.
    if ops >= 1000 {
        let missing = rig.missing_classes(&churned);
        if !missing.is_empty() {
            problems.push(format!("the churn never made: {}", missing.join(", ")));
        }
    }
    let open = churned.generator.still_open();
    drop(churned.generator);
    if problems.is_empty() {
        let made: Vec<String> = churned
            .made
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        Ok(format!(
            "seed {seed} ({}): {ops} ops in {:.2?}, equal {converged:.2?} after the last \
             ({open} descriptor(s) still open); made: {}",
            if rig.fanotify { "fanotify" } else { "inotify" },
            churned.took,
            made.join(", ")
        ))
    } else {
        if let Some(path) = std::env::var_os("CONVERGE_LOG") {
            let _ = std::fs::write(
                path,
                format!(
                    "{}
--- problems ---
{problems:#?}
",
                    rig.daemon().log()
                ),
            );
        }
        Err(format!(
            "seed {seed}, {ops} ops: {}\n--- log tail ---\n{}",
            problems.join("\n"),
            rig.log_tail(60)
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
