//! A failing target is retried and reported; the other target goes on.

use std::fs;
use std::time::Duration;

use inosync_tests::{Fixture, compare_trees, poll_until};

#[test]
fn one_failing_target_does_not_hold_back_the_other() {
    let fx = Fixture::new();
    // Fails for real, even as root: the destination lies below a regular file.
    let blocker = fx.path("blocker");
    fs::write(&blocker, "a regular file").unwrap();
    let bad = blocker.join("dst");
    fs::write(fx.src.join("first"), "1").unwrap();
    let config = format!(
        "delay = 0\n\n[[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\", \"{}/\"]\n",
        fx.src.display(),
        fx.dst.display(),
        bad.display()
    );
    let daemon = fx.start_toml(&config);

    fs::create_dir(fx.src.join("more")).unwrap();
    fs::write(fx.src.join("more/second"), "2").unwrap();
    let converged = poll_until(Duration::from_secs(30), || {
        compare_trees(&fx.src, &fx.dst).is_ok()
    });
    assert!(converged, "good target did not converge\n{}", daemon.log());

    // The bad target is reported, with the meaning of rsync's exit code.
    let reported = poll_until(Duration::from_secs(30), || {
        let status = daemon.status();
        let target = &status["watches"][0]["targets"][1];
        target["state"] == "retrying" && target["failures"].as_u64().unwrap_or(0) >= 1
    });
    let status = daemon.status();
    assert!(reported, "failing target not reported: {status}");
    let error = status["watches"][0]["targets"][1]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("rsync exited with"), "{error}");
    assert_eq!(
        status["watches"][0]["targets"][0]["failures"], 0,
        "{status}"
    );
    assert_ne!(
        status["watches"][0]["targets"][0]["state"], "retrying",
        "{status}"
    );
    assert!(
        daemon.log().contains("changes kept, retry"),
        "{}",
        daemon.log()
    );

    // Repair the target: the kept changes arrive on a retry, nothing was dropped.
    fs::remove_file(&blocker).unwrap();
    let repaired = poll_until(Duration::from_secs(60), || {
        compare_trees(&fx.src, &bad).is_ok()
    });
    assert!(
        repaired,
        "repaired target did not converge\n{}",
        daemon.log()
    );
    daemon.wait_idle();
    let status = daemon.status();
    assert_eq!(
        status["watches"][0]["targets"][1]["failures"], 0,
        "{status}"
    );
    assert!(
        status["watches"][0]["targets"][1]["last_error"].is_null(),
        "{status}"
    );
}
