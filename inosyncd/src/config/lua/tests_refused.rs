//! What the converter must refuse (or leave as a comment) because
//! `inosyncd --check` would refuse it in the output, and what it must never
//! take for Lua: its own output.

use std::path::Path;

use super::tests::Tree;
use super::{convert, looks_like_lua};

#[test]
fn the_converters_own_output_is_never_taken_for_lua() {
    let out = "# Converted from /etc/lsyncd.conf.lua (lsyncd) by inosyncd --convert.\n\
               delay = 15.0\n\n\
               [[watch]]  # sync{} on line 8 (default.rsyncssh)\n\
               path = \"/nowhere/at/all\"\n\
               targets = [\"h:/x\"]\n\
               # default.rsyncssh: lsyncd moves and deletes over ssh\n";
    assert!(!looks_like_lua(out));
    // Broken TOML that starts like TOML is not Lua either.
    assert!(!looks_like_lua(
        "[[watch]]  # sync{} on line 2 (default.rsync)\npath = \n"
    ));
    assert!(!looks_like_lua("# default.rsync\ndelay = \n"));
    // Nor one whose first line is a TOML `key = value`.
    assert!(!looks_like_lua(
        "delay = 3\n[[watch]]  # sync{} on line 2 (default.rsync)\npath =\n"
    ));
    assert!(looks_like_lua(
        "settings = {\n  logfile = '/l',\n}\nsync { default.rsync }\n"
    ));
    // An lsyncd config with a #! line still is.
    assert!(looks_like_lua(
        "#!/usr/bin/lsyncd\nsync { default.rsync }\n"
    ));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("converted.conf");
    std::fs::write(&file, out).unwrap();
    let err = crate::config::Config::load(&file).unwrap_err().to_string();
    assert!(!err.contains("lsyncd (Lua) config"), "{err}");
    assert!(err.contains("watch.path"), "{err}");
}

fn refused(tree: &Tree, lua: &str) -> String {
    match tree.convert(lua) {
        Ok((toml, _)) => panic!("converted:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn values_check_would_refuse_are_refused_with_key_and_line() {
    let tree = Tree::new(&["a"]);
    let err = refused(
        &tree,
        "sync { default.rsync, source = ROOT .. '/src/a', target = '-e sh' }",
    );
    assert!(err.starts_with("lsyncd.conf.lua:2: `target`"), "{err}");
    let err = refused(
        &tree,
        "sync { default.rsync, source = ROOT .. '/src/a', target = '/x', delay = 2^70 }",
    );
    assert!(err.starts_with("lsyncd.conf.lua:2: `delay`"), "{err}");
    assert!(err.contains("too large"), "{err}");
    assert!(!err.contains("1180591620717411300000"), "{err}");
    let err = refused(
        &tree,
        "sync { default.rsync, source = ROOT .. '/src/a', target = '/x', exclude = 'a\\nb' }",
    );
    assert!(err.starts_with("lsyncd.conf.lua:2: `exclude`"), "{err}");
    let err = refused(
        &tree,
        "sync { default.rsync, source = ROOT .. '/src/a', target = '/x', \
         filter = { '- a\\nb' } }",
    );
    assert!(err.starts_with("lsyncd.conf.lua:2: `filter`"), "{err}");
}

#[test]
fn max_processes_out_of_range_is_a_comment_saying_why() {
    let tree = Tree::new(&["a"]);
    for (value, why) in [
        ("1e12", "too large"),
        ("0", "at least 1"),
        ("-3", "at least 1"),
        ("1.5", "whole number"),
    ] {
        let (toml, config) = tree
            .convert(&format!(
                "settings {{ maxProcesses = {value} }}\n\
                 sync {{ default.rsync, source = ROOT .. '/src/a', target = '/x' }}\n"
            ))
            .unwrap();
        assert_eq!(
            config.max_parallel,
            crate::config::Config::default().max_parallel
        );
        let comment = toml
            .lines()
            .find(|l| l.starts_with("# maxProcesses"))
            .unwrap_or_else(|| panic!("no comment for {value}:\n{toml}"));
        assert!(comment.contains(why), "{comment}");
    }
}

#[test]
fn a_shebang_line_and_a_byte_order_mark_are_accepted() {
    let sync = "sync { default.rsync, source = '/a', target = '/b' }\n";
    assert!(convert(Path::new("a.lua"), &format!("#!/usr/bin/lsyncd\n{sync}")).is_ok());
    let converted = convert(Path::new("a.lua"), &format!("\u{feff}{sync}")).unwrap();
    assert!(
        converted.toml.contains("sync{} on line 1"),
        "{}",
        converted.toml
    );
    // The line numbers stay those of the file.
    let err = convert(Path::new("a.lua"), "#!/usr/bin/lsyncd\nsync(1)\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("a.lua:2:"), "{err}");
}

#[test]
fn a_path_that_is_not_utf8_is_refused_with_its_line() {
    // Raw bytes in the file, and the same byte as a Lua escape.
    let raw: &[u8] = b"\nsync { default.rsync, source = '/srv/src\xff', target = '/x' }\n";
    let escaped = "\nsync { default.rsync, source = '/srv/a', target = '/x/\\255' }\n";
    for text in [raw, escaped.as_bytes()] {
        let err = super::convert_bytes(Path::new("l.lua"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("l.lua:2: `"), "{err}");
        assert!(err.contains("UTF-8"), "{err}");
    }
}
