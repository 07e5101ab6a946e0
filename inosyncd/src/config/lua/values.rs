//! Lua values read as settings: a string or a list of strings, a number, and a
//! value as a comment shows it. Shared by the readers of `sync{}`
//! (`syncs.rs`), of its `rsync`/`ssh` tables (`rsync_opts.rs`) and the writer
//! (`emit.rs`).

use super::eval::Val;

/// A string or a list of strings.
pub fn strings(value: &Val) -> Result<Vec<String>, String> {
    match value {
        Val::Str(s) => Ok(vec![s.clone()]),
        Val::Table { seq, map } if map.is_empty() => seq
            .iter()
            .map(|v| match v {
                Val::Str(s) => Ok(s.clone()),
                other => Err(format!("must hold strings, not {other:?}")),
            })
            .collect(),
        other => Err(format!(
            "must be a string or a list of strings, not {other:?}"
        )),
    }
}

/// A number, or a string holding one (Lua converts those too).
pub fn number(value: &Val) -> Result<f64, String> {
    let n = match value {
        Val::Num(n) => *n,
        Val::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{s:?} is not a number"))?,
        other => return Err(format!("must be a number, not {other:?}")),
    };
    if n.is_finite() && n >= 0.0 {
        Ok(n)
    } else {
        Err(format!("{n} is not a number >= 0"))
    }
}

/// A value as a comment shows it.
pub fn shown(value: &Val) -> String {
    match value {
        Val::Str(s) => format!("{s:?}"),
        Val::Num(n) => n.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::Table { seq, map } => {
            let mut parts: Vec<String> = seq.iter().map(shown).collect();
            parts.extend(map.iter().map(|(k, v)| format!("{k} = {}", shown(v))));
            format!("{{ {} }}", parts.join(", "))
        }
        Val::Function(line) => format!("function (line {line})"),
        Val::Layer(name) => format!("default.{name}"),
        Val::Other(what) => what.to_string(),
    }
}
