//! A local target reached through a symlink that is re-pointed into the source
//! while the daemon runs: the layout is resolved and checked before every run,
//! and the sandbox never grants a write below a watched tree, so the source is
//! never written (it would fill with copies of itself, level after level).

use std::fs;
use std::os::unix::fs::symlink;
use std::time::Duration;

use inosync_tests::{Fixture, has_landlock, poll_until};

use super::{count_below, failed_naming, first_target, names};

#[test]
fn a_target_link_repointed_into_the_source_writes_nothing_there() {
    if !has_landlock() {
        eprintln!("skipped: sandbox = \"required\" needs Landlock");
        return;
    }
    // First with the daemon's own check, then with it switched off (a debug-build
    // test switch), so that the sandbox alone has to hold.
    for layout_check in [true, false] {
        let fx = Fixture::new();
        for i in 0..4 {
            fs::write(fx.src.join(format!("f{i}")), "x").unwrap();
        }
        fs::create_dir(fx.src.join("inner")).unwrap();
        fs::write(fx.src.join("inner/keep"), "keep").unwrap();
        let link = fx.path("mirror-link");
        symlink(&fx.dst, &link).unwrap();
        let config = format!(
            "delay = 0\nsandbox = \"required\"\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\n\
             targets = [\"{}/\"]\n",
            fx.src.display(),
            link.display()
        );
        let env: &[(&str, &str)] = if layout_check {
            &[]
        } else {
            &[("INOSYNC_TEST_NO_LAYOUT_CHECK", "1")]
        };
        let daemon = fx.start_toml_with_env(&config, env);
        daemon.wait_idle();
        assert_eq!(names(&fx.dst), ["f0", "f1", "f2", "f3", "inner"]);
        let before = count_below(&fx.src);
        // Re-pointed at once (a new link renamed over the old one).
        let new_link = fx.path("new-link");
        symlink(fx.src.join("inner"), &new_link).unwrap();
        fs::rename(&new_link, &link).unwrap();
        fs::write(fx.src.join("f4"), "new").unwrap();
        let mut target = serde_json::Value::Null;
        let words: &[&str] = if layout_check {
            &["inside the watched directory"]
        } else {
            &["refused by the sandbox"]
        };
        let refused = poll_until(Duration::from_secs(20), || {
            target = first_target(&daemon);
            failed_naming(&target, words) || count_below(&fx.src) > before + 1
        });
        let grew = poll_until(Duration::from_secs(2), || count_below(&fx.src) > before + 1);
        assert!(
            !grew,
            "check {layout_check}: the source grew from {before} to {} entries: {:?}\n{}",
            count_below(&fx.src),
            names(&fx.src.join("inner")),
            daemon.log()
        );
        assert!(refused, "check {layout_check}: {target}\n{}", daemon.log());
        assert_eq!(names(&fx.src.join("inner")), ["keep"]);
    }
}
