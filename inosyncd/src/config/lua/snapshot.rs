//! Lua values as plain Rust values ([`Val`]): a `sync{}` or `settings` table
//! copied as it is at the call, lsyncd's layers (and tables copied from them)
//! recognised by their marker, bounded in depth and size. Kept apart from the
//! sandbox (`eval.rs`) that calls it.

use std::collections::BTreeMap;

use mlua::{Lua, Table, Value};
/// How deep nested tables are followed (a table that contains itself stops here).
const MAX_DEPTH: usize = 16;
/// How many values one `sync{}` or `settings` table may hold, nested ones
/// included (a table holding itself under many keys would otherwise be copied
/// exponentially often).
const MAX_VALUES: usize = 100_000;

/// The copying of one table: values so far, and whether it was cut short.
#[derive(Default)]
pub(super) struct Snap {
    pub(super) values: usize,
    pub(super) cut: bool,
}
/// The field that marks `default.rsync`, `default.rsyncssh`, `default.direct`.
pub(super) const LAYER_KEY: &str = "__inosync_layer";

/// A Lua value as the converter sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A string.
    Str(String),
    /// A string that is not UTF-8 (a path with a byte like 0xff), shown with
    /// U+FFFD: a TOML string cannot carry it, so a setting refuses it.
    NotUtf8(String),
    /// A number (integer or float).
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// A table: its sequence part, then its string keys in order.
    Table {
        /// `t[1]`, `t[2]`, ... up to the first nil.
        seq: Vec<Val>,
        /// Every string key.
        map: BTreeMap<String, Val>,
    },
    /// A Lua function, with the line it is defined on.
    Function(usize),
    /// One of lsyncd's default layers (`rsync`, `rsyncssh`, `direct`), or a
    /// table copied from one (its marker copied along), with the keys the
    /// config set in it: they count as if written in the sync.
    Layer {
        /// `rsync`, `rsyncssh` or `direct`.
        name: String,
        /// Every other string key of the table.
        keys: BTreeMap<String, Val>,
    },
    /// Anything else (userdata, threads): its type name.
    Other(&'static str),
}

/// The keys of the global `default` table as they are now, its layers left
/// out, also when the config replaced one by a table of its own (`default.rsync
/// = { default.rsync, delete = false }`): a sync names those itself, and read
/// as `default`'s keys they would pass for the sync's `rsync` options.
pub(super) fn defaults_now(lua: &Lua, snap: &mut Snap) -> BTreeMap<String, Val> {
    let Ok(Value::Table(default)) = lua.globals().get::<Value>("default") else {
        return BTreeMap::new();
    };
    let Val::Table { map, .. } = snapshot(&default, 0, snap) else {
        return BTreeMap::new();
    };
    map.into_iter()
        .filter(|(key, value)| {
            !matches!(value, Val::Layer { .. })
                && !matches!(key.as_str(), "rsync" | "rsyncssh" | "direct")
        })
        .collect()
}

/// A copy of a table as it is now (later changes to it do not count, as in
/// lsyncd, which reads a `sync{}` table when it is called).
pub(super) fn snapshot(table: &Table, depth: usize, snap: &mut Snap) -> Val {
    if depth > MAX_DEPTH || snap.values > MAX_VALUES {
        snap.cut = true;
        return Val::Other("table nested too deep or too large");
    }
    let layer = match table.raw_get::<Value>(LAYER_KEY) {
        Ok(Value::String(layer)) => Some(layer.to_string_lossy()),
        _ => None,
    };
    let mut seq = Vec::new();
    let mut map = BTreeMap::new();
    let len = table.raw_len();
    for i in 1..=len {
        if let Ok(value) = table.raw_get::<Value>(i) {
            seq.push(value_of(&value, depth, snap));
        }
    }
    for (key, value) in table.pairs::<Value, Value>().flatten() {
        match key {
            Value::String(key) if key == LAYER_KEY => {}
            Value::String(key) => {
                map.insert(key.to_string_lossy(), value_of(&value, depth, snap));
            }
            Value::Integer(i) if i >= 1 && usize::try_from(i).is_ok_and(|i| i <= len) => {}
            other => {
                let key = other
                    .to_string()
                    .unwrap_or_else(|_| other.type_name().into());
                map.insert(key, value_of(&value, depth, snap));
            }
        }
    }
    match layer {
        Some(name) => Val::Layer { name, keys: map },
        None => Val::Table { seq, map },
    }
}

fn value_of(value: &Value, depth: usize, snap: &mut Snap) -> Val {
    snap.values += 1;
    match value {
        Value::String(s) => match s.to_str() {
            Ok(text) => Val::Str(text.to_string()),
            Err(_) => Val::NotUtf8(s.to_string_lossy()),
        },
        Value::Integer(i) => Val::Num(*i as f64),
        Value::Number(n) => Val::Num(*n),
        Value::Boolean(b) => Val::Bool(*b),
        Value::Table(t) => snapshot(t, depth + 1, snap),
        Value::Function(f) => Val::Function(f.info().line_defined.unwrap_or(0)),
        Value::Nil => Val::Other("nil"),
        other => Val::Other(other.type_name()),
    }
}
