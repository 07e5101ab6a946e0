//! ssh in the sandbox reads the key and config files `--rsh` names, however
//! they are spelled; a file it still cannot read is named in the error, with
//! the sandbox as the reason.

use std::fs;
use std::time::Duration;

use inosync_tests::remote::Sshd;
use inosync_tests::{Fixture, has_landlock, poll_until};

use super::{failed_naming, first_target};

fn config(sshd: &Sshd, fx: &Fixture, remote: &std::path::Path, identity: &str) -> String {
    format!(
        "delay = 0\nssh_reuse = false\nrsync_args = [{:?}]\n\n[[watch]]\npath = \"{}\"\n\
         remote_path = \"\"\ntargets = [\"root@127.0.0.1:{}/\"]\n",
        sshd.rsh_with(identity),
        fx.src.display(),
        remote.display()
    )
}

#[test]
fn every_ssh_key_spelling_works_in_the_sandbox() {
    if !has_landlock() {
        eprintln!("skipped: this kernel has no Landlock");
        return;
    }
    assert!(
        Sshd::available(),
        "sshd is not installed (.ci/run installs it)"
    );
    let work = Fixture::new();
    let sshd = Sshd::start(work.dir.path());
    let key = sshd.key().display().to_string();
    for identity in [
        format!("-i{key}"),
        format!("-oIdentityFile={key}"),
        format!("-o IdentityFile={key}"),
        format!("-o 'IdentityFile {key}'"),
        format!("-qi {key}"),
    ] {
        let fx = Fixture::new();
        let remote = fx.path("remote");
        fs::create_dir(&remote).unwrap();
        fs::write(fx.src.join("f"), "over ssh").unwrap();
        let daemon = fx.start_toml(&config(&sshd, &fx, &remote, &identity));
        let out = daemon.ctl(&["wait", "--timeout", "20"]);
        assert!(
            out.status.success() && remote.join("f").exists(),
            "{identity}: {}\n{}",
            first_target(&daemon),
            daemon.log()
        );
    }
}

/// A key named only inside an ssh config file (`-F`): ssh may read the
/// config, not the key, and the error says that the sandbox refused the read.
#[test]
fn a_key_the_sandbox_does_not_know_is_named_as_refused() {
    if !has_landlock() {
        eprintln!("skipped: this kernel has no Landlock");
        return;
    }
    assert!(
        Sshd::available(),
        "sshd is not installed (.ci/run installs it)"
    );
    let fx = Fixture::new();
    let sshd = Sshd::start(fx.dir.path());
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let ssh_config = fx.path("ssh_config");
    fs::write(
        &ssh_config,
        format!("IdentityFile {}\n", sshd.key().display()),
    )
    .unwrap();
    fs::write(fx.src.join("f"), "over ssh").unwrap();
    let daemon = fx.start_toml(&config(
        &sshd,
        &fx,
        &remote,
        &format!("-F {}", ssh_config.display()),
    ));
    let key = sshd.key().display().to_string();
    let mut target = serde_json::Value::Null;
    let named = poll_until(Duration::from_secs(20), || {
        target = first_target(&daemon);
        failed_naming(&target, &["sandbox", "refused", &key])
    });
    assert!(named, "{target}\n{}", daemon.log());
    assert!(!remote.join("f").exists());
}
