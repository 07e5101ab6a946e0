//! The TOML config reader: the full example, and what it refuses (unknown keys, wrong types, nested or target-less watches) naming the line.

use super::*;

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(Path::new("test.toml"), text)
}

#[test]
fn empty_config_is_idle_not_an_error() {
    let config = parse_str("").unwrap();
    assert!(config.watches.is_empty());
    assert_eq!(config.delay, 10.0);
}

#[test]
fn full_example_reads() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
rsync = "/usr/bin/rsync"
rsync_args = ["--rsh=ssh"]
speed = 0
delay = 10
max_parallel = 4
events = ["IN_CLOSE_WRITE", "IN_CREATE"]
excludes = ["/localhost"]
targets = ["user1@a.mirror.com:", "user2@b.mirror.com:"]
initial_sync = true
full_sync_interval = 0

[[watch]]
path = "{0}"
excludes = ["/cache/", "*.tmp"]
targets = ["user3@c.mirror.com:"]
delay = 2.0
speed = 500
"#,
        dir.path().display()
    );
    let config = parse_str(&text).unwrap();
    assert_eq!(config.watches.len(), 1);
    let watch = &config.watches[0];
    assert_eq!(watch.remote_path, dir.path().display().to_string());
    assert_eq!(watch.speed, Some(500));
    assert_eq!(watch.effective_targets(&config), ["user3@c.mirror.com:"]);
}

#[test]
fn unknown_key_names_line_and_key() {
    let err = parse_str("delay = 1\nspeeed = 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.toml"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("speeed"), "{err}");
}

#[test]
fn wrong_type_is_refused() {
    let err = parse_str("speed = \"fast\"\n").unwrap_err().to_string();
    assert!(err.contains("speed"), "{err}");
}

#[test]
fn relative_watch_path_names_line_and_key() {
    let err = parse_str("targets = [\"/t\"]\n\n[[watch]]\npath = \"var/www\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.toml:4: watch.path"), "{err}");
    assert!(err.contains("absolute"), "{err}");
}

#[test]
fn missing_watch_path_is_refused() {
    let err = parse_str("targets = [\"/t\"]\n[[watch]]\npath = \"/nonexistent/inosync\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.toml:3: watch.path"), "{err}");
}

#[test]
fn nested_watches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("inner")).unwrap();
    let text = format!(
        "targets = [\"/t\"]\n[[watch]]\npath = \"{0}\"\n[[watch]]\npath = \"{0}/inner\"\n",
        dir.path().display()
    );
    let err = parse_str(&text).unwrap_err().to_string();
    assert!(err.contains("nested inside"), "{err}");
    assert!(err.contains("test.toml:4"), "{err}");
}

#[test]
fn watch_without_target_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("[[watch]]\npath = \"{}\"\n", dir.path().display());
    let err = parse_str(&text).unwrap_err().to_string();
    assert!(err.contains("no target"), "{err}");
}

#[test]
fn delete_and_exclude_from_are_global_and_per_watch() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list");
    std::fs::write(&list, "# c\n*.bak\n").unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let text = format!(
        "delete = \"running\"\ntargets = [\"/t\"]\n[[watch]]\npath = \"{}\"\n\
         excludes = [\"*.o\"]\nexclude_from = \"{}\"\ndelete = false\n",
        src.display(),
        list.display()
    );
    let config = parse_str(&text).unwrap();
    assert_eq!(config.delete, DeleteMode::Running);
    let watch = &config.watches[0];
    assert_eq!(watch.effective_delete(&config), DeleteMode::Never);
    assert_eq!(watch.excludes, ["*.o", "*.bak"]);
    assert_eq!(watch.exclude_from.as_deref(), Some(list.as_path()));

    let err = parse_str("delete = \"sometimes\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.toml:1: delete"), "{err}");
    let err = parse_str("delete = 1\n").unwrap_err().to_string();
    assert!(err.contains("delete"), "{err}");
    let err = parse_str("exclude_from = \"/nonexistent/x\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test.toml:1: exclude_from: cannot read /nonexistent/x"),
        "{err}"
    );
    let err = parse_str(&format!(
        "delete = false\nrsync_args = [\"--delete-after\"]\ntargets = [\"/t\"]\n\
         [[watch]]\npath = \"{}\"\n",
        src.display()
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("test.toml:4: [[watch]]") && err.contains("--delete-after"),
        "{err}"
    );
}

#[test]
fn negative_delay_is_refused() {
    let err = parse_str("delay = -1\n").unwrap_err().to_string();
    assert!(err.contains("test.toml:1: delay"), "{err}");
}
