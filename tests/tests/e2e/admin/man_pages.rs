//! Man pages without the .deb: one spelling for both binaries, `--man-pages
//! DIR`, writing into DIR/man8 and DIR/man5 as `man` looks them up; the
//! defaults in inosync.toml(5) are the ones `--check` prints.

use std::fs;
use std::process::Command;

use inosync_tests::{Fixture, bin, run_ok};

/// The global settings `--check` prints for an empty config: the defaults.
fn check_defaults(fx: &Fixture) -> Vec<String> {
    let empty = fx.path("empty.toml");
    fs::write(&empty, "").unwrap();
    let out = run_ok(
        Command::new(bin("inosyncd"))
            .arg("--check")
            .arg("-c")
            .arg(&empty),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
        .map(String::from)
        .collect()
}

#[test]
fn both_binaries_write_their_pages_with_the_same_flag() {
    let fx = Fixture::new();
    let man = fx.path("man");
    for binary in ["inosyncd", "inosyncctl"] {
        run_ok(Command::new(bin(binary)).arg("--man-pages").arg(&man));
    }
    for page in [
        "man8/inosyncd.8",
        "man8/inosyncctl.8",
        "man5/inosync.toml.5",
    ] {
        let text = fs::read_to_string(man.join(page)).unwrap_or_default();
        assert!(
            text.starts_with(".TH") || text.contains("\n.TH"),
            "{page}: {text}"
        );
    }

    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let install = &readme[readme.find("## Install").unwrap()..];
    let install = &install[..install[3..].find("\n## ").unwrap()];
    assert!(install.contains("inosyncd --man-pages"), "{install}");
    assert!(install.contains("inosyncctl --man-pages"), "{install}");
}

#[test]
fn the_config_page_shows_the_defaults_check_prints() {
    let fx = Fixture::new();
    let man = fx.path("man");
    run_ok(Command::new(bin("inosyncd")).arg("--man-pages").arg(&man));
    let page = fs::read_to_string(man.join("man5/inosync.toml.5"))
        .unwrap()
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "");
    let defaults = check_defaults(&fx);
    assert!(
        defaults.iter().any(|l| l.starts_with("events = ")),
        "{defaults:?}"
    );
    for line in defaults {
        // --check prints the rsync binary it resolved; the page says how it is found.
        if line.starts_with("rsync = ") {
            continue;
        }
        assert!(
            page.lines().any(|l| l == line),
            "man 5 inosync.toml does not show `{line}` as --check does:\n{page}"
        );
    }
}
