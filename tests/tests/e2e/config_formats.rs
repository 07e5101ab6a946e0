//! Both config formats: inosync's `.py` loads and means the same; bad configs are
//! refused with the file, line and key named.

use std::fs;
use std::process::Command;

use inosync_tests::{Fixture, assert_trees_equal, bin, run_ok};

#[test]
fn inosync_py_config_syncs_like_inosync() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.src.join("localhost")).unwrap();
    fs::write(fx.src.join("localhost/private"), "excluded by rexcludes").unwrap();
    fs::write(fx.src.join("index.html"), "hello").unwrap();
    let config = fx.path("inosync.py");
    fs::write(
        &config,
        format!(
            "# inosync config\nwpaths = [\"{}/\"]\n\nrexcludes = [\n\t\"/localhost\",\n]\n\
             rpaths = [\"\"]\nrnodes = [\n\t\"{}/\",\n]\n#extra = \"--rsh=ssh -a\"\nrspeed = 0\nedelay = 0\n",
            fx.src.display(),
            fx.dst.display()
        ),
    )
    .unwrap();
    let daemon = fx.start(&["-c".as_ref(), config.as_os_str()]);
    daemon.wait_idle();
    fs::write(fx.src.join("localhost/more"), "still excluded").unwrap();
    fs::create_dir(fx.src.join("blog")).unwrap();
    fs::write(fx.src.join("blog/post"), "post").unwrap();
    daemon.wait_idle();
    assert!(!fx.dst.join("localhost").exists(), "rexcludes ignored");
    fs::remove_dir_all(fx.src.join("localhost")).unwrap();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
}

fn check(config_name: &str, text: &str) -> (bool, String, String) {
    let fx = Fixture::new();
    let path = fx.path(config_name);
    fs::write(&path, text.replace("SRC", &fx.src.display().to_string())).unwrap();
    let out = Command::new(bin("inosyncd"))
        .arg("--check")
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_prints_effective_settings_of_the_inosync_readme_example() {
    let (ok, stdout, stderr) = check(
        "inosync.py",
        "wpaths = [\"SRC/\"]\nrexcludes = [\n\t\"/localhost\",\n]\nrpaths = [\"/var/www/\"]\n\
         rnodes = [\n\t\"user1@a.mirror.com:\",\n\t\"user2@b.mirror.com:\",\n\t\"user3@c.mirror.com:\",\n]\n\
         #extra = \"--rsh=ssh -a\"\n#edelay = 10\n",
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("user1@a.mirror.com:/var/www/"), "{stdout}");
    assert!(stdout.contains("delay = 10.0"), "{stdout}");
    assert!(stdout.contains("excludes = [\"/localhost\"]"), "{stdout}");
    // No emask given: the default, which mirrors chmod.
    assert!(stdout.contains("IN_ATTRIB"), "{stdout}");
    assert!(!stdout.contains("no IN_ATTRIB"), "{stdout}");
    assert!(stdout.contains("IN_MODIFY"), "{stdout}");
    assert!(!stdout.contains("no IN_MODIFY"), "{stdout}");
    // Drift heals by itself within a day (verify_interval's default).
    assert!(stdout.contains("verify_interval = 86400.0"), "{stdout}");
}

#[test]
fn check_says_when_an_emask_will_not_mirror_mode_changes() {
    let (ok, stdout, stderr) = check(
        "inosync.py",
        "wpaths = [\"SRC/\"]\nrpaths = [\"/var/www/\"]\nrnodes = [\"m:\"]\n\
         emask = [\"IN_CLOSE_WRITE\", \"IN_CREATE\"]\n",
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("events = [\"IN_CLOSE_WRITE\", \"IN_CREATE\"]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no IN_ATTRIB: chmod, chown and touch are not mirrored"),
        "{stdout}"
    );
    assert!(stdout.contains("no IN_MODIFY"), "{stdout}");
}

#[test]
fn bad_configs_are_refused_with_file_line_and_key() {
    let cases = [
        ("c.toml", "delay = 1\nbogus = 2\n", "line 2"),
        ("c.toml", "delay = \"soon\"\n", "delay"),
        (
            "c.toml",
            "targets = [\"/t\"]\n[[watch]]\npath = \"relative/dir\"\n",
            "c.toml:3: watch.path",
        ),
        (
            "c.toml",
            "targets = [\"/t\"]\n[[watch]]\npath = \"/no/such/dir\"\n",
            "c.toml:3: watch.path",
        ),
        ("c.toml", "[[watch]]\npath = \"SRC\"\n", "no target"),
        (
            "c.toml",
            "targets = [\"/t\"]\n[[watch]]\npath = \"SRC\"\n[[watch]]\npath = \"SRC\"\n",
            "c.toml:4",
        ),
        ("c.toml", "events = [\"IN_NOPE\"]\n", "IN_NOPE"),
        // No event that reports a write: nothing changed would ever be synced.
        ("c.toml", "events = []\n", "c.toml:1: events"),
        (
            "c.py",
            "emask = [\"IN_ATTRIB\"]\n",
            "IN_CLOSE_WRITE or IN_MODIFY",
        ),
        ("c.toml", "excludes = [\"a**b\"]\n", "c.toml:1: excludes"),
        ("c.py", "wpaths = [\"SRC\"]\nimport os\n", "c.py:2"),
        (
            "c.py",
            "wpaths = [\"SRC\"]\nrnodes = [\"/t\"]\nrpaths = [\"/a\", \"/b\"]\n",
            "c.py:3: rpaths",
        ),
        // rsync_args that would break the mirror, global or the watch's, in
        // either format (each was taken as given before).
        (
            "c.toml",
            "targets = [\"/t\"]\nrsync_args = [\"-avn\"]\n[[watch]]\npath = \"SRC\"\n",
            "c.toml:3: [[watch]]: rsync_args has \"-avn\" (--dry-run)",
        ),
        (
            "c.toml",
            "targets = [\"/t\"]\n[[watch]]\npath = \"SRC\"\nrsync_args = [\"--files-from=/l\"]\n",
            "(--files-from): the daemon hands rsync the changed paths itself",
        ),
        (
            "c.py",
            "wpaths = [\"SRC\"]\nrnodes = [\"/t\"]\nrpaths = [\"/a\"]\nextra = \"--remove-source-files\"\n",
            "(--remove-source-files)",
        ),
        // A remote shell for ssh targets would take an rsync:// target over
        // ssh, to that host's module of the same name (found by a black-box
        // attack: written there, reported as synced).
        (
            "c.toml",
            "targets = [\"rsync://127.0.0.1:1/m/\"]\nrsync_args = [\"--rsh=ssh -p 2222\"]\n[[watch]]\npath = \"SRC\"\n",
            "is an rsync daemon: rsync would reach it through that remote shell",
        ),
    ];
    for (name, text, expected) in cases {
        let (ok, _, stderr) = check(name, text);
        assert!(!ok, "{text:?} was accepted");
        assert!(
            stderr.contains(expected),
            "{text:?}: expected {expected:?} in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn config_without_watches_starts_idle() {
    let fx = Fixture::new();
    let daemon = fx.start_toml("delay = 1\n");
    daemon.wait_idle();
    let status = daemon.status();
    assert_eq!(
        status["watches"].as_array().map(Vec::len),
        Some(0),
        "{status}"
    );
}

#[test]
fn convert_prints_toml_that_checks_to_the_same_destinations() {
    let fx = Fixture::new();
    let py = fx.path("inosync.py");
    fs::write(
        &py,
        format!(
            "wpaths = [\"{}/\"]\nrpaths = [\"/var/www/\"]\nrnodes = [\"user1@a.mirror.com:\", \"user2@b.mirror.com:\"]\n\
             rexcludes = [\"/localhost\"]\nextra = \"--rsh=ssh -a\"\nedelay = 3\n",
            fx.src.display()
        ),
    )
    .unwrap();
    let out = run_ok(Command::new(bin("inosyncd")).arg("--convert").arg(&py));
    let toml = fx.path("inosync.toml");
    fs::write(&toml, &out.stdout).unwrap();
    let checked = |path: &std::path::Path| {
        let out = run_ok(
            Command::new(bin("inosyncd"))
                .arg("--check")
                .arg("-c")
                .arg(path),
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("# effective settings"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(checked(&py), checked(&toml));
    assert!(String::from_utf8_lossy(&out.stdout).contains("user1@a.mirror.com:"));
    let bad = Command::new(bin("inosyncd"))
        .arg("--convert")
        .arg(fx.path("missing.py"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

/// `[[watch]] rsync_args` apply to that tree's runs, after the global ones (as
/// lsyncd's per-`sync{}` rsync options): here `--chmod` shows on the target.
#[test]
fn per_watch_rsync_args_apply_to_that_watch() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let wrapper = fx.rsync_wrapper();
    let config = format!(
        "delay = 0\nrsync = \"{}\"\nrsync_args = [\"--omit-dir-times\"]\n\n[[watch]]\npath = \"{}\"\n\
         remote_path = \"\"\ntargets = [\"{}/\"]\nrsync_args = [\"--chmod=F640\"]\n",
        wrapper.display(),
        fx.src.display(),
        fx.dst.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    std::fs::write(fx.src.join("f"), "x").unwrap();
    std::fs::set_permissions(fx.src.join("f"), std::fs::Permissions::from_mode(0o644)).unwrap();
    daemon.wait_idle();
    let mode = std::fs::metadata(fx.dst.join("f"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    let call = fx.rsync_calls().last().cloned().unwrap_or_default();
    let global = call.find("--omit-dir-times");
    let own = call.find("--chmod=F640");
    assert!(global.is_some() && own.is_some() && global < own, "{call}");
}

/// An inosync config's `-a` or `-r` in `rsync_args` (its `extra = "-a ..."`)
/// leaves a batch what it is: the listed paths, not every file below a
/// listed directory, seen here through the user's `--delete`.
#[test]
fn a_users_archive_or_recursive_option_does_not_make_a_batch_walk_its_directories() {
    use std::os::unix::fs::PermissionsExt;
    for option in ["-a", "-r"] {
        let fx = Fixture::new();
        std::fs::create_dir(fx.src.join("d")).unwrap();
        std::fs::write(fx.src.join("d/f"), "x").unwrap();
        let daemon =
            fx.start_toml(&fx.simple_config(&format!("rsync_args = [\"{option}\", \"--delete\"]")));
        daemon.wait_idle();
        // Kept on the target on purpose (a batch leaves alone what it does
        // not list), then the directory's mode changes: the batch lists `d`.
        std::fs::write(fx.dst.join("d/kept"), "target only").unwrap();
        std::fs::set_permissions(fx.src.join("d"), std::fs::Permissions::from_mode(0o750)).unwrap();
        daemon.wait_idle();
        let mode = std::fs::metadata(fx.dst.join("d"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o750, "{option}: {}", daemon.log());
        assert!(
            fx.dst.join("d/kept").exists(),
            "{option}: the batch walked d and deleted what it does not list\n{}",
            daemon.log()
        );
    }
}

/// With a `--partial-dir` of the user's, theirs is the name never mirrored,
/// by a batch as by a full sync, and `.inosync-partial` is content like any
/// other.
#[test]
fn a_users_own_partial_directory_is_the_one_never_mirrored() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.src.join("d/.mine")).unwrap();
    std::fs::create_dir_all(fx.src.join("d/.inosync-partial")).unwrap();
    let daemon = fx.start_toml(&fx.simple_config("rsync_args = [\"--partial-dir=.mine\"]"));
    daemon.wait_idle();
    std::fs::write(fx.src.join("d/.mine/x"), "theirs: not mirrored").unwrap();
    std::fs::write(fx.src.join("d/.inosync-partial/y"), "content").unwrap();
    std::fs::write(fx.src.join("d/z"), "content").unwrap();
    daemon.wait_idle();
    assert!(fx.dst.join("d/z").exists(), "{}", daemon.log());
    assert!(
        !fx.dst.join("d/.mine/x").exists(),
        "a batch mirrored what a full sync leaves out\n{}",
        daemon.log()
    );
    assert_eq!(
        std::fs::read_to_string(fx.dst.join("d/.inosync-partial/y"))
            .ok()
            .as_deref(),
        Some("content"),
        "{}",
        daemon.log()
    );
}

/// A rule file of the user's (`--exclude-from=FILE`, one pattern a line, as
/// lsyncd's `filterFrom` converts to `--filter=merge FILE`) keeps protecting
/// what it matches in the daemon's deletion runs, whose own rules come on
/// stdin: read NUL-separated (`--from0`), rsync read the user's file that way
/// too, as one pattern that matched nothing.
#[test]
fn a_users_rule_file_protects_in_deletion_runs() {
    for option in ["--filter=merge", "--exclude-from"] {
        let fx = Fixture::new();
        let rules = fx.path("rules");
        // An exclude file holds patterns, a merge file rules.
        let rule = if option == "--exclude-from" {
            "*.tmp"
        } else {
            "- *.tmp"
        };
        std::fs::write(&rules, format!("# kept on the mirror\n{rule}\n")).unwrap();
        std::fs::create_dir(fx.src.join("d")).unwrap();
        std::fs::write(fx.src.join("d/a"), "a").unwrap();
        let arg = match option {
            "--exclude-from" => format!("--exclude-from={}", rules.display()),
            _ => format!("--filter=merge {}", rules.display()),
        };
        // The sandbox lets rsync read the source and the system, not the
        // test's directory (a real rule file lives in /etc).
        let daemon =
            fx.start_toml(&fx.simple_config(&format!("sandbox = \"off\"\nrsync_args = [{arg:?}]")));
        daemon.wait_idle();
        // The target's own file, protected by the user's rule.
        std::fs::write(fx.dst.join("d/kept.tmp"), "the mirror's own").unwrap();
        // Made and deleted in the source: its deletion is listed.
        std::fs::write(fx.src.join("d/kept.tmp"), "x").unwrap();
        std::fs::remove_file(fx.src.join("d/kept.tmp")).unwrap();
        std::fs::remove_file(fx.src.join("d/a")).unwrap();
        daemon.wait_idle();
        assert!(!fx.dst.join("d/a").exists(), "{option}: {}", daemon.log());
        assert_eq!(
            std::fs::read_to_string(fx.dst.join("d/kept.tmp"))
                .ok()
                .as_deref(),
            Some("the mirror's own"),
            "{option}: a deletion run deleted what the user's rules protect\n{}",
            daemon.log()
        );
    }
}
