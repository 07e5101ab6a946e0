//! The `.py` config reader: the README example, every variable, code refused with its line, garbage never a panic.

use super::*;

/// The example from inosync 0.2.3's README, with the watched path made real.
fn readme_example(wpath: &str) -> String {
    format!(
        r#"# array of directories that should be watched for changes
wpaths = ["{wpath}"]

# exclude list for rsync
rexcludes = [
	"/localhost",
]

# rpaths has one-to-one correspondence with wpaths for syncing multiple directories
rpaths = ["/var/www/"]

# remote locations in rsync syntax
rnodes = [
	"user1@a.mirror.com:",
	"user2@b.mirror.com:",
	"user3@c.mirror.com:",
]

# extra, raw parameters to rsync
#extra = "--rsh=ssh -a"

# limit remote sync speed (in KB/s, 0 = no limit)
#rspeed = 0

# event mask (only sync on these events)
#emask = [
#	"IN_CLOSE_WRITE",
#	"IN_CREATE",
#	"IN_DELETE",
#	"IN_MOVED_FROM",
#	"IN_MOVED_TO",
#]

# event delay in seconds (this prevents huge
# amounts of syncs, but dicreases the
# realtime side of things)
#edelay = 10

# rsync binary path
#rsync = "/usr/bin/rsync"
"#
    )
}

#[test]
fn readme_example_means_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let text = readme_example(&format!("{}/", dir.path().display()));
    let config = parse(Path::new("inosync.py"), &text).unwrap();
    assert_eq!(config.watches.len(), 1);
    assert_eq!(config.watches[0].path, dir.path().canonicalize().unwrap());
    assert_eq!(config.watches[0].remote_path, "/var/www/");
    assert_eq!(config.targets.len(), 3);
    assert_eq!(config.excludes, ["/localhost"]);
    assert_eq!(config.delay, 10.0);
    assert_eq!(config.events, EventSet::default());
    assert_eq!(
        super::super::destination(&config.targets[0], &config.watches[0].remote_path),
        "user1@a.mirror.com:/var/www/"
    );
}

#[test]
fn extra_is_split_as_a_shell_would() {
    let text = "wpaths = ['/tmp']\nrnodes = ['/t']\n\
                extra = \"--rsh='ssh -i key -o X=no' --compress\"\n";
    let config = parse(Path::new("x.py"), text).unwrap();
    assert_eq!(
        config.rsync_args,
        ["--rsh=ssh -i key -o X=no", "--compress"]
    );
    let err = parse(
        Path::new("x.py"),
        "wpaths = ['/tmp']\nrnodes = ['/t']\nextra = \"--rsh='ssh\"\n",
    )
    .unwrap_err();
    assert!(
        err.0.contains("x.py:3: extra: unbalanced quotes"),
        "{}",
        err.0
    );
}

#[test]
fn every_variable_reads() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "wpaths = ['{}']\nrnodes = ['/t']\nextra = \"--rsh=ssh -a\"\nrspeed = 100\n\
         edelay = 0.5\nemask = ['IN_CLOSE_WRITE']\nrsync = '/usr/bin/rsync'\n\
         logfile = '/var/log/inosync.log'\n",
        dir.path().display()
    );
    let config = parse(Path::new("c.py"), &text).unwrap();
    assert_eq!(config.rsync_args, ["--rsh=ssh", "-a"]);
    assert_eq!(config.speed, 100);
    assert_eq!(config.delay, 0.5);
    assert_eq!(config.events.names(), ["IN_CLOSE_WRITE"]);
}

#[test]
fn code_is_refused_with_its_line() {
    let err = parse(Path::new("c.py"), "rspeed = 1\nimport os\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("c.py:2:"), "{err}");
    let err = parse(Path::new("c.py"), "edelay = 1\nwpaths = os.listdir('/')\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("c.py:2:"), "{err}");
    let err = parse(Path::new("c.py"), "\n\nfoo = 1\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("c.py:3: foo: unknown variable"), "{err}");
}

#[test]
fn rpaths_must_match_wpaths() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "wpaths = ['{}']\nrpaths = ['/a', '/b']\nrnodes = ['/t']\n",
        dir.path().display()
    );
    let err = parse(Path::new("c.py"), &text).unwrap_err().to_string();
    assert!(err.contains("c.py:2: rpaths"), "{err}");
}

#[test]
fn garbage_never_panics() {
    for text in [
        "[",
        "a =",
        "a = [",
        "a = ['x',",
        "'",
        "a = 1 2",
        "= 3",
        "a = [1]",
        "\\x",
    ] {
        assert!(parse(Path::new("c.py"), text).is_err(), "{text:?}");
    }
}
