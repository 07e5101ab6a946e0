//! Error messages in lsyncd's words (`"yes"`, `1`), not the converter's
//! internal names (`Str("yes")`), and values never changed silently.

use std::path::Path;

use super::convert;
use super::tests::Tree;

fn refused(tree: &Tree, lua: &str) -> String {
    match tree.convert(lua) {
        Ok((toml, _)) => panic!("converted:\n{toml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn values_are_shown_as_lua_writes_them() {
    let tree = Tree::new(&["a"]);
    for (key, value, shown) in [
        ("delete", "'yes'", "\"yes\""),
        ("init", "1", "1"),
        ("delay", "true", "true"),
        ("exclude", "{ 1 }", "1"),
        ("target", "{ }", "{  }"),
    ] {
        let err = refused(
            &tree,
            &format!(
                "sync {{ default.rsync, source = ROOT .. '/src/a', target = '/x', {key} = {value} }}"
            ),
        );
        assert!(
            !err.contains("Str(") && !err.contains("Num(") && !err.contains("Bool("),
            "{err}"
        );
        assert!(!err.contains("Table {"), "{err}");
        assert!(err.contains(shown), "{key}: {err}");
    }
}

#[test]
fn a_bandwidth_limit_is_never_rounded_or_capped_silently() {
    let tree = Tree::new(&["a"]);
    for value in ["1.5", "2^63"] {
        let err = refused(
            &tree,
            &format!(
                "sync {{ default.rsync, source = ROOT .. '/src/a', target = '/x', \
                 rsync = {{ bwlimit = {value} }} }}"
            ),
        );
        assert!(err.contains("bwlimit"), "{err}");
    }
    let (_, config) = tree
        .convert("sync { default.rsync, source = ROOT .. '/src/a', target = '/x', rsync = { bwlimit = 100 } }")
        .unwrap();
    assert_eq!(config.watches[0].speed, Some(100));
}

#[test]
fn an_error_with_a_table_says_so_with_its_line() {
    let err = match convert(Path::new("e.lua"), "\nerror({})\n") {
        Ok(_) => panic!("converted"),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with("e.lua:2: "), "{err}");
    assert!(err.contains("a table"), "{err}");
    assert!(!err.contains("0x"), "{err}");
    // A message keeps Lua's own position.
    let err = match convert(Path::new("e.lua"), "\n\nerror('boom')\n") {
        Ok(_) => panic!("converted"),
        Err(e) => e.to_string(),
    };
    assert_eq!(err, "e.lua:3: boom");
}
