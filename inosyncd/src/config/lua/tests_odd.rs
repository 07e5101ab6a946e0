//! The converter against odd and hostile Lua: whatever a config does, the
//! answer is a conversion or an error naming the line, never a panic or hang.

use std::path::Path;

use super::convert;
use super::tests::Tree;

#[test]
fn a_table_changed_after_sync_counts_as_it_was_at_the_call() {
    let tree = Tree::new(&["a"]);
    let (_, config) = tree
        .convert(
            r#"local ex = { "*.tmp" }
sync { default.rsync, source = ROOT .. "/src/a", target = "/x/", exclude = ex }
ex[2] = "*.log"
ex[1] = nil
"#,
        )
        .unwrap();
    assert_eq!(config.watches[0].excludes, ["*.tmp"]);
}

#[test]
fn numbers_as_strings_and_an_exclude_string() {
    let tree = Tree::new(&["a"]);
    let (_, config) = tree
        .convert(
            r#"sync { default.rsync, source = ROOT .. "/src/a", target = "/x/",
       delay = "7", exclude = "*.swp", rsync = { bwlimit = "300" } }"#,
        )
        .unwrap();
    let watch = &config.watches[0];
    assert_eq!(watch.delay, Some(7.0));
    assert_eq!(watch.excludes, ["*.swp"]);
    assert_eq!(watch.speed, Some(300));
}

#[test]
fn unknown_keys_are_comments_and_warnings() {
    let tree = Tree::new(&["a"]);
    let text = format!(
        "settings {{ colour = 'blue' }}\nsync {{ default.rsync, source = {:?}, target = '/x/', \
         frobnicate = 3, rsync = {{ turbo = true }} }}\n",
        format!("{}/src/a", tree.root())
    );
    let converted = convert(Path::new("u.lua"), &text).unwrap();
    assert!(
        converted.toml.contains("# frobnicate = 3"),
        "{}",
        converted.toml
    );
    assert!(
        converted.toml.contains("# rsync.turbo = true"),
        "{}",
        converted.toml
    );
    assert!(
        converted.toml.contains("# colour = \"blue\""),
        "{}",
        converted.toml
    );
    assert!(
        converted.warnings.iter().any(|w| w.contains("frobnicate")),
        "{:?}",
        converted.warnings
    );
    assert!(
        converted
            .warnings
            .iter()
            .any(|w| w.contains("u.lua:1: settings key `colour`"))
    );
}

#[test]
fn wrong_kinds_are_errors_naming_the_line() {
    let cases = [
        ("sync(42)\n", ":1:"),
        (
            "sync { default.rsync, source = '/a', target = '/b', delete = 'sometimes' }\n",
            ":1:",
        ),
        (
            "sync { default.rsync, source = '/a', target = '/b', delay = -3 }\n",
            ":1:",
        ),
        (
            "sync { default.rsync, source = '/a', target = '/b', exclude = { 1, 2 } }\n",
            ":1:",
        ),
        ("\nsync { default.rsync, target = '/b' }\n", ":2:"),
        (
            "sync { default.rsyncssh, source = '/a', host = 'h' }\n",
            ":1:",
        ),
        (
            "sync { default.rsync, source = '/a', target = '/b', init = 'no' }\n",
            ":1:",
        ),
        (
            "sync { default.rsync, source = '/a', target = '/b', rsync = 'fast' }\n",
            ":1:",
        ),
        (
            "sync { default.rsyncssh, source = '/a', host = 'h', targetdir = '/t', ssh = { port = 99999 } }\n",
            ":1:",
        ),
        (
            "sync { default.rsync, source = {}, target = '/b' }\n",
            ":1:",
        ),
        (
            "sync { default.nope, source = '/a', target = '/b' }\n",
            ":1:",
        ),
        (
            "sync { function() end, source = '/a', target = '/b' }\n",
            ":1:",
        ),
        ("error({})\n", "e.lua"),
        ("error('boom', 0)\n", "e.lua"),
        ("", "no sync{}"),
    ];
    for (lua, expected) in cases {
        let err = convert(Path::new("e.lua"), lua).unwrap_err().to_string();
        assert!(err.contains(expected), "{lua:?}: {err}");
    }
}

#[test]
fn two_syncs_of_one_source_with_different_settings_are_refused() {
    let err = convert(
        Path::new("s.lua"),
        "sync { default.rsync, source = '/a', target = '/b' }\n\
         sync { default.rsync, source = '/a', target = '/c', delete = false }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("s.lua:2:") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn memory_hogs_and_self_references_end_cleanly() {
    let err = convert(
        Path::new("m.lua"),
        "local s = 'x'\nwhile true do s = s .. s end\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("memory") || err.contains("budget"), "{err}");
    let err = convert(
        Path::new("m.lua"),
        "local t = {}\nfor i = 1, 1e9 do t[i] = i end\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("memory") || err.contains("budget"), "{err}");
    // A table that contains itself is followed only so deep.
    let text = "local t = { default.rsync, source = '/a', target = '/b' }\nt.rsync = t\nsync(t)\n";
    assert!(convert(Path::new("m.lua"), text).is_err());
    let text = "local t = {}\nt[1] = t\nsync(t)\n";
    assert!(convert(Path::new("m.lua"), text).is_err());
    // Many keys holding the table itself: copied only so far, not 10^16 times.
    let text = "local t = { default.rsync, source = '/a', target = '/b' }\n\
                for i = 1, 10 do t['k' .. i] = t end\nsync(t)\n";
    let err = convert(Path::new("m.lua"), text).unwrap_err().to_string();
    assert!(err.starts_with("m.lua:3:"), "{err}");
}

#[test]
fn pcall_and_finalizers_do_not_escape_the_budget() {
    let err = convert(
        Path::new("p.lua"),
        "while true do\n  pcall(function() while true do end end)\nend\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("instruction budget"), "{err}");
    let err = convert(
        Path::new("g.lua"),
        "\nsetmetatable({}, { __gc = function() while true do end end })\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("g.lua:2: a finalizer"), "{err}");
    // An ordinary pcall still works.
    let text = "local ok, err = pcall(error, 'x')\nassert(not ok)\n\
                sync { default.rsync, source = '/a', target = '/b' }\n";
    assert!(convert(Path::new("ok.lua"), text).is_ok());
    let err = convert(Path::new("x.lua"), "xpcall(print, print)\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("x.lua:1:"), "{err}");
}

#[test]
fn settings_fields_set_one_by_one_count() {
    let tree = Tree::new(&["a"]);
    let (toml, config) = tree
        .convert(
            r#"settings { logfile = "/var/log/a.log" }
settings.maxProcesses = 3
sync { default.rsync, source = ROOT .. "/src/a", target = "/x/" }
"#,
        )
        .unwrap();
    assert_eq!(config.max_parallel, 3, "{toml}");
    assert_eq!(
        config.log_file.as_deref(),
        Some(Path::new("/var/log/a.log"))
    );
}

#[test]
fn many_syncs_from_a_loop_convert() {
    let tree = Tree::new(&[]);
    for i in 0..300 {
        std::fs::create_dir_all(tree.dir.path().join(format!("src/s{i}"))).unwrap();
    }
    let (_, config) = tree
        .convert(
            r#"for i = 0, 299 do
    sync { default.rsync, source = ROOT .. "/src/s" .. i, target = "mirror:/m/s" .. i }
end"#,
        )
        .unwrap();
    assert_eq!(config.watches.len(), 300);
}

#[test]
fn lsyncd_configs_are_recognised_without_their_extension() {
    assert!(super::looks_like_lua("sync {\n default.rsync }"));
    assert!(super::looks_like_lua("settings{ logfile = '/x' }"));
    assert!(!super::looks_like_lua(
        "wpaths = ['/var/www/']\nrnodes = ['a:']\n"
    ));
    assert!(!super::looks_like_lua(
        "delay = 3\n[[watch]]\npath = \"/a\"\n"
    ));
}

#[test]
fn too_many_syncs_are_refused_early_with_the_line() {
    let started = std::time::Instant::now();
    let err = match super::convert(
        Path::new("many.lua"),
        "\nfor i = 1, 100000 do\n  sync { default.rsync, source = '/s' .. i, target = '/t' .. i }\nend\n",
    ) {
        Ok(converted) => panic!("converted: {} bytes", converted.toml.len()),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with("many.lua:3: "), "{err}");
    assert!(err.contains("10000 sync{}"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn sync_tables_that_hold_millions_of_values_in_all_are_refused() {
    // Each sync{} copies the shared list: 500 x 5,000 values.
    let text = "local big = {}\nfor i = 1, 5000 do big[i] = 'x' .. i end\n\
                for i = 1, 500 do\n  sync { default.rsync, source = '/s' .. i, target = '/t', \
                exclude = big }\nend\n";
    let err = match super::convert(Path::new("big.lua"), text) {
        Ok(converted) => panic!("converted: {} bytes", converted.toml.len()),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with("big.lua:4: "), "{err}");
    assert!(err.contains("values in all"), "{err}");
}
