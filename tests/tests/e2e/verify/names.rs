//! Issue 26, item 2: verify reads rsync's itemized names exactly (leading
//! spaces, newlines, non-UTF-8 bytes) and prints them escaped as `ls -b` does,
//! so that a name never looks like another line of the report and `--repair`
//! reaches the very file that differs.

use std::fs;

use inosync_tests::{Fixture, join_bytes};

/// Target-only files with names that broke the report: each listed once,
/// escaped; `--repair` removes them all; the next verify is equal.
#[test]
fn odd_target_only_names_are_listed_escaped_and_repaired() {
    let fx = Fixture::new();
    fs::write(fx.src.join("keep"), "keep").unwrap();
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let names: [&[u8]; 4] = [
        b"  one-leading-space",
        b"x\nFAKE-WATCH -> FAKE-TARGET: equal",
        b"back\\slash \xff",
        b"a\\#012b",
    ];
    for name in names {
        fs::write(join_bytes(&fx.dst, name), "extra").unwrap();
    }
    let out = daemon.ctl(&["verify"]);
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(
            format!(
                "{} -> {}/: 4 path(s) differ",
                fx.src.display(),
                fx.dst.display()
            )
            .as_str()
        ),
        "{stdout}"
    );
    lines.remove(0);
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "  *deleting   \\ \\ one-leading-space",
            "  *deleting   a\\\\#012b",
            "  *deleting   back\\\\slash\\ \\377",
            "  *deleting   x\\nFAKE-WATCH\\ ->\\ FAKE-TARGET:\\ equal",
        ],
        "{stdout}"
    );
    // The JSON carries the same escaped names.
    let out = daemon.ctl(&["--json", "verify"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = report["pairs"][0]["paths"].to_string();
    assert!(
        listed.contains("*deleting   \\\\ \\\\ one-leading-space"),
        "{listed}"
    );

    assert_eq!(daemon.ctl(&["verify", "--repair"]).status.code(), Some(4));
    daemon.wait_idle();
    for name in names {
        assert!(
            !join_bytes(&fx.dst, name).exists(),
            "{:?} is still on the target",
            String::from_utf8_lossy(name)
        );
    }
    assert_eq!(
        daemon.ctl_ok(&["verify"]),
        format!("{} -> {}/: equal\n", fx.src.display(), fx.dst.display())
    );
}
