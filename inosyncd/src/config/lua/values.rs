//! Lua values read as settings: a string or a list of strings, a number, and a
//! value as a comment shows it. Shared by the readers of `sync{}`
//! (`syncs.rs`), of its `rsync`/`ssh` tables (`rsync_opts.rs`) and the writer
//! (`emit.rs`).

use super::eval::Val;

/// Why a Lua value is not the setting it stands for; the reader of `sync{}`
/// puts it after the key and the line (`LuaError`).
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// A list with something else than strings in it.
    #[error("must hold strings, not {0}")]
    NotStrings(String),
    /// A string that is not UTF-8, which a TOML string cannot carry.
    #[error(
        "{0:?} holds bytes that are not UTF-8 (shown as U+FFFD): a TOML config cannot carry \
         them; rename the path (or keep lsyncd for this tree)"
    )]
    NotUtf8(String),
    /// Neither a string nor a list of them.
    #[error("must be a string or a list of strings, not {0}")]
    NotStringOrList(String),
    /// A string that does not parse as a number.
    #[error("{0:?} is not a number")]
    NotANumber(String),
    /// Neither a number nor a string holding one.
    #[error("must be a number, not {0}")]
    NotNumber(String),
    /// Negative, infinite or NaN.
    #[error("{0} is not a number >= 0")]
    OutOfRange(f64),
    /// More seconds than inosync accepts (`2^70` would print as 22 digits).
    #[error("{0:e} seconds is too large: at most {MAX_SECONDS} seconds")]
    TooManySeconds(f64),
}

/// The most seconds a delay may be: what `inosyncd --check` accepts
/// (`checks::seconds`), so the output never fails its own check.
pub use inosync_proto::MAX_SECONDS;

/// A number of seconds, within what `--check` accepts.
pub fn seconds(value: &Val) -> Result<f64, ValueError> {
    let n = number(value)?;
    if n > MAX_SECONDS {
        return Err(ValueError::TooManySeconds(n));
    }
    Ok(n)
}

/// A string or a list of strings.
pub fn strings(value: &Val) -> Result<Vec<String>, ValueError> {
    match value {
        Val::Str(s) => Ok(vec![s.clone()]),
        Val::NotUtf8(s) => Err(ValueError::NotUtf8(s.clone())),
        Val::Table { seq, map } if map.is_empty() => seq
            .iter()
            .map(|v| match v {
                Val::Str(s) => Ok(s.clone()),
                Val::NotUtf8(s) => Err(ValueError::NotUtf8(s.clone())),
                other => Err(ValueError::NotStrings(shown(other))),
            })
            .collect(),
        other => Err(ValueError::NotStringOrList(shown(other))),
    }
}

/// A number, or a string holding one (Lua converts those too).
pub fn number(value: &Val) -> Result<f64, ValueError> {
    let n = match value {
        Val::Num(n) => *n,
        Val::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| ValueError::NotANumber(s.clone()))?,
        other => return Err(ValueError::NotNumber(shown(other))),
    };
    if n.is_finite() && n >= 0.0 {
        Ok(n)
    } else {
        Err(ValueError::OutOfRange(n))
    }
}

/// A value as a comment shows it.
pub fn shown(value: &Val) -> String {
    match value {
        Val::Str(s) => format!("{s:?}"),
        Val::NotUtf8(s) => format!("{s:?} (not UTF-8)"),
        Val::Num(n) => n.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::Table { seq, map } => {
            let mut parts: Vec<String> = seq.iter().map(shown).collect();
            parts.extend(map.iter().map(|(k, v)| format!("{k} = {}", shown(v))));
            format!("{{ {} }}", parts.join(", "))
        }
        Val::Function(line) => format!("function (line {line})"),
        Val::Layer { name, .. } => format!("default.{name}"),
        Val::Other(what) => what.to_string(),
    }
}
