//! Convergence under hostile churn: every kind of operation (directory moves
//! across subtrees and onto empty directories, `RENAME_EXCHANGE`, hard links, a
//! file replaced by a directory and back, chmod, odd names), made while batches
//! are in flight (rsync slowed by a wrapper that sleeps before and after it) and
//! the CPUs are busy. At quiescence every target must equal the source.
//!
//! Three targets at once: a local directory and an ssh target (where moves are
//! renames) and an `rsync://` one (where they are transfers).
//!
//! CI runs a short version; `CONVERGE_RUNS`, `CONVERGE_OPS` and `CONVERGE_SEED`
//! make the long soak (`CONVERGE_RUNS=100 CONVERGE_OPS=3000`); `CONVERGE_LOG=FILE`
//! keeps the whole daemon log of a run that diverged.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use inosync_tests::remote::{RsyncDaemon, Sshd};
use inosync_tests::{Fixture, Rng, compare_trees, real_rsync};

/// Names with spaces, `%`, a newline, UTF-8 and a leading dash.
const STEMS: &[&[u8]] = &[b"f", b"d e", b"p%20", b"n\nl", b"\xc3\xbc", b"-x", b"q"];

/// What is on disk now (relative paths), never following a symlink.
fn scan(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut others) = (vec![PathBuf::new()], Vec::new());
    let mut stack = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let rel = dir.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(rel.clone());
                stack.push(rel);
            } else {
                others.push(rel);
            }
        }
    }
    dirs.sort();
    others.sort();
    (dirs, others)
}

fn exchange(a: &Path, b: &Path) {
    let (a, b) = (
        std::ffi::CString::new(a.as_os_str().as_bytes()).unwrap(),
        std::ffi::CString::new(b.as_os_str().as_bytes()).unwrap(),
    );
    // SAFETY: two NUL-terminated paths that outlive the call.
    unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
}

/// One random operation below `root`; failures (a race with itself, a rename
/// onto a non-empty directory) are part of the game and ignored.
fn operate(rng: &mut Rng, root: &Path, counter: &mut u64) {
    let (dirs, others) = scan(root);
    let dir = rng.pick(dirs.iter()).cloned().unwrap_or_default();
    let other = rng.pick(others.iter()).cloned();
    *counter += 1;
    let mut name = STEMS[rng.below(STEMS.len())].to_vec();
    name.extend_from_slice(counter.to_string().as_bytes());
    let new = dir.join(OsStr::from_bytes(&name));
    let abs = |rel: &Path| root.join(rel);
    let content: Vec<u8> = (0..rng.below(2000)).map(|_| rng.next_u64() as u8).collect();
    let _ = match rng.below(17) {
        0..=2 => fs::write(abs(&new), &content),
        3 => other.map_or(Ok(()), |f| fs::write(abs(&f), &content)),
        4 => other.map_or(Ok(()), |f| {
            fs::OpenOptions::new()
                .append(true)
                .open(abs(&f))
                .and_then(|mut h| std::io::Write::write_all(&mut h, &content))
        }),
        5 => other.map_or(Ok(()), |f| {
            let mode = [0o600, 0o644, 0o755, 0o640][rng.below(4)];
            fs::set_permissions(abs(&f), fs::Permissions::from_mode(mode))
        }),
        6 | 7 => fs::create_dir(abs(&new)),
        8 => other.map_or(Ok(()), |f| fs::rename(abs(&f), abs(&new))),
        9 | 10 => {
            // A directory moves across subtrees (never into itself), sometimes
            // onto an existing empty directory.
            let moved = rng.pick(dirs[1..].iter()).cloned();
            match moved {
                Some(moved) if !dir.starts_with(&moved) => {
                    let onto = rng
                        .pick(dirs[1..].iter())
                        .cloned()
                        .filter(|d| !d.starts_with(&moved) && !moved.starts_with(d));
                    let to = if rng.below(3) == 0 {
                        onto.unwrap_or(new)
                    } else {
                        new
                    };
                    fs::rename(abs(&moved), abs(&to))
                }
                _ => Ok(()),
            }
        }
        11 => rng
            .pick(dirs[1..].iter())
            .cloned()
            .map_or(Ok(()), |d| fs::remove_dir_all(abs(&d))),
        12 => other.map_or(Ok(()), |f| fs::remove_file(abs(&f))),
        13 => {
            let target = other.unwrap_or_default();
            symlink(Path::new("/converge-link").join(target), abs(&new))
        }
        14 => {
            // Two entries swap places in one step.
            let a = rng.pick([&dirs[1..], &others[..]].concat().iter()).cloned();
            let b = rng.pick([&dirs[1..], &others[..]].concat().iter()).cloned();
            if let (Some(a), Some(b)) = (a, b)
                && !a.starts_with(&b)
                && !b.starts_with(&a)
            {
                exchange(&abs(&a), &abs(&b));
            }
            Ok(())
        }
        // Hard links make every later write through them a full sync; the soak
        // can leave them out to exercise the path batches alone.
        15 if std::env::var_os("CONVERGE_NO_HARDLINKS").is_none() => {
            other.map_or(Ok(()), |f| fs::hard_link(abs(&f), abs(&new)))
        }
        15 => Ok(()),
        _ => {
            // A file becomes a directory, or a directory a file (git checkout).
            if rng.below(2) == 0 {
                other.map_or(Ok(()), |f| {
                    fs::remove_file(abs(&f))
                        .and_then(|()| fs::create_dir(abs(&f)))
                        .and_then(|()| fs::write(abs(&f).join("inside"), &content))
                })
            } else {
                rng.pick(dirs[1..].iter()).cloned().map_or(Ok(()), |d| {
                    fs::remove_dir_all(abs(&d)).and_then(|()| fs::write(abs(&d), &content))
                })
            }
        }
    };
}

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
    let started = Instant::now();
    {
        let _load = Load::start(2);
        let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut counter = 0;
        // Spread over several batches: each operation takes at least `pace`.
        let pace = std::time::Duration::from_micros(env_number("CONVERGE_PACE_US", 1000));
        for _ in 0..ops {
            let began = Instant::now();
            operate(&mut rng, &fx.src, &mut counter);
            if let Some(rest) = pace.checked_sub(began.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    }
    let churned = started.elapsed();
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
    if problems.is_empty() {
        Ok(format!(
            "seed {seed}: {ops} ops in {churned:.2?}, equal {converged:.2?} after the last"
        ))
    } else {
        let log = daemon.log();
        if let Some(path) = std::env::var_os("CONVERGE_LOG") {
            let _ = std::fs::write(path, &log);
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
