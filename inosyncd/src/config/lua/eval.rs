//! Runs an lsyncd config (a Lua program) in a sandbox and records what it asks
//! for: the `settings` it sets and each `sync{}` call, as plain values. The
//! sandbox has Lua's base library without file loading, and the string, table
//! and math libraries: no io, os, package or debug. A run is bounded in
//! instructions and in memory, so `while true do end` or a string doubled in a
//! loop ends with an error naming its line, never a hang.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Value, Variadic, VmState};

use super::LuaError;
pub use super::snapshot::Val;
use super::snapshot::{LAYER_KEY, Snap, defaults_now, snapshot};

/// Instructions between two looks at the budget.
const HOOK_EVERY: u32 = 10_000;
/// How many looks a config may take: 50 million instructions, a second or so,
/// far more than a config with thousands of `sync{}` calls needs.
const BUDGET: u32 = 5_000;
/// The time a config may run, whatever its instruction count.
const WALL_CLOCK: std::time::Duration = std::time::Duration::from_secs(10);
/// How many `sync{}` calls a config may make: far more than any real one
/// (each is a watch with inotify watches of its own), and few enough that a
/// loop of millions stops at once instead of filling memory.
pub const MAX_SYNCS: usize = 10_000;
/// How many values all `sync{}` tables together may hold once copied: each
/// call copies what it is given, so a list shared by many calls is copied
/// into each, in Rust memory the Lua limit does not see (10,000 syncs of a
/// 100,000-entry list would be a billion values).
const MAX_TOTAL_VALUES: usize = 1_000_000;
/// The memory a config may use.
const MEMORY: usize = 64 << 20;

/// One `sync{}` call: its line and its table.
#[derive(Debug, Clone)]
pub struct SyncCall {
    /// The line of the call.
    pub line: usize,
    /// What it was given, as it was at the call.
    pub table: Val,
    /// The keys of the `default` table itself at the call (`default.delay =
    /// 5`), its layers left out: lsyncd looks there last for every sync.
    pub defaults: BTreeMap<String, Val>,
}

/// What a config asked for.
#[derive(Debug, Default)]
pub struct Recorded {
    /// `settings{...}` calls and the `settings = {...}` table, merged in order.
    pub settings: BTreeMap<String, (Val, usize)>,
    /// The `sync{}` calls in order.
    pub syncs: Vec<SyncCall>,
}

/// Runs the config and returns what it recorded. The run has a thread of its
/// own, waited for a bounded time: a library call that loops in C (a string
/// pattern that backtracks for hours) runs no Lua instruction, so neither the
/// budget nor the clock in the hook would see it. Such a thread is left
/// behind; `--convert` exits right after.
pub fn run(file: &Path, text: &[u8]) -> Result<Recorded, LuaError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (owned_file, owned_text) = (file.to_path_buf(), text.to_vec());
    std::thread::Builder::new()
        .name("lua-config".into())
        .spawn(move || {
            let _ = tx.send(run_here(&owned_file, &owned_text));
        })
        .map_err(|e| LuaError::Setup(e.to_string()))?;
    rx.recv_timeout(WALL_CLOCK + WALL_CLOCK / 2)
        .unwrap_or_else(|_| {
            Err(LuaError::TooSlow {
                file: file.display().to_string(),
                seconds: (WALL_CLOCK + WALL_CLOCK / 2).as_secs(),
            })
        })
}

/// [`run`] on this thread.
fn run_here(file: &Path, text: &[u8]) -> Result<Recorded, LuaError> {
    let name = file.display().to_string();
    let lua_failed = |e: mlua::Error| LuaError::Setup(e.to_string());
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH,
        LuaOptions::default(),
    )
    .map_err(lua_failed)?;
    lua.set_memory_limit(MEMORY).map_err(lua_failed)?;
    let recorded = Rc::new(RefCell::new(Recorded::default()));
    let failure: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
    install_globals(&lua, &name, &recorded, &failure).map_err(lua_failed)?;

    let looks = Rc::new(Cell::new(0u32));
    let stopped_at = Rc::new(Cell::new(None));
    harden(&lua, &stopped_at).map_err(lua_failed)?;
    {
        let (looks, stopped_at) = (looks.clone(), stopped_at.clone());
        let started = std::time::Instant::now();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, debug| {
                looks.set(looks.get() + 1);
                // The clock too: a slow machine or an expensive library call
                // between two looks must not stretch the run without end.
                if looks.get() > BUDGET || started.elapsed() > WALL_CLOCK {
                    stopped_at.set(Some(debug.current_line().unwrap_or(0)));
                    return Err(mlua::Error::runtime("instruction budget exhausted"));
                }
                Ok(VmState::Continue)
            },
        )
        .map_err(lua_failed)?;
    }

    let result = lua
        .load(lua_file_text(text))
        .set_name(format!("@{name}"))
        .exec();
    if let Some(line) = stopped_at.get() {
        return Err(LuaError::TooLong { file: name, line });
    }
    if let Some(problem) = failure.borrow_mut().take() {
        return Err(LuaError::Config(problem));
    }
    result.map_err(|e| lua_error(&name, &e))?;

    // The old form: `settings = { ... }` replaced the callable table.
    if let Ok(Value::Table(table)) = lua.globals().get::<Value>("settings")
        && let Val::Table { map, .. } = snapshot(&table, 0, &mut Snap::default())
    {
        let mut recorded = recorded.borrow_mut();
        for (key, value) in map {
            recorded.settings.entry(key).or_insert((value, 0));
        }
    }
    drop(lua);
    Rc::try_unwrap(recorded)
        .map(RefCell::into_inner)
        .map_err(|_| LuaError::Setup("the interpreter kept the record".into()))
}

/// The chunk as lsyncd's `luaL_loadfile` reads the file: a UTF-8 byte-order
/// mark, then a first line starting with `#` (`#!/usr/bin/lsyncd`) skipped.
/// The line's newline stays, so errors name the file's own line numbers.
fn lua_file_text(text: &[u8]) -> &[u8] {
    let text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
    if text.starts_with(b"#") {
        let newline = text.iter().position(|&b| b == b'\n');
        newline.map_or(&[], |newline| &text[newline..])
    } else {
        text
    }
}

/// `settings` (a table one may call or assign to), `sync`, `default.*`, and a
/// `print` that writes to stderr (stdout is the TOML). File loading is removed.
fn install_globals(
    lua: &Lua,
    file: &str,
    recorded: &Rc<RefCell<Recorded>>,
    failure: &Rc<RefCell<Option<String>>>,
) -> mlua::Result<()> {
    let globals = lua.globals();
    for name in ["dofile", "loadfile", "require", "load", "collectgarbage"] {
        globals.set(name, Value::Nil)?;
    }
    let print = lua.create_function(|_, args: mlua::Variadic<Value>| {
        let words: Vec<String> = args
            .iter()
            .map(|v| v.to_string().unwrap_or_else(|_| v.type_name().to_string()))
            .collect();
        eprintln!("lua print: {}", words.join("\t"));
        Ok(())
    })?;
    globals.set("print", print)?;

    let default = lua.create_table()?;
    for layer in ["rsync", "rsyncssh", "direct"] {
        let marker = lua.create_table()?;
        marker.set(LAYER_KEY, layer)?;
        // lsyncd has these tables, so `default.rsync.rsync.compress = true`
        // must not index nil; what is set in them is read like the sync's own.
        marker.set("rsync", lua.create_table()?)?;
        if layer == "rsyncssh" {
            marker.set("ssh", lua.create_table()?)?;
        }
        default.set(layer, marker)?;
    }
    globals.set("default", default)?;

    let calls = recorded.clone();
    let failed = failure.clone();
    let file = file.to_string();
    let total = Cell::new(0usize);
    let sync = lua.create_function(move |lua, arg: Value| {
        let line = caller_line(lua);
        if calls.borrow().syncs.len() >= MAX_SYNCS {
            failed.borrow_mut().get_or_insert(format!(
                "{file}:{line}: more than {MAX_SYNCS} sync{{}} calls: inosync converts at \
                 most {MAX_SYNCS} (a loop that never ends?)"
            ));
            return Err(mlua::Error::runtime("too many sync{} calls"));
        }
        match arg {
            Value::Table(table) => {
                let mut snap = Snap::default();
                let table = snapshot(&table, 0, &mut snap);
                let defaults = defaults_now(lua, &mut snap);
                if snap.cut {
                    failed.borrow_mut().get_or_insert(format!(
                        "{file}:{line}: this sync{{}}'s table nests too deep or holds too much \
                         (a table that contains itself?)"
                    ));
                }
                total.set(total.get() + snap.values);
                if total.get() > MAX_TOTAL_VALUES {
                    failed.borrow_mut().get_or_insert(format!(
                        "{file}:{line}: the sync{{}} tables so far hold more than \
                         {MAX_TOTAL_VALUES} values in all (a long list shared by every sync{{}} \
                         is copied into each: put it in an excludeFrom file)"
                    ));
                    return Err(mlua::Error::runtime("sync{} tables too large in all"));
                }
                calls.borrow_mut().syncs.push(SyncCall {
                    line,
                    table,
                    defaults,
                });
            }
            other => {
                failed.borrow_mut().get_or_insert(format!(
                    "{file}:{line}: sync needs a table (sync{{ default.rsync, source = ..., \
                     target = ... }}), got {}",
                    other.type_name()
                ));
            }
        }
        Ok(())
    })?;
    globals.set("sync", sync)?;

    let settings = lua.create_table()?;
    let meta = lua.create_table()?;
    let calls = recorded.clone();
    let call = lua.create_function(move |lua, (_this, arg): (Value, Value)| {
        let line = caller_line(lua);
        if let Value::Table(table) = arg
            && let Val::Table { map, .. } = snapshot(&table, 0, &mut Snap::default())
        {
            let mut recorded = calls.borrow_mut();
            for (key, value) in map {
                recorded.settings.insert(key, (value, line));
            }
        }
        Ok(())
    })?;
    meta.set("__call", call)?;
    settings.set_metatable(Some(meta))?;
    globals.set("settings", settings)?;
    Ok(())
}

/// Closes the two ways out of the instruction budget: `pcall` catching the
/// budget's error (its replacement passes that error on), and finalizers
/// (`__gc`), which Lua runs with hooks off, at close (refused in
/// `setmetatable`). `xpcall` is removed.
fn harden(lua: &Lua, stopped_at: &Rc<Cell<Option<usize>>>) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.set("xpcall", Value::Nil)?;
    let stopped = stopped_at.clone();
    let pcall = lua.create_function(move |lua, (f, args): (Function, Variadic<Value>)| {
        match f.call::<Variadic<Value>>(args) {
            Ok(values) => Ok(std::iter::once(Value::Boolean(true))
                .chain(values)
                .collect::<Variadic<Value>>()),
            Err(e) if stopped.get().is_some() => Err(e),
            Err(mlua::Error::MemoryError(m)) => Err(mlua::Error::MemoryError(m)),
            Err(e) => {
                let message = Value::String(lua.create_string(e.to_string())?);
                Ok(Variadic::from(vec![Value::Boolean(false), message]))
            }
        }
    })?;
    globals.set("pcall", pcall)?;
    let raw: Function = globals.get("setmetatable")?;
    let setmetatable = lua.create_function(move |lua, (table, meta): (Value, Value)| {
        if let Value::Table(meta) = &meta
            && !meta.raw_get::<Value>("__gc")?.is_nil()
        {
            return Err(mlua::Error::runtime(format!(
                "line {}: a finalizer (__gc) is not allowed in a config converted by inosyncd",
                caller_line(lua)
            )));
        }
        raw.call::<Value>((table, meta))
    })?;
    globals.set("setmetatable", setmetatable)?;
    // `error({})` would reach the user as `table: 0x...` with no line (Lua
    // adds the position to string messages only): say what it was, where.
    let raw: Function = globals.get("error")?;
    let error = lua.create_function(move |lua, (value, level): (Value, Option<i64>)| {
        match value {
            Value::String(_) | Value::Integer(_) | Value::Number(_) => {
                // One level more: this function is now between error and its caller.
                let level = level.unwrap_or(1);
                raw.call::<()>((value, if level > 0 { level + 1 } else { level }))
            }
            other => Err(mlua::Error::runtime(format!(
                "line {}: error() was called with a {} as the error value, not a message",
                caller_line(lua),
                other.type_name()
            ))),
        }
    })?;
    globals.set("error", error)?;
    Ok(())
}

/// The line of the Lua code that called the running Rust function.
fn caller_line(lua: &Lua) -> usize {
    lua.inspect_stack(1, |debug| debug.current_line())
        .flatten()
        .unwrap_or(0)
}

/// A Lua error as one line naming the file and line (no traceback).
fn lua_error(file: &str, e: &mlua::Error) -> LuaError {
    let root = match e {
        mlua::Error::CallbackError { cause, .. } => cause.as_ref(),
        other => other,
    };
    if let mlua::Error::MemoryError(_) = root {
        return LuaError::TooMuchMemory {
            file: file.to_string(),
            limit_mib: MEMORY >> 20,
        };
    }
    let text = match root {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => message.clone(),
        other => other.to_string(),
    };
    let first = text
        .split("\nstack traceback:")
        .next()
        .unwrap_or(&text)
        .trim();
    // Our own callbacks say `line N: ...`: in Lua's words, `FILE:N: ...`.
    let own = first
        .strip_prefix("runtime error: ")
        .unwrap_or(first)
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(n, _)| n.parse::<usize>().is_ok())
        .map(|(n, rest)| format!("{file}:{n}: {rest}"));
    let mut message = if let Some(own) = own {
        own
    } else if first.starts_with(file) {
        first.to_string()
    } else {
        format!("{file}: {first}")
    };
    for lib in [
        "os", "io", "package", "debug", "require", "dofile", "loadfile", "load",
    ] {
        if message.contains(&format!("'{lib}'")) {
            message.push_str(&format!(
                " (the converter runs the config without `{lib}`: no file, OS or network \
                 access; write the value itself)"
            ));
            break;
        }
    }
    LuaError::Lua(message)
}
