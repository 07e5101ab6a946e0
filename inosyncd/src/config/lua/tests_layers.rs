//! Changes a config makes to lsyncd's built-in layers (`default.rsync.delete =
//! false`, a copied layer with an action of its own, `default.delay`) count as
//! if written in each sync that inherits them: ignored, they would turn "keep
//! target-only files" into "delete them".

use super::tests::Tree;
use crate::config::DeleteMode;

#[test]
fn delete_false_set_on_the_default_layer_is_kept() {
    let tree = Tree::new(&["a"]);
    let (toml, config) = tree
        .convert(
            r#"default.rsync.delete = false
sync { default.rsync, source = ROOT .. "/src/a", target = "/x/" }
"#,
        )
        .unwrap();
    assert_eq!(config.watches[0].delete, Some(DeleteMode::Never), "{toml}");
}

#[test]
fn the_syncs_own_keys_win_over_the_layers() {
    let tree = Tree::new(&["a"]);
    let (toml, config) = tree
        .convert(
            r#"default.rsync.delete = false
sync { default.rsync, source = ROOT .. "/src/a", target = "/x/", delete = "startup" }
"#,
        )
        .unwrap();
    assert_eq!(
        config.watches[0].delete,
        Some(DeleteMode::Startup),
        "{toml}"
    );
}

#[test]
fn a_replaced_init_or_action_is_refused_as_a_custom_action() {
    let tree = Tree::new(&["a"]);
    for key in ["init", "action"] {
        let err = tree
            .convert(&format!(
                "default.rsync.{key} = function(event)\nend\n\
                 sync {{ default.rsync, source = ROOT .. \"/src/a\", target = \"/x/\" }}\n"
            ))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("lsyncd.conf.lua:2: `"), "{err}");
        assert!(err.contains(&format!("`{key}`")), "{err}");
        assert!(err.contains("custom action"), "{err}");
    }
}

#[test]
fn a_copied_layer_with_an_action_of_its_own_is_refused() {
    let tree = Tree::new(&["a"]);
    let err = tree
        .convert(
            r#"local r = {}
for k, v in pairs(default.rsync) do r[k] = v end
r.onMove = function() end
sync { r, source = ROOT .. "/src/a", target = "/x/" }
"#,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("`onMove`"), "{err}");
    assert!(err.contains("custom action"), "{err}");
}

#[test]
fn delays_and_excludes_set_on_the_defaults_count() {
    let tree = Tree::new(&["a", "b"]);
    let (toml, config) = tree
        .convert(
            r#"default.delay = 3
default.rsync.exclude = { "*.tmp" }
sync { default.rsync, source = ROOT .. "/src/a", target = "/x/" }
default.rsync.delay = 7
sync { default.rsync, source = ROOT .. "/src/b", target = "/y/" }
"#,
        )
        .unwrap();
    assert_eq!(config.watches[0].delay, Some(3.0), "{toml}");
    assert_eq!(config.watches[1].delay, Some(7.0), "{toml}");
    assert_eq!(config.watches[0].excludes, vec!["*.tmp".to_string()]);
}

#[test]
fn the_layers_rsync_and_ssh_tables_exist_and_merge_with_the_syncs() {
    let tree = Tree::new(&["a", "b"]);
    let (toml, config) = tree
        .convert(
            r#"default.rsync.rsync.compress = true
default.rsyncssh.ssh.port = 2222
default.rsyncssh.rsync.bwlimit = 100
default.direct.rsync.checksum = true
sync { default.rsync, source = ROOT .. "/src/a", target = "/x/", rsync = { checksum = true } }
sync { default.rsyncssh, source = ROOT .. "/src/b", host = "h", targetdir = "/y/" }
"#,
        )
        .unwrap();
    let a = &config.watches[0].rsync_args;
    assert!(a.contains(&"--compress".to_string()), "{toml}");
    assert!(a.contains(&"--checksum".to_string()), "{toml}");
    assert!(
        config.watches[1]
            .rsync_args
            .iter()
            .any(|a| a.contains("2222")),
        "{toml}"
    );
    assert_eq!(config.watches[1].speed, Some(100), "{toml}");
}

#[test]
fn an_unknown_key_on_a_layer_is_a_comment_as_in_the_sync() {
    let tree = Tree::new(&["a"]);
    let (toml, _) = tree
        .convert(
            r#"default.rsync.maxDelays = 5
sync { default.rsync, source = ROOT .. "/src/a", target = "/x/" }
"#,
        )
        .unwrap();
    assert!(toml.contains("# maxDelays = 5"), "{toml}");
}

#[test]
fn a_layer_replaced_by_a_table_inheriting_it_is_not_an_rsync_table() {
    let tree = Tree::new(&["a"]);
    let (toml, config) = tree
        .convert(
            r#"default.rsync = { default.rsync, delete = false }
sync { default.rsync, source = ROOT .. "/src/a", target = "/x/" }
"#,
        )
        .unwrap();
    assert_eq!(config.watches[0].delete, Some(DeleteMode::Never), "{toml}");
    assert!(!toml.contains("rsync.delete"), "{toml}");
}

/// lsyncd's `inherit()`: the sync's own keys, then its positional tables in
/// order, depth first, then `default`; the first value found wins, and
/// tables merge (a list's entries are appended).
#[test]
fn inheritance_follows_lsyncds_order_and_merges_lists() {
    let tree = Tree::new(&["a", "b"]);
    let (toml, config) = tree
        .convert(
            r#"default.rsync.delete = "startup"
default.rsync.exclude = { "*.tmp" }
sync { default.rsync, { delete = false }, source = ROOT .. "/src/a", target = "/x/",
       exclude = { "*.bak" } }
sync { { delete = false }, default.rsync, source = ROOT .. "/src/b", target = "/y/" }
"#,
        )
        .unwrap();
    assert_eq!(
        config.watches[0].delete,
        Some(DeleteMode::Startup),
        "{toml}"
    );
    assert_eq!(
        config.watches[0].excludes,
        vec!["*.bak".to_string(), "*.tmp".to_string()],
        "{toml}"
    );
    assert_eq!(config.watches[1].delete, Some(DeleteMode::Never), "{toml}");
}
