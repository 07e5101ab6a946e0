//! The converter on realistic lsyncd configs (lsyncd's documented examples and
//! the patterns its users post), each output read back by the real TOML loader.

use std::path::Path;

use super::{LuaError, convert};
use crate::config::{Config, DeleteMode};

/// A temp directory with `src/<name>` for each name; `ROOT` in the Lua is it.
pub(super) struct Tree {
    pub(super) dir: tempfile::TempDir,
}

impl Tree {
    pub(super) fn new(sources: &[&str]) -> Tree {
        let dir = tempfile::tempdir().unwrap();
        for name in sources {
            std::fs::create_dir_all(dir.path().join("src").join(name)).unwrap();
        }
        Tree { dir }
    }

    pub(super) fn root(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Converts `lua` (with `ROOT` defined) and reads the output back.
    pub(super) fn convert(&self, lua: &str) -> Result<(String, Config), LuaError> {
        let text = format!("local ROOT = {:?}\n{lua}", self.root());
        let converted = convert(Path::new("lsyncd.conf.lua"), &text)?;
        let config = crate::config::toml_format_parse(Path::new("out.toml"), &converted.toml)
            .unwrap_or_else(|e| panic!("{e}\n{}", converted.toml));
        Ok((converted.toml, config))
    }
}

#[test]
fn lsyncd_manual_simple_rsync() {
    let tree = Tree::new(&["a"]);
    let (toml, config) = tree
        .convert(
            r#"settings {
    logfile = "/tmp/lsyncd.log",
    statusFile = "/tmp/lsyncd.status",
}
sync { default.rsync, source = ROOT .. "/src/a", target = ROOT .. "/dst/a" }
"#,
        )
        .unwrap();
    assert_eq!(config.watches.len(), 1);
    assert_eq!(config.delay, 15.0);
    assert_eq!(
        config.log_file.as_deref(),
        Some(Path::new("/tmp/lsyncd.log"))
    );
    assert_eq!(config.watches[0].remote_path, "");
    assert!(toml.contains("# statusFile"), "{toml}");
    assert!(toml.contains("sync{} on line 6"), "{toml}");
}

#[test]
fn loop_over_sites_with_a_shared_exclude_table() {
    let tree = Tree::new(&["blog", "shop", "wiki"]);
    let (_, config) = tree
        .convert(
            r#"local common = { "*.tmp", ".git/", "/cache/" }
for _, site in ipairs({ "blog", "shop", "wiki" }) do
    sync {
        default.rsync,
        source = ROOT .. "/src/" .. site,
        target = "backup@mirror.example.com:/srv/" .. site .. "/",
        exclude = common,
        delay = 3,
    }
end
"#,
        )
        .unwrap();
    assert_eq!(config.watches.len(), 3);
    for watch in &config.watches {
        assert_eq!(watch.excludes, ["*.tmp", ".git/", "/cache/"]);
        assert_eq!(watch.delay, Some(3.0));
    }
    assert_eq!(
        config.watches[1].targets.as_deref(),
        Some(&["backup@mirror.example.com:/srv/shop/".to_string()][..])
    );
}

#[test]
fn rsyncssh_with_ssh_options() {
    let tree = Tree::new(&["www"]);
    let (_, config) = tree
        .convert(
            r#"sync {
    default.rsyncssh,
    source = ROOT .. "/src/www",
    host = "deploy@web2",
    targetdir = "/var/www",
    rsync = { compress = true, bwlimit = 500, _extra = { "--omit-dir-times" } },
    ssh = { port = 2222, identityFile = "/root/.ssh/id_web", _extra = { "-C" },
            options = { ServerAliveInterval = 30 } },
}
"#,
        )
        .unwrap();
    let watch = &config.watches[0];
    assert_eq!(
        watch.targets.as_deref(),
        Some(&["deploy@web2:/var/www".to_string()][..])
    );
    assert_eq!(watch.speed, Some(500));
    assert!(watch.rsync_args.contains(&"--compress".to_string()));
    assert!(watch.rsync_args.contains(&"--omit-dir-times".to_string()));
    let rsh = watch
        .rsync_args
        .iter()
        .find(|a| a.starts_with("--rsh="))
        .unwrap();
    assert_eq!(
        rsh,
        "--rsh=ssh -C -i /root/.ssh/id_web -o ServerAliveInterval=30 -p 2222"
    );
}

#[test]
fn exclude_from_and_delete_variants() {
    let tree = Tree::new(&["a", "b", "c", "d"]);
    let list = tree.dir.path().join("excludes.txt");
    std::fs::write(&list, "# comment\n*.bak\n\n/tmp/\n").unwrap();
    let (toml, config) = tree
        .convert(&format!(
            r#"local base = {{ default.rsync, excludeFrom = {list:?} }}
sync {{ base, source = ROOT .. "/src/a", target = ROOT .. "/dst/a", delete = false }}
sync {{ base, source = ROOT .. "/src/b", target = ROOT .. "/dst/b", delete = "startup" }}
sync {{ base, source = ROOT .. "/src/c", target = ROOT .. "/dst/c", delete = "running" }}
sync {{ base, source = ROOT .. "/src/d", target = ROOT .. "/dst/d", delete = true }}
"#
        ))
        .unwrap();
    let modes: Vec<DeleteMode> = config
        .watches
        .iter()
        .map(|w| w.effective_delete(&config))
        .collect();
    assert_eq!(
        modes,
        [
            DeleteMode::Never,
            DeleteMode::Startup,
            DeleteMode::Running,
            DeleteMode::Always
        ]
    );
    assert_eq!(config.watches[0].excludes, ["*.bak", "/tmp/"], "{toml}");
    assert!(toml.contains("exclude_from ="), "{toml}");
}

#[test]
fn settings_assigned_in_the_old_form() {
    let tree = Tree::new(&["a"]);
    let (toml, config) = tree
        .convert(
            r#"settings = {
    logfile = "/var/log/lsyncd.log",
    nodaemon = true,
    insist = true,
    maxProcesses = 2,
}
sync { default.rsync, source = ROOT .. "/src/a", target = "mirror::module/a" }
"#,
        )
        .unwrap();
    assert_eq!(config.max_parallel, 2);
    assert_eq!(
        config.log_file.as_deref(),
        Some(Path::new("/var/log/lsyncd.log"))
    );
    assert!(toml.contains("# insist = true"), "{toml}");
    assert!(toml.contains("# nodaemon = true"), "{toml}");
}

#[test]
fn direct_layer_and_init_false() {
    let tree = Tree::new(&["a"]);
    let (toml, config) = tree
        .convert(
            r#"sync { default.direct, source = ROOT .. "/src/a", target = ROOT .. "/dst/a",
       init = false, maxDelays = 100, maxProcesses = 1 }
"#,
        )
        .unwrap();
    assert!(!config.initial_sync);
    assert!(toml.contains("# default.direct"), "{toml}");
    assert!(toml.contains("# maxDelays = 100"), "{toml}");
}

#[test]
fn two_targets_of_one_source_are_one_watch() {
    let tree = Tree::new(&["a"]);
    let (_, config) = tree
        .convert(
            r#"for _, host in ipairs({ "web1", "web2" }) do
    sync { default.rsync, source = ROOT .. "/src/a", target = host .. ":/srv/a/" }
end
"#,
        )
        .unwrap();
    assert_eq!(config.watches.len(), 1);
    assert_eq!(config.watches[0].targets.as_ref().map(Vec::len), Some(2));
}

#[test]
fn plain_filter_rules_become_excludes_others_go_to_rsync() {
    let tree = Tree::new(&["a", "b"]);
    let (_, config) = tree
        .convert(
            r#"sync { default.rsync, source = ROOT .. "/src/a", target = ROOT .. "/d/a",
       filter = { "- *.o", "- /build/" } }
sync { default.rsync, source = ROOT .. "/src/b", target = ROOT .. "/d/b",
       filter = { "+ keep.o", "- *.o" } }
"#,
        )
        .unwrap();
    assert_eq!(config.watches[0].excludes, ["*.o", "/build/"]);
    assert_eq!(
        config.watches[1].rsync_args,
        ["--filter=+ keep.o", "--filter=- *.o"]
    );
}

#[test]
fn a_custom_action_is_refused_with_its_line() {
    let tree = Tree::new(&["a"]);
    let err = tree
        .convert(
            r#"sync {
    default.rsync,
    source = ROOT .. "/src/a",
    target = "/x",
    onCreate = function(event)
        spawn(event, "/bin/true")
    end,
}
"#,
        )
        .unwrap_err()
        .to_string();
    // Line 6 of the config (the test adds the ROOT line above it).
    assert!(err.starts_with("lsyncd.conf.lua:6: `onCreate`"), "{err}");
    assert!(err.contains("custom action"), "{err}");
}

#[test]
fn a_string_action_and_a_layer_of_its_own_are_refused() {
    let tree = Tree::new(&["a"]);
    let err = tree
        .convert(r#"sync { default.rsync, source = ROOT .. "/src/a", target = "/x", onModify = "cp ^source ^target" }"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2: `onModify`"), "{err}");
    let err = tree
        .convert(
            "local echo = { maxProcesses = 1, action = function(inlet) end }\n\
             sync { echo, source = ROOT .. \"/src/a\" }\n",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(":2: `action`") || err.contains("`action`"),
        "{err}"
    );
}

#[test]
fn an_endless_loop_is_refused_not_a_hang() {
    let started = std::time::Instant::now();
    let err = convert(
        Path::new("loop.lua"),
        "local n = 0\nwhile true do n = n + 1 end\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("loop.lua:2: "), "{err}");
    assert!(err.contains("instruction budget"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn lua_errors_name_file_and_line() {
    let err = convert(Path::new("bad.lua"), "settings {\n  logfile = \n}\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("bad.lua:3:"), "{err}");
    let err = convert(Path::new("bad.lua"), "local x = nil\nsync { x.y }\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("bad.lua:2:"), "{err}");
    let err = convert(Path::new("os.lua"), "local h = os.getenv('HOME')\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("without `os`"), "{err}");
    let err = convert(Path::new("f.lua"), "dofile('/etc/passwd')\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("f.lua:1:"), "{err}");
}
