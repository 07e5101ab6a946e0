//! `inosyncctl wait [PATH]`: one tree or all; on timeout, each busy watch and
//! target named with its state and why.

use std::fs;
use std::time::Duration;

use inosync_tests::remote::RsyncDaemon;
use inosync_tests::{Fixture, poll_until};

#[test]
fn wait_takes_a_path_and_says_why_it_timed_out() {
    let fx = Fixture::new();
    let remote = fx.path("remote");
    fs::create_dir(&remote).unwrap();
    let mut rsyncd = RsyncDaemon::start(fx.dir.path(), &remote);
    rsyncd.stop();
    let (blog, news, docs) = (fx.path("blog"), fx.path("news"), fx.path("docs"));
    for dir in [&blog, &news, &docs] {
        fs::create_dir(dir).unwrap();
    }
    let config = format!(
        "delay = 0\n\n\
         [[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n\n\
         [[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}\"]\n\n\
         [[watch]]\npath = \"{}\"\nremote_path = \"\"\ntargets = [\"{}/\"]\n",
        blog.display(),
        fx.path("blog-mirror").display(),
        news.display(),
        rsyncd.url(),
        docs.display(),
        fx.path("docs-mirror").display(),
    );
    let daemon = fx.start_toml(&config);
    let failing = poll_until(Duration::from_secs(30), || {
        daemon.status()["watches"][1]["targets"][0]["failures"]
            .as_u64()
            .is_some_and(|f| f >= 1)
    });
    assert!(failing, "{}", daemon.status());
    daemon.ctl_ok(&["pause", blog.to_str().unwrap()]);
    fs::write(blog.join("post"), "held by the pause").unwrap();
    let pending = poll_until(Duration::from_secs(10), || {
        daemon.status()["watches"][0]["pending"].as_u64() >= Some(1)
    });
    assert!(pending, "{}", daemon.status());

    // The healthy tree alone: done at once.
    let out = daemon.ctl(&["wait", docs.to_str().unwrap(), "--timeout", "30"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Everything: exit 1, and each busy watch and target is named with why.
    let stderr = daemon.ctl_fails(1, &["wait", "--timeout", "1"]);
    eprintln!("{stderr}");
    assert!(stderr.contains("still busy after 1 s"), "{stderr}");
    let blog_line = stderr
        .lines()
        .find(|l| l.contains(blog.to_str().unwrap()))
        .unwrap_or_else(|| panic!("the paused watch is not named: {stderr}"));
    assert!(blog_line.contains("paused"), "{stderr}");
    let news_line = stderr
        .lines()
        .find(|l| l.contains(news.to_str().unwrap()))
        .unwrap_or_else(|| panic!("the failing watch is not named: {stderr}"));
    assert!(news_line.contains("retrying"), "{stderr}");
    assert!(news_line.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains(docs.to_str().unwrap()), "{stderr}");

    // One busy tree: only it is named.
    let stderr = daemon.ctl_fails(1, &["wait", news.to_str().unwrap(), "--timeout", "1"]);
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(!stderr.contains(blog.to_str().unwrap()), "{stderr}");

    // `sync --wait` that times out says the same.
    let stderr = daemon.ctl_fails(
        1,
        &["sync", news.to_str().unwrap(), "--wait", "--timeout", "1"],
    );
    assert!(stderr.contains("not done after 1 s"), "{stderr}");
    assert!(stderr.contains("retrying"), "{stderr}");

    // A path that is not watched is refused.
    let stderr = daemon.ctl_fails(1, &["wait", fx.dst.to_str().unwrap(), "--timeout", "1"]);
    assert!(stderr.contains("not watched"), "{stderr}");
}
