//! `inosyncctl add PATH --target DEST`: DEST is the destination itself, as in
//! the quick start; `--remote-path` still appends; the config's default
//! targets keep inosync's `target + remote_path` rule.

use std::fs;

use inosync_tests::{Daemon, Fixture};

/// A daemon with nothing to watch yet, and `srv/blog` holding one post.
fn idle_daemon_and_a_blog(fx: &Fixture) -> (Daemon, std::path::PathBuf) {
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let blog = fx.path("srv/blog");
    fs::create_dir_all(&blog).unwrap();
    fs::write(blog.join("post"), "hello").unwrap();
    (daemon, blog)
}

#[test]
fn a_target_given_to_add_is_the_destination_itself() {
    let fx = Fixture::new();
    let (daemon, blog) = idle_daemon_and_a_blog(&fx);
    let backup = fx.path("backup/blog");

    let reply = daemon.ctl_ok(&[
        "add",
        blog.to_str().unwrap(),
        "--target",
        backup.to_str().unwrap(),
    ]);
    assert!(
        reply.contains(&format!("full sync to {} started", backup.display())),
        "the reply names the destination: {reply}"
    );
    daemon.wait_idle();
    assert_eq!(fs::read_to_string(backup.join("post")).unwrap(), "hello");
    assert!(
        !backup.join(blog.strip_prefix("/").unwrap()).exists(),
        "the source path was appended to the target"
    );
    let status = daemon.status();
    let added = &status["watches"][1];
    assert_eq!(added["remote_path"], "", "{status}");
    assert_eq!(
        added["targets"][0]["destination"],
        backup.to_str().unwrap(),
        "{status}"
    );

    // --remote-path still appends to the target.
    let news = fx.path("srv/news");
    fs::create_dir_all(&news).unwrap();
    fs::write(news.join("item"), "new").unwrap();
    let base = fx.path("base");
    let reply = daemon.ctl_ok(&[
        "add",
        news.to_str().unwrap(),
        "--target",
        &format!("{}/", base.display()),
        "--remote-path",
        "news",
    ]);
    assert!(
        reply.contains(&format!("{}/news", base.display())),
        "{reply}"
    );
    daemon.wait_idle();
    assert_eq!(fs::read_to_string(base.join("news/item")).unwrap(), "new");
}

/// Without `--target`, the config's default targets keep inosync's rule: the
/// destination is the target plus the watch path.
#[test]
fn without_a_target_the_config_defaults_keep_their_meaning() {
    let fx = Fixture::new();
    let defaults = fx.path("defaults");
    let config = format!(
        "delay = 0\ntargets = [\"{}\"]\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n",
        defaults.display(),
        fx.src.display(),
        fx.dst.display()
    );
    let daemon = fx.start_toml(&config);
    daemon.wait_idle();
    let blog = fx.path("blog");
    fs::create_dir(&blog).unwrap();
    fs::write(blog.join("post"), "hello").unwrap();
    let reply = daemon.ctl_ok(&["add", blog.to_str().unwrap()]);
    let expected = format!("{}{}", defaults.display(), blog.display());
    assert!(reply.contains(&expected), "{reply}");
    daemon.wait_idle();
    assert_eq!(
        fs::read_to_string(format!("{expected}/post")).unwrap(),
        "hello"
    );
}

/// A relative `--target` is the administrator's own directory, as in the
/// quick start: made absolute by inosyncctl (the daemon has another one).
#[test]
fn a_relative_target_given_to_add_is_below_the_callers_directory() {
    let fx = Fixture::new();
    let (daemon, _blog) = idle_daemon_and_a_blog(&fx);
    let out = std::process::Command::new(inosync_tests::bin("inosyncctl"))
        .current_dir(fx.dir.path())
        .arg("-s")
        .arg(&fx.socket)
        .args(["add", "srv/blog", "--target", "relative-mirror/"])
        .output()
        .expect("run inosyncctl");
    assert!(out.status.success(), "{out:?}\n{}", daemon.log());
    daemon.wait_idle();
    assert_eq!(
        fs::read_to_string(fx.path("relative-mirror/post"))
            .ok()
            .as_deref(),
        Some("hello"),
        "{}",
        daemon.log()
    );
}
