//! Helpers for the end-to-end tests: temp trees, the real `inosyncd` on a temp
//! socket, the real `inosyncctl`, an rsync wrapper that counts invocations, and a
//! tree comparison that looks at types, modes, contents, mtimes and symlinks.
//!
//! Nothing here mocks rsync or inotify: the daemon under test runs the rsync binary
//! and watches real directories.

mod immutable;
mod load;
mod mounts;
pub mod processes;
pub mod remote;
mod rng;
mod trees;
pub mod versions;

pub use immutable::Immutable;
pub use load::Load;
pub use mounts::Mount;
pub use rng::Rng;
pub use trees::{
    assert_trees_equal, compare_trees, join_bytes, rewrite_keeping_mtime, write_odd_names,
};

/// Names that broke inosync's shell command line: spaces, newlines, leading
/// dashes, `%`, glob characters, backslashes, quotes, and bytes that are not UTF-8.
pub const ODD_NAMES: &[&[u8]] = &[
    b"with space",
    b"new\nline",
    b"-leading-dash",
    b"--delete",
    b"100%done %s %n",
    b"star*and?query[bracket]",
    b"back\\slash",
    b"quote'and\"double",
    b"\xff\xfe not utf-8 \x80",
    b" leading and trailing space ",
    b"tab\there",
];

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where cargo put the workspace's binaries: next to the `deps` folder that holds
/// this test executable.
pub fn bin(name: &str) -> PathBuf {
    // INOSYNC_BIN_DIR runs a test against other binaries (e.g. an older release,
    // for a before/after figure).
    if let Some(dir) = std::env::var_os("INOSYNC_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (`cargo build --workspace`)",
        path.display()
    );
    path
}

/// The real rsync binary, from PATH.
pub fn real_rsync() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("rsync"))
        .find(|p| p.is_file())
        .expect("rsync is not installed (apt-get install rsync)")
}

/// Runs a command to completion and asserts it succeeded, showing its stderr if
/// it did not.
pub fn run_ok(command: &mut Command) -> Output {
    let out = command.output().expect("run command");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether the tests run as root (mounts, namespaces, fanotify, other users).
pub fn is_root() -> bool {
    // SAFETY: no arguments.
    unsafe { libc::geteuid() == 0 }
}

/// Whether this kernel offers Landlock (the sandbox's tests need it).
pub fn has_landlock() -> bool {
    // SAFETY: the version query takes no attributes and changes nothing.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        ) > 0
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temp directory with a source tree, a target directory and a socket path.
pub struct Fixture {
    /// A filesystem of the fixture's own (see [`Fixture::on_own_filesystem`]),
    /// unmounted before the directory is removed (fields drop in order).
    own_filesystem: Option<Mount>,
    /// Keeps the directory alive; removed on drop.
    pub dir: tempfile::TempDir,
    /// The watched tree.
    pub src: PathBuf,
    /// The local rsync target.
    pub dst: PathBuf,
    /// The control socket of the daemon under test.
    pub socket: PathBuf,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    /// Creates `src/` and `dst/` in a fresh temp dir.
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("inosync-e2e-")
            .tempdir()
            .expect("temp dir");
        let src = dir.path().join("src");
        let dst = dir.path().join("dst");
        fs::create_dir(&src).expect("mkdir src");
        fs::create_dir(&dst).expect("mkdir dst");
        let socket = dir.path().join("ctl.sock");
        Fixture {
            own_filesystem: None,
            dir,
            src,
            dst,
            socket,
        }
    }

    /// As [`Fixture::new`], on a tmpfs of its own when run as root: a test
    /// that counts what the daemon did (no full sync, no search) sees no
    /// other test's files, which a fanotify mark of a shared `/tmp` reports
    /// too (the CI's full suite: another test's scratch directory counted).
    /// Not root: the shared filesystem (the daemon then uses inotify,
    /// which watches the tree alone).
    pub fn on_own_filesystem() -> Fixture {
        let mut fx = Fixture::new();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return fx;
        }
        let mount = Mount::tmpfs(fx.dir.path());
        fs::create_dir(&fx.src).expect("mkdir src on the tmpfs");
        fs::create_dir(&fx.dst).expect("mkdir dst on the tmpfs");
        fx.own_filesystem = Some(mount);
        fx
    }

    /// A path inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An rsync wrapper that logs one line per run to `rsync.calls` (its argv) and
    /// then runs the real rsync, so tests can count runs and read command lines.
    pub fn rsync_wrapper(&self) -> PathBuf {
        let wrapper = self.path("rsync-wrapper");
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            self.calls_log().display(),
            real_rsync().display()
        );
        fs::write(&wrapper, script).expect("write wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
        wrapper
    }

    /// Where the counting wrapper logs: also the one file outside a target a
    /// sandboxed rsync (or a test's own wrapper) may write.
    pub fn calls_log(&self) -> PathBuf {
        self.path("rsync.calls")
    }

    /// `inosyncd` in quick start from `src` to `dst`, on this fixture's socket and
    /// state file; not started, so a test can add environment or redirections.
    pub fn quick_start(&self) -> Command {
        let mut command = Command::new(bin("inosyncd"));
        command
            .args(backend_args())
            .arg("-s")
            .arg(&self.socket)
            .arg("--state")
            .arg(self.state_file())
            .arg(&self.src)
            .arg(&self.dst);
        command
    }

    /// Where the daemon under test keeps its runtime changes.
    pub fn state_file(&self) -> PathBuf {
        self.path("state.toml")
    }

    /// Leaves a record of a changed path `rel` of the source in the journal
    /// of changes not yet synced (`<state>.pending`, README "Command line"),
    /// as a daemon killed before syncing it would: a kill's window is too
    /// short to hit on purpose.
    pub fn leave_pending_path(&self, rel: &str) {
        self.leave_pending_record(b'P', rel.as_bytes());
    }

    /// Leaves one record of kind `kind` (`P` a path, `T` a tree, `I` a
    /// search for the names of a file, `DEV:INO`) in the journal of changes
    /// not yet synced, in place of what it held.
    pub fn leave_pending_record(&self, kind: u8, rel: &[u8]) {
        use std::os::unix::ffi::OsStrExt;
        let root = fs::canonicalize(&self.src).expect("canonical source");
        let record = [&[kind][..], root.as_os_str().as_bytes(), b"\0", rel, b"\0"].concat();
        let mut journal = self.state_file().into_os_string();
        journal.push(".pending");
        fs::write(journal, record).expect("write the journal");
    }

    /// The command lines the wrapper has seen so far.
    pub fn rsync_calls(&self) -> Vec<String> {
        // Lossy: an argument may be any bytes (a name that is not UTF-8).
        String::from_utf8_lossy(&fs::read(self.calls_log()).unwrap_or_default())
            .lines()
            .map(String::from)
            .collect()
    }

    /// Writes `config` (TOML) and starts the daemon on it.
    pub fn start_toml(&self, config: &str) -> Daemon {
        self.start_toml_with_env(config, &[])
    }

    /// [`Fixture::start_toml`] with extra environment variables for the daemon
    /// (the debug-build test switches).
    pub fn start_toml_with_env(&self, config: &str, env: &[(&str, &str)]) -> Daemon {
        let path = self.path("inosync.toml");
        fs::write(&path, config).expect("write config");
        let state = self.state_file();
        let args: [&OsStr; 4] = [
            "-c".as_ref(),
            path.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
        ];
        self.start_as("inosyncd", &self.socket, &args, env, false, &[])
    }

    /// Starts the daemon again on the config [`Fixture::start_toml`] wrote
    /// (`config`, written again) and the same state file, its log appended to
    /// the last one's: a restart after a crash.
    pub fn restart_toml(&self, config: &str) -> Daemon {
        let path = self.path("inosync.toml");
        fs::write(&path, config).expect("write config");
        let state = self.state_file();
        let args: [&OsStr; 4] = [
            "-c".as_ref(),
            path.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
        ];
        self.start_as("inosyncd", &self.socket, &args, &[], true, &[])
    }

    /// A TOML config: the given top-level lines, then one watch of `src` to `dst`.
    pub fn config(&self, top: &str) -> String {
        format!(
            "{top}\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n",
            self.src.display(),
            self.dst.display()
        )
    }

    /// [`Fixture::config`] with `delay = 0` and the given extra top-level lines.
    pub fn simple_config(&self, extra: &str) -> String {
        self.config(&format!("delay = 0\n{extra}"))
    }

    /// [`Fixture::config`] with this delay and the counting rsync wrapper.
    pub fn counted_config(&self, delay: f64) -> String {
        let wrapper = self.rsync_wrapper();
        self.config(&format!(
            "delay = {delay:?}\nrsync = \"{}\"",
            wrapper.display()
        ))
    }

    /// Quick start from `src` to `dst` with `--delay 0`, on this fixture's socket
    /// and state file, waiting until it answers.
    pub fn start_quick(&self) -> Daemon {
        self.start(&[
            "--delay".as_ref(),
            "0".as_ref(),
            self.src.as_os_str(),
            self.dst.as_os_str(),
        ])
    }

    /// Starts `inosyncd ARGS -s SOCKET --state STATE -v` and waits until it answers.
    pub fn start(&self, args: &[&OsStr]) -> Daemon {
        let state = self.state_file();
        self.start_raw(&[args, &["--state".as_ref(), state.as_os_str()]].concat())
    }

    /// Starts `inosyncd ARGS -s SOCKET -v` (no `--state`: the daemon's own default)
    /// and waits until it answers.
    pub fn start_raw(&self, args: &[&OsStr]) -> Daemon {
        self.start_as("inosyncd", &self.socket, args, &[], false, &[])
    }

    /// A second daemon beside the first: config `NAME.toml`, socket `NAME.sock`,
    /// state `NAME.state.toml`, log `NAME.log`, all in this fixture's directory.
    pub fn start_second(&self, name: &str, config: &str) -> Daemon {
        self.second(name, config, false)
    }

    /// [`Fixture::start_second`] again, same files, its log appended: a
    /// restart after a crash.
    pub fn restart_second(&self, name: &str, config: &str) -> Daemon {
        self.second(name, config, true)
    }

    fn second(&self, name: &str, config: &str, again: bool) -> Daemon {
        let path = self.path(&format!("{name}.toml"));
        fs::write(&path, config).expect("write config");
        let state = self.path(&format!("{name}.state.toml"));
        let socket = self.path(&format!("{name}.sock"));
        self.start_as(
            name,
            &socket,
            &[
                "-c".as_ref(),
                path.as_os_str(),
                "--state".as_ref(),
                state.as_os_str(),
            ],
            &[],
            again,
            &[],
        )
    }

    /// [`Fixture::start_toml`] with the daemon's descriptor limit set by
    /// `prlimit` (`soft:hard`), as a small `LimitNOFILE` would.
    pub fn start_toml_with_nofile(&self, config: &str, soft: u64, hard: u64) -> Daemon {
        let path = self.path("inosync.toml");
        fs::write(&path, config).expect("write config");
        let state = self.state_file();
        let args: [&OsStr; 4] = [
            "-c".as_ref(),
            path.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
        ];
        let limit = format!("--nofile={soft}:{hard}");
        let prefix: [&OsStr; 3] = ["prlimit".as_ref(), limit.as_ref(), "--".as_ref()];
        self.start_as("inosyncd", &self.socket, &args, &[], false, &prefix)
    }

    fn start_as(
        &self,
        name: &str,
        socket: &Path,
        args: &[&OsStr],
        env: &[(&str, &str)],
        append: bool,
        prefix: &[&OsStr],
    ) -> Daemon {
        let log = self.path(&format!("{name}.log"));
        let log_file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&log)
            .expect("create log");
        let chosen = args.iter().any(|a| *a == "--backend");
        // The counting rsync wrapper logs beside the trees: the one path outside
        // a target that a sandboxed rsync may write (debug builds honour this).
        let calls = self.calls_log();
        if !calls.exists() {
            let _ = fs::write(&calls, "");
        }
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(bin("inosyncd"));
                command
            }
            None => Command::new(bin("inosyncd")),
        };
        let child = command
            .env("INOSYNC_TEST_SANDBOX_WRITABLE", &calls)
            .envs(env.iter().copied())
            .args(args)
            .args(if chosen { Vec::new() } else { backend_args() })
            .arg("-s")
            .arg(socket)
            .arg(if std::env::var_os("INOSYNC_TRACE").is_some() {
                "-vv"
            } else {
                "-v"
            })
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("dup log"))
            .stderr(log_file)
            .spawn()
            .expect("start inosyncd");
        let mut daemon = Daemon {
            child: Some(child),
            socket: socket.to_path_buf(),
            log,
        };
        let up = poll_until(Duration::from_secs(20), || {
            daemon.has_exited() || daemon.ctl(&["status"]).status.success()
        });
        assert!(
            up && !daemon.has_exited(),
            "inosyncd did not start:\n{}",
            daemon.log()
        );
        daemon
    }
}

/// `--backend B` when the suite runs under one backend (`INOSYNC_TEST_BACKEND`:
/// CI runs every end-to-end test under inotify and again under fanotify).
pub fn backend_args() -> Vec<String> {
    match std::env::var("INOSYNC_TEST_BACKEND") {
        Ok(backend) if !backend.is_empty() => vec!["--backend".into(), backend],
        _ => Vec::new(),
    }
}

/// Asserts how much of a tree is watched, from its `status --json` entry: `dirs`
/// inotify watches, or none under fanotify (which needs none; `auto` is fanotify
/// as root, and `INOSYNC_TEST_BACKEND` may ask for either).
pub fn assert_watched(watch: &serde_json::Value, dirs: u64) {
    match std::env::var("INOSYNC_TEST_BACKEND").as_deref() {
        Ok("fanotify") => assert_eq!(watch["backend"], "fanotify", "{watch}"),
        Ok("inotify") => assert_eq!(watch["backend"], "inotify", "{watch}"),
        _ => {}
    }
    if watch["backend"] == "fanotify" {
        assert_eq!(watch["watched_dirs"], 0, "{watch}");
    } else {
        assert_eq!(watch["watched_dirs"], dirs, "{watch}");
    }
}

/// Runs `inosyncd ARGS` that must refuse to start: asserts it exits 1 within 20 s
/// (killing it otherwise) and returns its stderr.
pub fn refused_start(args: &[&OsStr]) -> String {
    let mut child = Command::new(bin("inosyncd"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inosyncd");
    let exited = poll_until(Duration::from_secs(20), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait for inosyncd");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        exited,
        "inosyncd {args:?} did not refuse to start: {stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "inosyncd {args:?}: {stderr}");
    stderr
}

/// A running inosyncd, killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    /// Its control socket.
    pub socket: PathBuf,
    log: PathBuf,
}

/// Runs `inosyncctl -s SOCKET ARGS`, for daemons a test started by hand (as
/// another user, in a namespace, with its own environment).
pub fn ctl_at(socket: &Path, args: &[&str]) -> Output {
    Command::new(bin("inosyncctl"))
        .arg("-s")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run inosyncctl")
}

impl Daemon {
    /// Runs `inosyncctl -s SOCKET ARGS`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl_at(&self.socket, args)
    }

    /// Runs `inosyncctl ARGS`, asserts it succeeded, returns its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "inosyncctl {args:?} failed ({}): {}\n--- daemon log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `inosyncctl ARGS`, asserts it failed with `code`, returns its stderr.
    pub fn ctl_fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "inosyncctl {args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits until nothing is pending or running, failing the test after 60 s.
    pub fn wait_idle(&self) {
        let out = self.ctl(&["wait", "--timeout", "60"]);
        assert!(
            out.status.success(),
            "inosyncctl wait failed ({}): {}\n--- daemon log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// `status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = self.ctl(&["--json", "status"]);
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process has ended.
    pub fn has_exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// SIGKILL (the OOM killer, a crash), and waits for it to be gone. Its
    /// children are left running, as they would be.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon still owned");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().expect("wait for inosyncd")
    }
}

impl Drop for Daemon {
    /// Kills the daemon and the process groups of its children: a test that
    /// ends leaves no rsync behind (one stuck opening a fifo would stay for
    /// good, its tree deleted).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            processes::kill_with_children(&mut child);
        }
    }
}
