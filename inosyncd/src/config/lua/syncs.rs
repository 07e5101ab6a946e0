//! Each recorded `sync{}` as an inosync watch: its layer's settings flattened
//! (a table inherits from the tables in its sequence part, as in lsyncd), then
//! every documented key mapped, refused (custom actions) or kept as a comment.
//! Syncs of one source become one watch with several targets.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::LuaError;
use super::eval::{SyncCall, Val};
use super::rsync_opts;
use super::values::{ValueError, seconds, shown, strings};
use super::watch::Watch;

/// Keys that make a sync run Lua code or shell commands of its own.
const ACTIONS: &[&str] = &[
    "onCreate",
    "onModify",
    "onAttrib",
    "onDelete",
    "onMove",
    "onStartup",
    "onCollapse",
    "action",
    "prepare",
    "collect",
];

/// The watches of all `sync{}` calls, in order of their first call.
pub fn watches(
    file: &str,
    calls: &[SyncCall],
    warnings: &mut Vec<String>,
) -> Result<Vec<Watch>, LuaError> {
    // Looked up by source and by (source, line), not by scanning what is
    // there: a scan per call made 8,000 syncs take 0.6 s and 100,000 minutes.
    let mut out: Vec<Watch> = Vec::new();
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut lines_seen: HashSet<(usize, usize)> = HashSet::new();
    for call in calls {
        let watch = one(file, call, warnings)?;
        match by_path.get(&watch.path).map(|&i| (i, &mut out[i])) {
            Some((i, earlier)) if earlier.same_settings(&watch) => {
                for line in watch.lines {
                    // A sync{} in a loop is one line for several targets.
                    if lines_seen.insert((i, line)) {
                        earlier.lines.push(line);
                    }
                }
                earlier.targets.extend(watch.targets);
                earlier.comments.extend(watch.comments);
            }
            Some((_, earlier)) => {
                return Err(LuaError::Sync {
                    file: file.to_string(),
                    line: call.line,
                    problem: format!(
                        "this sync{{}} and the one on line {} both watch {} with different \
                         settings: inosync watches a tree once and its targets share its \
                         settings; give them the same settings (or different sources)",
                        earlier.lines[0], watch.path
                    ),
                });
            }
            None => {
                by_path.insert(watch.path.clone(), out.len());
                lines_seen.extend(watch.lines.iter().map(|&line| (out.len(), line)));
                out.push(watch);
            }
        }
    }
    Ok(out)
}

/// Inherits `value` as `key`, as lsyncd's `inheritKV()` does: a key already
/// set stays (the sync's own keys come first, then its positional tables in
/// order, then `default`); a table merges into one already set, its missing
/// keys added and its list entries appended (a layer's `exclude` adds to the
/// sync's), unless it says `_merge = false`.
fn put(keys: &mut BTreeMap<String, Val>, key: &str, value: &Val) {
    if key == "_merge" || key == "_verbatim" {
        return;
    }
    match (keys.get_mut(key), value) {
        (None, _) => {
            keys.insert(key.to_string(), value.clone());
        }
        (
            Some(Val::Table { seq, map }),
            Val::Table {
                seq: new_seq,
                map: new_map,
            },
        ) if new_map.get("_merge") != Some(&Val::Bool(false)) => {
            seq.extend(new_seq.iter().cloned());
            for (k, v) in new_map {
                put(map, k, v);
            }
        }
        (Some(_), _) => {}
    }
}

/// A sync's keys in lsyncd's order (`inherit()`): the table's own keys, then
/// each positional table's, depth first; a layer's keys set by the config
/// count like any other table's. The first layer found is the sync's.
fn flatten(
    file: &str,
    line: usize,
    table: &Val,
    keys: &mut BTreeMap<String, Val>,
    layer: &mut Option<String>,
    depth: usize,
) -> Result<(), LuaError> {
    let refuse = |line: usize, problem: String| LuaError::Sync {
        file: file.to_string(),
        line,
        problem,
    };
    let Val::Table { seq, map } = table else {
        return Err(refuse(line, "sync{} needs a table".into()));
    };
    for (key, value) in map {
        put(keys, key, value);
    }
    for inherited in seq {
        match inherited {
            Val::Layer { name, keys: set } => {
                layer.get_or_insert_with(|| name.clone());
                for (key, value) in set {
                    put(keys, key, value);
                }
            }
            Val::Table { .. } if depth < 8 => {
                flatten(file, line, inherited, keys, layer, depth + 1)?;
            }
            Val::Function(defined) => {
                return Err(refuse(
                    *defined,
                    "a Lua function as a sync{}'s action has no inosync equivalent (inosync \
                     runs rsync, never a script); keep lsyncd for this tree"
                        .into(),
                ));
            }
            other => {
                return Err(refuse(
                    line,
                    format!("unexpected {} in the sync{{}}'s list part", shown(other)),
                ));
            }
        }
    }
    Ok(())
}

/// One `sync{}` as a watch.
fn one(file: &str, call: &SyncCall, warnings: &mut Vec<String>) -> Result<Watch, LuaError> {
    let line = call.line;
    let refuse = |line: usize, problem: String| LuaError::Sync {
        file: file.to_string(),
        line,
        problem,
    };
    let mut keys = BTreeMap::new();
    let mut layer = None;
    flatten(file, line, &call.table, &mut keys, &mut layer, 0)?;
    // `default`'s own keys last and least, as in lsyncd.
    for (key, value) in &call.defaults {
        put(&mut keys, key, value);
    }

    // `init` is a flag in a sync, but a replaced `default.rsync.init` is the
    // function lsyncd runs at start: custom code like the actions.
    let init_code = matches!(keys.get("init"), Some(Val::Function(_)));
    for key in ACTIONS.iter().chain(init_code.then_some(&"init")) {
        if let Some(value) = keys.get(*key) {
            let at = match value {
                Val::Function(defined) => *defined,
                _ => line,
            };
            return Err(refuse(
                at,
                format!(
                    "`{key}` is a custom action: inosync has no equivalent (it runs rsync, never \
                     a script or Lua code); remove it to convert the rest, or keep lsyncd for \
                     this tree"
                ),
            ));
        }
    }
    if let Some((key, Val::Function(defined))) =
        keys.iter().find(|(_, v)| matches!(v, Val::Function(_)))
    {
        return Err(refuse(
            *defined,
            format!("`{key}` is a Lua function: inosync has no equivalent (it runs no Lua code)"),
        ));
    }
    let layer = match layer.as_deref() {
        Some(name @ ("rsync" | "rsyncssh" | "direct")) => name.to_string(),
        Some(other) => {
            return Err(refuse(line, format!("unknown layer default.{other}")));
        }
        None => {
            return Err(refuse(
                line,
                "this sync{} names none of default.rsync, default.rsyncssh, default.direct: a \
                 layer of its own is custom code, which inosync has no equivalent for"
                    .into(),
            ));
        }
    };

    let text = |key: &str| -> Result<Option<String>, LuaError> {
        match keys.get(key) {
            None => Ok(None),
            Some(Val::Str(s)) => Ok(Some(s.clone())),
            Some(Val::Num(n)) => Ok(Some(n.to_string())),
            Some(Val::NotUtf8(s)) => Err(refuse(
                line,
                format!("`{key}`: {}", ValueError::NotUtf8(s.clone())),
            )),
            Some(other) => Err(refuse(
                line,
                format!("`{key}` must be a string, not {}", shown(other)),
            )),
        }
    };
    let Some(path) = text("source")? else {
        return Err(refuse(line, "sync{} has no `source`".into()));
    };
    let (target_key, target) = match layer.as_str() {
        "rsyncssh" => {
            let host = text("host")?
                .ok_or_else(|| refuse(line, "default.rsyncssh needs `host`".into()))?;
            let dir = text("targetdir")?
                .ok_or_else(|| refuse(line, "default.rsyncssh needs `targetdir`".into()))?;
            ("host`/`targetdir", format!("{host}:{dir}"))
        }
        _ => (
            "target",
            text("target")?.ok_or_else(|| refuse(line, "sync{} has no `target`".into()))?,
        ),
    };
    // What `--check` would refuse in the output (a target read as an option).
    crate::config::checks::target(&target)
        .map_err(|problem| refuse(line, format!("`{target_key}`: {problem}")))?;

    let mut watch = Watch {
        lines: vec![line],
        layer: format!("default.{layer}"),
        path,
        targets: vec![target],
        excludes: Vec::new(),
        exclude_from: None,
        delete: None,
        delay: None,
        speed: None,
        no_init: false,
        rsync_args: Vec::new(),
        rsync_binary: None,
        comments: Vec::new(),
    };
    for (key, value) in &keys {
        let at = |problem: String| refuse(line, format!("`{key}`: {problem}"));
        match key.as_str() {
            "source" | "target" | "host" | "targetdir" => {}
            "exclude" => {
                let patterns = strings(value).map_err(|e| at(e.to_string()))?;
                for pattern in &patterns {
                    // A newline or NUL would make a config `--check` refuses.
                    crate::exclude::check_pattern(pattern).map_err(|e| at(e.to_string()))?;
                }
                watch.excludes.extend(patterns);
            }
            "excludeFrom" => watch.exclude_from = text(key)?,
            "filter" => {
                let rules = strings(value).map_err(|e| at(e.to_string()))?;
                let before = watch.excludes.len();
                rsync_opts::filter(&rules, &mut watch);
                for pattern in &watch.excludes[before..] {
                    crate::exclude::check_pattern(pattern).map_err(|e| at(e.to_string()))?;
                }
            }
            "filterFrom" => {
                let file = text(key)?.unwrap_or_default();
                watch.rsync_args.push(format!("--filter=merge {file}"));
                watch.comments.push(format!(
                    "filterFrom = {file:?}: passed to rsync as a merge rule; the watcher still \
                     sees changes the rules exclude (rsync skips them)"
                ));
            }
            "delete" => {
                watch.delete = Some(match value {
                    Val::Bool(true) => "true",
                    Val::Bool(false) => "false",
                    Val::Str(s) if s == "startup" => "\"startup\"",
                    Val::Str(s) if s == "running" => "\"running\"",
                    other => {
                        return Err(at(format!(
                            "{} is not one of true, false, \"startup\", \"running\"",
                            shown(other)
                        )));
                    }
                });
            }
            "delay" => watch.delay = Some(seconds(value).map_err(|e| at(e.to_string()))?),
            "init" => match value {
                Val::Bool(b) => watch.no_init = !b,
                other => {
                    return Err(at(format!("must be true or false, not {}", shown(other))));
                }
            },
            "rsync" => rsync_opts::rsync_table(value, &mut watch).map_err(|e| at(e.to_string()))?,
            "ssh" => rsync_opts::ssh_table(value, &mut watch).map_err(|e| at(e.to_string()))?,
            "maxDelays" => watch.comments.push(format!(
                "maxDelays = {}: no equivalent; inosync starts a batch after `delay`, and a \
                 batch too large to list becomes a full sync",
                shown(value)
            )),
            "maxProcesses" => watch.comments.push(format!(
                "maxProcesses = {}: inosync's limit is global (`max_parallel`); one rsync runs \
                 per watch and target at a time",
                shown(value)
            )),
            other => {
                warnings.push(format!(
                    "{file}:{line}: sync{{}} key `{other}` is not one lsyncd documents for its \
                     default layers; left out (see the comment in the output)"
                ));
                watch.comments.push(format!(
                    "{other} = {}: unknown to lsyncd's default layers; left out",
                    shown(value)
                ));
            }
        }
    }
    Ok(watch)
}
