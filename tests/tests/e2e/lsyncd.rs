//! Coming from lsyncd: `--convert` of a Lua config, and the two things its
//! users rely on, `delete = false | "startup" | "running"` and `exclude_from`,
//! on real trees (README "lsyncd configs", docs/MIGRATING.md).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use inosync_tests::{Fixture, assert_trees_equal, bin, poll_until, refused_start, run_ok};

/// `inosyncd --convert FILE`: (exit code, stdout, stderr).
fn convert(file: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(bin("inosyncd"))
        .arg("--convert")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An lsyncd config for the fixture: `src` mirrored to `dst` with excludes,
/// and `archive` kept in `archive-dst` with `delete = false`.
fn lsyncd_config(fx: &Fixture) -> String {
    format!(
        r#"-- lsyncd.conf.lua
settings {{
    logfile = "{root}/lsyncd.log",
    statusFile = "{root}/lsyncd.status",
    nodaemon = true,
}}
local skip = {{ "*.tmp", "/cache/" }}
local trees = {{
    {{ src = "{src}", dst = "{dst}/", delete = true }},
    {{ src = "{root}/archive", dst = "{root}/archive-dst/", delete = false }},
}}
for _, t in ipairs(trees) do
    sync {{
        default.rsync,
        source = t.src,
        target = t.dst,
        exclude = skip,
        delete = t.delete,
        delay = 0,
        rsync = {{ archive = true, _extra = {{ "--omit-dir-times" }} }},
    }}
end
"#,
        root = fx.path("").display().to_string().trim_end_matches('/'),
        src = fx.src.display(),
        dst = fx.dst.display(),
    )
}

#[test]
fn a_converted_lsyncd_config_runs_as_lsyncd_would() {
    let fx = Fixture::new();
    let archive = fx.path("archive");
    let archive_dst = fx.path("archive-dst");
    fs::create_dir_all(&archive).unwrap();
    fs::create_dir_all(&archive_dst).unwrap();
    fs::write(fx.src.join("index.html"), "hello").unwrap();
    fs::write(archive.join("2024.log"), "old year").unwrap();
    let lua = fx.path("lsyncd.conf.lua");
    fs::write(&lua, lsyncd_config(&fx)).unwrap();

    let (code, toml, stderr) = convert(&lua);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(toml.contains("delete = false"), "{toml}");
    assert!(toml.contains("# statusFile"), "{toml}");
    let toml_file = fx.path("converted.toml");
    fs::write(&toml_file, &toml).unwrap();
    run_ok(
        Command::new(bin("inosyncd"))
            .arg("--check")
            .arg("-c")
            .arg(&toml_file),
    );

    let daemon = fx.start_toml(&toml);
    daemon.wait_idle();
    assert!(archive_dst.join("2024.log").exists(), "{}", daemon.log());
    fs::write(fx.src.join("draft.tmp"), "excluded").unwrap();
    fs::create_dir(fx.src.join("cache")).unwrap();
    fs::write(fx.src.join("cache/x"), "excluded").unwrap();
    fs::write(fx.src.join("page.html"), "new page").unwrap();
    fs::remove_file(fx.src.join("index.html")).unwrap();
    fs::remove_file(archive.join("2024.log")).unwrap();
    fs::write(archive.join("2025.log"), "this year").unwrap();
    fs::rename(archive.join("2025.log"), archive.join("2025-final.log")).unwrap();
    daemon.wait_idle();

    // The mirror follows the source, excludes and all.
    assert!(!fx.dst.join("draft.tmp").exists());
    assert!(!fx.dst.join("cache").exists());
    assert!(fx.dst.join("page.html").exists());
    assert!(!fx.dst.join("index.html").exists(), "{}", daemon.log());
    fs::remove_file(fx.src.join("draft.tmp")).unwrap();
    fs::remove_dir_all(fx.src.join("cache")).unwrap();
    assert_trees_equal(&fx.src, &fx.dst, &daemon);
    // The archive keeps what the source deleted, and a renamed file's old name.
    assert!(archive_dst.join("2024.log").exists(), "{}", daemon.log());
    assert!(
        archive_dst.join("2025-final.log").exists(),
        "{}",
        daemon.log()
    );
    // A file kept on purpose is not drift.
    let out = daemon.ctl_ok(&["verify"]);
    assert!(out.contains("equal"), "{out}");
}

#[test]
fn delete_startup_and_running_mean_what_they_mean_in_lsyncd() {
    for (mode, initial_deletes, running_deletes) in
        [("\"startup\"", true, false), ("\"running\"", false, true)]
    {
        let fx = Fixture::new();
        fs::write(fx.dst.join("only-on-target"), "was there before").unwrap();
        fs::write(fx.src.join("doomed"), "to be deleted").unwrap();
        let daemon = fx.start_toml(&fx.simple_config(&format!("delete = {mode}")));
        daemon.wait_idle();
        assert_eq!(
            fx.dst.join("only-on-target").exists(),
            !initial_deletes,
            "delete = {mode}: {}",
            daemon.log()
        );
        assert!(fx.dst.join("doomed").exists());
        fs::remove_file(fx.src.join("doomed")).unwrap();
        fs::write(fx.src.join("trigger"), "a change after it").unwrap();
        daemon.wait_idle();
        assert!(fx.dst.join("trigger").exists());
        assert_eq!(
            fx.dst.join("doomed").exists(),
            !running_deletes,
            "delete = {mode}: {}",
            daemon.log()
        );
        let out = daemon.ctl_ok(&["verify"]);
        assert!(out.contains("equal"), "delete = {mode}: {out}");
        let checked = run_ok(
            Command::new(bin("inosyncd"))
                .arg("--check")
                .arg("-c")
                .arg(fx.path("inosync.toml")),
        );
        let shown = String::from_utf8_lossy(&checked.stdout).into_owned();
        assert!(shown.contains(&format!("delete = {mode}")), "{shown}");
    }
}

/// A directory replaced by a file (or a symlink) with `delete = false`: the
/// directory on the target, with what only it holds, stays; the file cannot
/// take its place and is held, shown in status.
#[test]
fn delete_false_keeps_a_directory_that_a_file_replaced() {
    let fx = Fixture::new();
    fs::create_dir(fx.src.join("keep")).unwrap();
    fs::write(fx.src.join("keep/page"), "p").unwrap();
    let daemon = fx.start_toml(&fx.simple_config("delete = false"));
    daemon.wait_idle();
    fs::write(fx.dst.join("keep/precious-on-target"), "only here").unwrap();
    fs::remove_dir_all(fx.src.join("keep")).unwrap();
    fs::write(fx.src.join("keep"), "now a file").unwrap();
    let held = poll_until(Duration::from_secs(20), || {
        daemon.status()["watches"][0]["targets"][0]["held"][0]["path"] == "keep"
    });
    assert!(held, "{}\n{}", daemon.status(), daemon.log());
    assert!(
        fx.dst.join("keep/precious-on-target").exists(),
        "delete = false deleted a directory on the target\n{}",
        daemon.log()
    );
}

#[test]
fn delete_false_in_a_reload_keeps_deletions_from_then_on() {
    let fx = Fixture::new();
    fs::write(fx.src.join("a"), "a").unwrap();
    fs::write(fx.src.join("b"), "b").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    fs::remove_file(fx.src.join("a")).unwrap();
    daemon.wait_idle();
    assert!(!fx.dst.join("a").exists());
    fs::write(fx.path("inosync.toml"), fx.simple_config("delete = false")).unwrap();
    daemon.ctl_ok(&["reload"]);
    fs::remove_file(fx.src.join("b")).unwrap();
    fs::write(fx.src.join("c"), "c").unwrap();
    daemon.wait_idle();
    assert!(fx.dst.join("c").exists());
    assert!(fx.dst.join("b").exists(), "{}", daemon.log());
    // A full sync keeps it too.
    daemon.ctl_ok(&["sync", &fx.src.display().to_string()]);
    daemon.wait_idle();
    assert!(fx.dst.join("b").exists(), "{}", daemon.log());
}

#[test]
fn exclude_from_is_read_at_start_and_on_reload_and_a_bad_file_is_named() {
    let fx = Fixture::new();
    let list = fx.path("excludes.txt");
    fs::write(&list, "# build output\n*.tmp\n\n; old\n/cache/\n").unwrap();
    let config = fx.simple_config(&format!("exclude_from = \"{}\"", list.display()));
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    fs::write(fx.src.join("a.tmp"), "excluded").unwrap();
    fs::write(fx.src.join("a.log"), "synced").unwrap();
    daemon.wait_idle();
    assert!(fx.dst.join("a.log").exists());
    assert!(!fx.dst.join("a.tmp").exists(), "{}", daemon.log());

    fs::write(&list, "*.log\n").unwrap();
    daemon.ctl_ok(&["reload"]);
    fs::write(fx.src.join("b.tmp"), "synced now").unwrap();
    fs::write(fx.src.join("b.log"), "excluded now").unwrap();
    daemon.wait_idle();
    assert!(
        poll_until(Duration::from_secs(10), || fx.dst.join("b.tmp").exists()),
        "{}",
        daemon.log()
    );
    assert!(!fx.dst.join("b.log").exists(), "{}", daemon.log());

    // Gone: the reload is refused naming it, the old config stays.
    fs::remove_file(&list).unwrap();
    let stderr = daemon.ctl_fails(1, &["reload"]);
    assert!(stderr.contains(&list.display().to_string()), "{stderr}");
    fs::write(fx.src.join("c.log"), "still excluded").unwrap();
    fs::write(fx.src.join("c.txt"), "synced").unwrap();
    daemon.wait_idle();
    assert!(fx.dst.join("c.txt").exists());
    assert!(!fx.dst.join("c.log").exists());

    let config_file = fx.path("inosync.toml").into_os_string();
    let stderr = refused_start(&["--check".as_ref(), "-c".as_ref(), config_file.as_os_str()]);
    assert!(stderr.contains("exclude_from"), "{stderr}");
    assert!(stderr.contains(&list.display().to_string()), "{stderr}");
}

#[test]
fn convert_warns_about_missing_watch_paths_instead_of_refusing() {
    let fx = Fixture::new();
    let lua = fx.path("elsewhere.conf");
    fs::write(
        &lua,
        "sync { default.rsyncssh, source = '/var/www-not-here', host = 'web2', \
         targetdir = '/srv/www', ssh = { port = 2222 } }\n",
    )
    .unwrap();
    let (code, toml, stderr) = convert(&lua);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(toml.contains("path = \"/var/www-not-here\""), "{toml}");
    assert!(toml.contains("targets = [\"web2:/srv/www\"]"), "{toml}");
    assert!(
        stderr.contains("warning") && stderr.contains("/var/www-not-here"),
        "{stderr}"
    );

    let py = fx.path("inosync.py");
    fs::write(&py, "wpaths = ['/var/www-not-here/']\nrnodes = ['m:']\n").unwrap();
    let (code, toml, stderr) = convert(&py);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(toml.contains("/var/www-not-here/"), "{toml}");
    assert!(
        stderr.contains("warning") && stderr.contains("/var/www-not-here"),
        "{stderr}"
    );
}

#[test]
fn a_custom_action_is_refused_with_its_line_and_no_output() {
    let fx = Fixture::new();
    let lua = fx.path("actions.lua");
    fs::write(
        &lua,
        "sync {\n  default.rsync,\n  source = '/a',\n  target = '/b',\n  onMove = function(e) end,\n}\n",
    )
    .unwrap();
    let (code, toml, stderr) = convert(&lua);
    assert_eq!(code, Some(1));
    assert!(toml.is_empty(), "{toml}");
    assert!(stderr.contains("actions.lua:5: `onMove`"), "{stderr}");
    let endless = fx.path("endless.lua");
    fs::write(&endless, "while true do end\n").unwrap();
    let (code, _, stderr) = convert(&endless);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("endless.lua:1:"), "{stderr}");
}

/// lsyncd and inosyncd on one source, from one Lua config (only the target
/// differs), end with the same mirror: excludes honoured, deletions kept.
/// Skipped, saying why, where lsyncd is not installed.
#[test]
fn lsyncd_and_inosyncd_make_the_same_mirror_from_one_config() {
    let Some(lsyncd) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("lsyncd"))
            .find(|p| p.is_file())
    }) else {
        eprintln!("skipped: lsyncd is not installed (apt-get install lsyncd)");
        return;
    };
    let fx = Fixture::new();
    let theirs = fx.path("lsyncd-dst");
    fs::create_dir(&theirs).unwrap();
    // One mtime for both copies: the mirrors are compared to the nanosecond,
    // and two writes a moment apart may land in different clock ticks.
    let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    for dst in [&fx.dst, &theirs] {
        fs::write(dst.join("kept"), "only on the target").unwrap();
        fs::File::options()
            .write(true)
            .open(dst.join("kept"))
            .and_then(|f| f.set_modified(when))
            .unwrap();
    }
    fs::write(fx.src.join("a"), "a").unwrap();
    fs::write(fx.src.join("b.tmp"), "excluded").unwrap();
    let config = |target: &Path| {
        format!(
            "settings {{ nodaemon = true, logfile = {log:?} }}\n\
             local skip = {{ \"*.tmp\" }}\n\
             sync {{ default.rsync, source = {src:?}, target = {dst:?}, exclude = skip,\n\
                     delete = false, delay = 0 }}\n",
            log = fx.path("lsyncd.log").display().to_string(),
            src = format!("{}/", fx.src.display()),
            dst = format!("{}/", target.display()),
        )
    };
    let lua = fx.path("lsyncd.conf.lua");
    fs::write(&lua, config(&theirs)).unwrap();
    let mut their_daemon = Command::new(lsyncd)
        .arg(&lua)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ours = fx.path("ours.conf.lua");
    fs::write(&ours, config(&fx.dst)).unwrap();
    let (code, toml, stderr) = convert(&ours);
    assert_eq!(code, Some(0), "{stderr}");
    let daemon = fx.start_toml(&toml);
    daemon.wait_idle();
    let started = poll_until(Duration::from_secs(30), || theirs.join("a").exists());
    if !started {
        let _ = their_daemon.kill();
        panic!(
            "lsyncd did not sync: {}",
            fs::read_to_string(fx.path("lsyncd.log")).unwrap_or_default()
        );
    }

    fs::write(fx.src.join("c"), "c").unwrap();
    fs::write(fx.src.join("d.tmp"), "excluded").unwrap();
    fs::create_dir(fx.src.join("dir")).unwrap();
    fs::write(fx.src.join("dir/e"), "e").unwrap();
    fs::remove_file(fx.src.join("a")).unwrap();
    daemon.wait_idle();
    // The same names and contents: lsyncd's own copy of a file it sent
    // while it was being written may keep the mtime of that moment (seen
    // once under load: `dir/e` 13 ms older there, for good), which is
    // lsyncd's, not what this compares.
    let same = poll_until(Duration::from_secs(30), || {
        names_and_contents(&fx.dst) == names_and_contents(&theirs)
    });
    let difference = (names_and_contents(&fx.dst), names_and_contents(&theirs));
    let _ = their_daemon.kill();
    let _ = their_daemon.wait();
    assert!(same, "{difference:?}\n{}", daemon.log());
    assert!(fx.dst.join("kept").exists() && fx.dst.join("a").exists());
    assert!(fx.dst.join("dir/e").exists() && !fx.dst.join("d.tmp").exists());
}

/// `inosyncd --check -c FILE`: (exit code, stderr).
fn check(file: &Path) -> (Option<i32>, String) {
    let out = Command::new(bin("inosyncd"))
        .args(["--check".as_ref(), "-c".as_ref(), file.as_os_str()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr)
}

/// A layer changed before use (`default.rsync.delete = false`) is honoured,
/// in a file lsyncd runs directly (`#!` line, no extension); and `--check`
/// on converted output shows its real error, never "this is Lua".
#[test]
fn a_changed_default_layer_converts_and_converted_output_is_checked_as_toml() {
    let fx = Fixture::new();
    let lua = fx.path("lsyncd-conf");
    fs::write(
        &lua,
        format!(
            "#!/usr/bin/lsyncd\ndefault.rsync.delete = false\n\
             sync {{ default.rsync, source = {:?}, target = {:?} }}\n",
            fx.src.display().to_string(),
            format!("{}/", fx.dst.display())
        ),
    )
    .unwrap();
    let (code, toml, stderr) = convert(&lua);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(toml.contains("delete = false"), "{toml}");
    let out = fx.path("converted.toml");
    fs::write(&out, &toml).unwrap();
    let (code, stderr) = check(&out);
    assert_eq!(code, Some(0), "{stderr}\n{toml}");

    // The same output once its source is gone: the real error.
    fs::write(
        &out,
        toml.replace(&fx.src.display().to_string(), "/gone/away"),
    )
    .unwrap();
    let (code, stderr) = check(&out);
    assert_ne!(code, Some(0));
    assert!(!stderr.contains("lsyncd (Lua) config"), "{stderr}");
    assert!(stderr.contains("watch.path"), "{stderr}");
}

/// Every path below `root` with its contents (`None` for a directory).
fn names_and_contents(
    root: &Path,
) -> std::collections::BTreeMap<std::path::PathBuf, Option<Vec<u8>>> {
    let mut found = std::collections::BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.insert(rel, None);
                dirs.push(path);
            } else {
                found.insert(rel, fs::read(&path).ok());
            }
        }
    }
    found
}
