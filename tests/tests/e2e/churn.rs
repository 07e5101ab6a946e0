//! The churn test: thousands of random file-system operations with no pauses,
//! against a local and an `rsync://` target at once; afterwards both must equal
//! the source. `CHURN_SEED` and `CHURN_OPS` choose another run (CI uses a fixed
//! seed and 10,000 operations).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Instant;

use inosync_tests::remote::RsyncDaemon;
use inosync_tests::{Fixture, Rng, compare_trees};

/// What exists, so operations pick real paths ("" is the root directory).
struct Tree {
    files: BTreeSet<String>,
    links: BTreeSet<String>,
    dirs: BTreeSet<String>,
    counter: u64,
}

impl Tree {
    fn fresh_name(&mut self, dir: &str, kind: &str) -> String {
        self.counter += 1;
        if dir.is_empty() {
            format!("{kind}{}", self.counter)
        } else {
            format!("{dir}/{kind}{}", self.counter)
        }
    }

    /// Moves every entry at or under `from` to `to`.
    fn rename_prefix(&mut self, from: &str, to: &str) {
        let under = |p: &String| p == from || p.starts_with(&format!("{from}/"));
        for set in [&mut self.files, &mut self.links, &mut self.dirs] {
            let moved: Vec<String> = set.iter().filter(|p| under(p)).cloned().collect();
            for path in moved {
                set.remove(&path);
                if !to.is_empty() {
                    set.insert(format!("{to}{}", &path[from.len()..]));
                }
            }
        }
    }
}

fn churn(root: &Path, seed: u64, ops: usize) {
    let mut rng = Rng::new(seed.max(1));
    let mut tree = Tree {
        files: BTreeSet::new(),
        links: BTreeSet::new(),
        dirs: BTreeSet::from([String::new()]),
        counter: 0,
    };
    let abs = |rel: &str| {
        if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        }
    };
    for _ in 0..ops {
        let dir = rng.pick(tree.dirs.iter()).cloned().unwrap_or_default();
        let file = rng.pick(tree.files.iter()).cloned();
        let content: Vec<u8> = (0..rng.below(3000)).map(|_| rng.next_u64() as u8).collect();
        match rng.below(13) {
            0 | 1 => {
                let path = tree.fresh_name(&dir, "f");
                fs::write(abs(&path), &content).unwrap();
                tree.files.insert(path);
            }
            2 => {
                if let Some(file) = file {
                    fs::write(abs(&file), &content).unwrap();
                }
            }
            3 => {
                if let Some(file) = file {
                    let mut f = fs::OpenOptions::new()
                        .append(true)
                        .open(abs(&file))
                        .unwrap();
                    f.write_all(&content).unwrap();
                }
            }
            4 => {
                if let Some(file) = file {
                    let f = fs::OpenOptions::new().write(true).open(abs(&file)).unwrap();
                    f.set_len(rng.below(100) as u64).unwrap();
                }
            }
            5 => {
                if let Some(file) = file {
                    let mode = [0o600, 0o644, 0o755, 0o640][rng.below(4)];
                    fs::set_permissions(abs(&file), fs::Permissions::from_mode(mode)).unwrap();
                }
            }
            6 | 7 => {
                let path = tree.fresh_name(&dir, "d");
                fs::create_dir(abs(&path)).unwrap();
                tree.dirs.insert(path);
            }
            8 => {
                let empty = !dir.is_empty() && fs::read_dir(abs(&dir)).unwrap().next().is_none();
                if empty {
                    fs::remove_dir(abs(&dir)).unwrap();
                    tree.dirs.remove(&dir);
                }
            }
            9 => {
                if let Some(file) = file {
                    let to = tree.fresh_name(&dir, "r");
                    fs::rename(abs(&file), abs(&to)).unwrap();
                    tree.files.remove(&file);
                    tree.files.insert(to);
                }
            }
            10 => {
                // Rename or move a directory across subtrees (never into itself).
                let target_parent = rng.pick(tree.dirs.iter()).cloned().unwrap_or_default();
                let inside = target_parent == dir || target_parent.starts_with(&format!("{dir}/"));
                if !dir.is_empty() && !inside {
                    let to = tree.fresh_name(&target_parent, "m");
                    fs::rename(abs(&dir), abs(&to)).unwrap();
                    tree.rename_prefix(&dir, &to);
                }
            }
            11 => {
                if !dir.is_empty() && rng.below(4) == 0 {
                    fs::remove_dir_all(abs(&dir)).unwrap();
                    tree.rename_prefix(&dir, "");
                }
            }
            _ => {
                let path = tree.fresh_name(&dir, "l");
                let target = file.unwrap_or_else(|| "nowhere".into());
                symlink(format!("/churn-link/{target}"), abs(&path)).unwrap();
                if rng.below(2) == 0
                    && let Some(link) = rng.pick(tree.links.iter()).cloned()
                {
                    // Rename a link, replacing the one just made.
                    fs::rename(abs(&link), abs(&path)).unwrap();
                    tree.links.remove(&link);
                }
                tree.links.insert(path);
            }
        }
    }
}

#[test]
fn ten_thousand_random_operations_reach_a_local_and_an_rsync_daemon_target() {
    let seed: u64 = std::env::var("CHURN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_125);
    let ops: usize = std::env::var("CHURN_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let fx = Fixture::new();
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
    let config = format!(
        "delay = 0\nevents = [\"IN_CLOSE_WRITE\", \"IN_CREATE\", \"IN_DELETE\", \"IN_MOVED_FROM\", \"IN_MOVED_TO\", \"IN_ATTRIB\", \"IN_MODIFY\"]\n\
         \n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\", \"{}\"]\n",
        fx.src.display(),
        fx.dst.display(),
        rsyncd.url()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    let started = Instant::now();
    churn(&fx.src, seed, ops);
    let churned = started.elapsed();
    daemon.wait_idle();
    let converged = started.elapsed();
    for (name, target) in [("local", &fx.dst), ("rsync://", &remote)] {
        if let Err(problems) = compare_trees(&fx.src, target) {
            if let Some(path) = std::env::var_os("CHURN_LOG") {
                let _ = fs::write(path, daemon.log());
            }
            panic!(
                "seed {seed}, {ops} ops: {name} target differs: {problems}\n{}",
                daemon.log()
            );
        }
    }
    let runs = daemon.log().matches("synced in").count();
    eprintln!(
        "churn seed {seed}: {ops} operations in {churned:.2?}, both targets equal {:.2?} after the last one \
         ({runs} rsync runs, 0 lost)",
        converged - churned
    );
}
