//! Every way a run can end that the daemon knows, as one table: the ending, what
//! rsync (or ssh) printed, where it ran, and what that must mean.

use std::path::Path;
use std::time::Duration;

use super::*;

const SOURCE: &str = "/srv/www";
const LOCAL: &str = "/mnt/mirror/www/";
const SSH: &str = "backup@m1:/srv/www/";

/// Where a row's run went and how it was confined.
#[derive(Clone, Copy)]
enum Where {
    /// A local target, in the sandbox.
    Local,
    /// A local target, unconfined.
    LocalOff,
    /// A local target that resolved into a watched tree: no write at all.
    LocalNoWrite,
    /// An ssh target, in the sandbox.
    Ssh,
    /// An ssh target, unconfined.
    SshOff,
}

/// What a row's run was given.
#[derive(Clone, Copy)]
enum Given {
    Paths(&'static [&'static str]),
    Whole,
    Guarded,
    Trees,
}

struct Row {
    name: &'static str,
    ending: Ending,
    lines: &'static [&'static str],
    at: Where,
    given: Given,
    /// `synced`, `partial`, `refused`, `transient`, `race`, `misconfiguration`,
    /// `source empty`, `interrupted`.
    expect: &'static str,
    /// For `partial`: the held paths.
    held: &'static [&'static str],
    /// Words the cause must hold (for the failed kinds).
    cause: &'static [&'static str],
    /// How many refusals beside the transfer are reported.
    beside: usize,
}

fn row(name: &'static str, ending: Ending, lines: &'static [&'static str]) -> Row {
    Row {
        name,
        ending,
        lines,
        at: Where::Local,
        given: Given::Paths(&["a", "dir/b", "c"]),
        expect: "synced",
        held: &[],
        cause: &[],
        beside: 0,
    }
}

impl Row {
    fn at(mut self, at: Where) -> Row {
        self.at = at;
        self
    }
    fn given(mut self, given: Given) -> Row {
        self.given = given;
        self
    }
    fn expect(mut self, expect: &'static str, cause: &'static [&'static str]) -> Row {
        self.expect = expect;
        self.cause = cause;
        self
    }
    fn held(mut self, held: &'static [&'static str]) -> Row {
        self.expect = "partial";
        self.held = held;
        self
    }
    fn beside(mut self, beside: usize) -> Row {
        self.beside = beside;
        self
    }
}

fn kind(result: &RunResult) -> &'static str {
    match result {
        RunResult::Synced => "synced",
        RunResult::Partial { .. } => "partial",
        RunResult::Refused { .. } => "refused",
        RunResult::Failed {
            class: FailureClass::Transient,
            ..
        } => "transient",
        RunResult::Failed {
            class: FailureClass::Race,
            ..
        } => "race",
        RunResult::Failed {
            class: FailureClass::Misconfiguration,
            ..
        } => "misconfiguration",
        RunResult::SourceEmpty => "source empty",
        RunResult::Interrupted => "interrupted",
    }
}

fn table() -> Vec<Row> {
    use Ending::*;
    vec![
        row("exit 0", Exited(0), &[]),
        row(
            "exit 24: vanished files are looked at again",
            Exited(24),
            &[
                "file has vanished: \"/srv/www/dir/b\"",
                "rsync warning: some files vanished before they could be transferred (code 24)",
            ],
        ),
        row(
            "exit 2, the tree changed under the sender: a race",
            Exited(2),
            &["ABORTING due to invalid path from sender: dir/b/x"],
        )
        .expect("race", &["exited with 2"]),
        row(
            "exit 2 otherwise: protocol trouble",
            Exited(2),
            &["rsync error: protocol incompatibility (code 2)"],
        )
        .expect("misconfiguration", &["protocol incompatibility"]),
        row(
            "exit 25 on a guarded full sync: the empty source is held",
            Exited(25),
            &["Deletions stopped due to --max-delete limit (1 skipped)"],
        )
        .given(Given::Guarded)
        .expect("source empty", &[]),
        row(
            "exit 25 of the user's own --max-delete",
            Exited(25),
            &["Deletions stopped due to --max-delete limit (1 skipped)"],
        )
        .given(Given::Whole)
        .expect("misconfiguration", &["max-delete"]),
        row(
            "exit 23 naming a listed path: held, the rest synced",
            Exited(23),
            &[
                "rsync: [receiver] rename \"/mnt/mirror/www/dir/.b.x1\" -> \"dir/b\": Operation not permitted (1)",
                "rsync error: some files/attrs were not transferred (see previous errors) (code 23)",
            ],
        )
        .held(&["dir/b"]),
        row(
            "exit 23 naming the temp file of a listed file beside another: both held",
            Exited(23),
            &[
                "rsync: [receiver] mkstemp \"/mnt/mirror/www/dir/.b.AbCd12\" failed: Permission denied (13)",
                "rsync: [sender] send_files failed to open \"/srv/www/c\": Permission denied (13)",
                "rsync error: some files/attrs were not transferred (see previous errors) (code 23)",
            ],
        )
        .held(&["dir/b", "c"]),
        row(
            "exit 23 of a read-only target: the run fails as a whole",
            Exited(23),
            &[
                "rsync: [generator] recv_generator: mkdir \"/mnt/mirror/www/dir\" failed: Read-only file system (30)",
                "rsync: [receiver] mkstemp \"/mnt/mirror/www/.c.AbCd12\" failed: Read-only file system (30)",
                "rsync error: some files/attrs were not transferred (see previous errors) (code 23)",
            ],
        )
        .expect("transient", &["Read-only file system (30)"]),
        row(
            "exit 23 of a full target: the run fails as a whole",
            Exited(23),
            &[
                "rsync: [receiver] mkstemp \"/mnt/mirror/www/dir/.b.AbCd12\" failed: No space left on device (28)",
                "rsync error: some files/attrs were not transferred (see previous errors) (code 23)",
            ],
        )
        .expect("transient", &["No space left on device (28)"]),
        row(
            "exit 23 naming nothing listed: the batch failed",
            Exited(23),
            &[
                "rsync: [sender] link_stat \"/srv/www/elsewhere\" failed: No such file or directory (2)",
                "rsync error: some files/attrs were not transferred (see previous errors) (code 23)",
            ],
        )
        .expect("transient", &["elsewhere"]),
        row(
            "exit 23 of a full sync: every named path is held",
            Exited(23),
            &["rsync: [sender] send_files failed to open \"/srv/www/locked\": Permission denied (13)"],
        )
        .given(Given::Whole)
        .held(&["locked"]),
        row(
            "exit 23 comparing renamed trees: nothing is held alone",
            Exited(23),
            &["rsync: [receiver] mkstemp \"/mnt/mirror/www/moved/.f.x1\" failed: Operation not permitted (1)"],
        )
        .given(Given::Trees)
        .expect("transient", &["mkstemp"]),
        row(
            "--remove-source-files in the sandbox: the transfer was done",
            Exited(23),
            &[
                "rsync: [sender] sender failed to remove a: Permission denied (13)",
                "rsync error: some files/attrs were not transferred (see previous errors) (code 23)",
            ],
        )
        .beside(1),
        row(
            "--remove-source-files refused by the filesystem, not the sandbox",
            Exited(23),
            &["rsync: [sender] sender failed to remove a: Permission denied (13)"],
        )
        .at(Where::LocalOff)
        .expect("transient", &["failed to remove"]),
        row(
            "--log-file outside the mirror: rsync goes on without it",
            Exited(0),
            &[
                "rsync: [client] failed to open log-file /var/log/x.log: Permission denied (13)",
                "Ignoring \"log file\" setting.",
            ],
        )
        .beside(1),
        row(
            "--temp-dir outside the mirror: the transfer itself was refused",
            Exited(23),
            &[
                "rsync: [receiver] mkstemp \"/outside/a.hlqNDG\" failed: Permission denied (13)",
                "rsync: [receiver] mkstemp \"/outside/b.0lD741\" failed: Permission denied (13)",
                "rsync error: some files/attrs were not transferred (see previous errors) (code 23)",
            ],
        )
        .expect("refused", &["refused by the sandbox", "/outside/a.hlqNDG"]),
        row(
            "--temp-dir outside, relative to the target",
            Exited(23),
            &["rsync: [receiver] mkstemp \"../tmp/a.hlqNDG\" failed: Permission denied (13)"],
        )
        .expect("refused", &["refused by the sandbox"]),
        row(
            "--temp-dir refused by the filesystem, not the sandbox",
            Exited(23),
            &["rsync: [receiver] mkstemp \"/outside/a.hlqNDG\" failed: Permission denied (13)"],
        )
        .at(Where::LocalOff)
        .expect("transient", &["mkstemp"]),
        row(
            "--backup-dir outside: refused before rsync started",
            Refused("refused by the sandbox before starting: --backup-dir=/outside".into()),
            &[],
        )
        .expect("refused", &["--backup-dir=/outside"]),
        row(
            "--backup-dir outside without the sandbox: exit 11, no line",
            Exited(11),
            &["rsync error: error in file IO (code 11) at rsync.c(742) [receiver=3.2.7]"],
        )
        .at(Where::LocalOff)
        .expect("transient", &["error in file I/O"]),
        row(
            "a target link re-pointed into the source: refused before starting",
            Refused("the destination /mnt/mirror/www/ now resolves to /srv/www/inner".into()),
            &[],
        )
        .expect("refused", &["now resolves to"]),
        row(
            "a target with no write access (it resolved into a watched tree)",
            Exited(23),
            &["rsync: [receiver] mkstemp \"/mnt/mirror/www/.f4.x1\" failed: Permission denied (13)"],
        )
        .at(Where::LocalNoWrite)
        .expect("refused", &["refused by the sandbox"]),
        row(
            "a target with no write access, other failure",
            Exited(11),
            &["rsync: [receiver] mkdir \"/mnt/mirror/www/d\" failed: Permission denied (13)"],
        )
        .at(Where::LocalNoWrite)
        .expect("refused", &["refused by the sandbox"]),
        row(
            "EACCES on the remote receiver is not the sandbox's",
            Exited(23),
            &["rsync: [receiver] mkstemp \"/srv/www/.a.x1\" failed: Permission denied (13)"],
        )
        .at(Where::Ssh)
        .expect("transient", &["mkstemp"]),
        row(
            "ssh refused a key read by the sandbox",
            Exited(255),
            &[
                "Load key \"/etc/inosync/keys/id\": Permission denied",
                "backup@m1: Permission denied (publickey).",
                "rsync: connection unexpectedly closed (0 bytes received so far) [sender]",
            ],
        )
        .at(Where::Ssh)
        .expect("refused", &["sandbox", "/etc/inosync/keys/id", "--rsh"]),
        // rsync may see the pipe close before it reaps ssh: exit 12, not 255
        // (the CI rehearsal: `a_key_the_sandbox_does_not_know_is_named_as_refused`
        // failed once that way).
        row(
            "ssh refused a key read by the sandbox, rsync exiting 12",
            Exited(12),
            &[
                "Load key \"/etc/inosync/keys/id\": Permission denied",
                "backup@m1: Permission denied (publickey).",
                "rsync: connection unexpectedly closed (0 bytes received so far) [sender]",
                "rsync error: error in rsync protocol data stream (code 12) at io.c(285) [sender=3.5.0]",
            ],
        )
        .at(Where::Ssh)
        .expect("refused", &["sandbox", "/etc/inosync/keys/id", "--rsh"]),
        row(
            "ssh failed in the sandbox without a refused read",
            Exited(255),
            &[
                "ssh: connect to host m1 port 22: Connection refused",
                "rsync: connection unexpectedly closed (0 bytes received so far) [sender]",
            ],
        )
        .at(Where::Ssh)
        .expect("transient", &["remote shell", "no file the sandbox kept it from reading"]),
        row(
            "ssh failed unconfined",
            Exited(255),
            &["backup@m1: Permission denied (publickey)."],
        )
        .at(Where::SshOff)
        .expect("transient", &["remote shell"]),
        row(
            "a full disk",
            Exited(11),
            &[
                "rsync: [receiver] write failed on \"/mnt/mirror/www/big\": No space left on device (28)",
                "rsync error: error in file IO (code 11) at receiver.c(381) [receiver=3.5.0]",
            ],
        )
        .expect("transient", &["No space left on device (28)"]),
        row(
            "a connection refused by an rsync daemon",
            Exited(10),
            &["rsync: failed to connect to 127.0.0.1 (127.0.0.1): Connection refused (111)"],
        )
        .expect("transient", &["socket I/O"]),
        // A busy answer, not a configuration to fix: it was retried from
        // 30 s, and each change to the modules of a daemon with `max
        // connections = 2` took 33 to 36 s (a black-box attack).
        row(
            "an rsync daemon at its max connections: busy, try again",
            Exited(5),
            &[
                "@ERROR: max connections (2) reached -- try again later",
                "rsync error: error starting client-server protocol (code 5) at main.c(1850) [sender=3.2.7]",
            ],
        )
        .expect("transient", &["max connections"]),
        row(
            "an rsync daemon's unknown module: for an administrator",
            Exited(5),
            &[
                "@ERROR: Unknown module 'www'",
                "rsync error: error starting client-server protocol (code 5) at main.c(1850) [sender=3.2.7]",
            ],
        )
        .expect("misconfiguration", &["Unknown module"]),
        row(
            "no rsync binary",
            NotStarted("cannot start /usr/bin/rsync: No such file or directory".into()),
            &[],
        )
        .expect("misconfiguration", &["cannot start"]),
        row(
            "the source removed or replaced by a symlink as its view was made",
            SourceChanged(
                "the source changed as rsync was started (removed, moved or replaced by a \
                 symlink?): cannot open /srv/www: Too many levels of symbolic links (os error 40)"
                    .into(),
            ),
            &[],
        )
        .expect("race", &["changed as rsync was started"]),
        row("hung", Hung(Duration::from_secs(1200)), &[]).expect("transient", &["watchdog"]),
        row("stuck opening a fifo that took a listed file's place", StuckOnFifo, &[])
            .expect("transient", &["fifo"]),
        // A full sync whose deletions an unreadable path stopped: the path is
        // held (and the pair runs it again without it, see `pair`).
        row(
            "filename overflow in a full sync",
            Exited(23),
            &[
                "filename overflows max-path len by 125: deep/er",
                "IO error encountered -- skipping file deletion",
                "rsync error: some files/attrs were not transferred (see previous errors) (code 23)",
            ],
        )
        .given(Given::Whole)
        .held(&["deep/er"]),
        row("killed by someone else", Signalled("signal: 9".into()), &[])
            .expect("transient", &["signal"]),
        row("stopped by us", Stopped, &[]).expect("interrupted", &[]),
        row("--pretend", Pretended, &[]),
    ]
}

#[test]
fn every_known_ending_is_classified_as_the_table_says() {
    for r in table() {
        let mut stderr = Stderr::default();
        for line in r.lines {
            stderr.push(line.to_string());
        }
        let listed: Vec<Vec<u8>>;
        let (destination, local, remote_shell, confinement) = match r.at {
            Where::Local => (LOCAL, true, false, sandboxed(true)),
            Where::LocalOff => (LOCAL, true, false, Confinement::None),
            Where::LocalNoWrite => (LOCAL, true, false, sandboxed(false)),
            Where::Ssh => (SSH, false, true, sandboxed(true)),
            Where::SshOff => (SSH, false, true, Confinement::None),
        };
        let (listed_as, guarded) = match r.given {
            Given::Paths(paths) => {
                listed = paths.iter().map(|p| p.as_bytes().to_vec()).collect();
                (Listed::Paths(&listed), false)
            }
            Given::Whole => (Listed::Whole, false),
            Given::Guarded => (Listed::Whole, true),
            Given::Trees => (Listed::Trees, false),
        };
        let context = Context {
            source: Path::new(SOURCE),
            destination,
            local,
            remote_shell,
            listed: listed_as,
            guarded,
            confinement,
            target_read_only: None,
        };
        let got = classify(&r.ending, &stderr, &context);
        assert_eq!(kind(&got.result), r.expect, "{}: {got:?}", r.name);
        let cause = match &got.result {
            RunResult::Partial { held, cause } => {
                let held: Vec<String> = held
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                assert_eq!(held, r.held, "{}", r.name);
                cause.clone()
            }
            RunResult::Refused { cause } | RunResult::Failed { cause, .. } => cause.clone(),
            _ => String::new(),
        };
        for word in r.cause {
            assert!(
                cause.contains(word),
                "{}: {word:?} not in {cause:?}",
                r.name
            );
        }
        assert_eq!(got.refused_beside.len(), r.beside, "{}: {got:?}", r.name);
        // Only a full target sweeps the leftovers at once (`rsync::run`).
        assert_eq!(
            got.result.target_full(),
            r.name == "a full disk" || r.name.contains("of a full target"),
            "{}: {got:?}",
            r.name
        );
    }
}

#[test]
fn vanished_paths_come_back_with_the_result() {
    let mut stderr = Stderr::default();
    stderr.push("file has vanished: \"/srv/www/gone\"".into());
    let context = Context {
        source: Path::new(SOURCE),
        destination: LOCAL,
        local: true,
        remote_shell: false,
        listed: Listed::Whole,
        guarded: false,
        confinement: Confinement::None,
        target_read_only: None,
    };
    let got = classify(&Ending::Exited(24), &stderr, &context);
    assert_eq!(got.vanished, [b"gone".to_vec()]);
}

#[test]
fn named_paths_match_listed_ones_by_component() {
    let listed: Vec<Vec<u8>> = ["a", "ab", "d/x", "d/y", "q"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let named: Vec<Vec<u8>> = ["a/inner", "d", ".tmp.q"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let held: Vec<String> = named_in(&listed, &named)
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(held, ["a", "d/x", "d/y"]);
}

fn sandboxed(target_writable: bool) -> Confinement {
    Confinement::Sandboxed { target_writable }
}
