//! The original inosync config: a Python file that only assigns literals. We read
//! the subset inosync's README documents (strings, numbers, lists of strings,
//! comments) with a small tokenizer; anything else is an error with its line number,
//! never executed and never guessed at.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError, EventSet, WatchConfig, checks};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Equals,
    Str(String),
    Number(f64),
    Open,
    Close,
    Comma,
    Newline,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Number(f64),
    List(Vec<(String, usize)>),
}

/// A problem at a line: `(line, what is wrong)`.
type Located<T> = Result<T, (usize, String)>;

fn tokenize(text: &str) -> Located<Vec<(Token, usize)>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                chars.next();
                tokens.push((Token::Newline, line));
                line += 1;
            }
            ' ' | '\t' | '\r' => {
                chars.next();
            }
            '\\' => {
                // Explicit line continuation.
                chars.next();
                if chars.next() != Some('\n') {
                    return Err((line, "stray backslash".into()));
                }
                line += 1;
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '=' => {
                chars.next();
                tokens.push((Token::Equals, line));
            }
            '[' => {
                chars.next();
                tokens.push((Token::Open, line));
            }
            ']' => {
                chars.next();
                tokens.push((Token::Close, line));
            }
            ',' => {
                chars.next();
                tokens.push((Token::Comma, line));
            }
            '"' | '\'' => {
                let start = line;
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None | Some('\n') => return Err((start, "unterminated string".into())),
                        Some(q) if q == c => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('\\') => s.push('\\'),
                            Some('\'') => s.push('\''),
                            Some('"') => s.push('"'),
                            Some(other) => {
                                s.push('\\');
                                s.push(other);
                            }
                            None => return Err((start, "unterminated string".into())),
                        },
                        Some(other) => s.push(other),
                    }
                }
                tokens.push((Token::Str(s), start));
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let mut s = String::new();
                while chars
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '_' | 'e' | 'E'))
                {
                    s.extend(chars.next());
                }
                let n: f64 = s
                    .replace('_', "")
                    .parse()
                    .map_err(|_| (line, format!("{s:?} is not a number")))?;
                tokens.push((Token::Number(n), line));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while chars
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    s.extend(chars.next());
                }
                tokens.push((Token::Name(s), line));
            }
            other => return Err((line, format!("unexpected character {other:?}"))),
        }
    }
    tokens.push((Token::Newline, line));
    Ok(tokens)
}

/// Reads `name = literal` statements in order.
fn statements(text: &str) -> Located<Vec<(String, Value, usize)>> {
    let tokens = tokenize(text)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = &tokens[i];
        match token {
            Token::Newline => {
                i += 1;
                continue;
            }
            Token::Name(name) => {
                if tokens.get(i + 1).map(|t| &t.0) != Some(&Token::Equals) {
                    return Err((*line, format!("expected `{name} = <value>`")));
                }
                let (value, next) = literal(&tokens, i + 2)?;
                match tokens.get(next) {
                    Some((Token::Newline, _)) => {}
                    Some((_, l)) => return Err((*l, "only one literal per assignment".into())),
                    None => {}
                }
                out.push((name.clone(), value, *line));
                i = next + 1;
            }
            _ => {
                return Err((
                    *line,
                    "expected an assignment such as `wpaths = [...]`".into(),
                ));
            }
        }
    }
    Ok(out)
}

fn literal(tokens: &[(Token, usize)], start: usize) -> Located<(Value, usize)> {
    let line = tokens.get(start).map_or(0, |t| t.1);
    match tokens.get(start).map(|t| &t.0) {
        Some(Token::Str(s)) => Ok((Value::Str(s.clone()), start + 1)),
        Some(Token::Number(n)) => Ok((Value::Number(*n), start + 1)),
        Some(Token::Name(b)) if b == "True" || b == "False" => Ok((
            Value::Number(if b == "True" { 1.0 } else { 0.0 }),
            start + 1,
        )),
        Some(Token::Open) => {
            let mut items = Vec::new();
            let mut i = start + 1;
            loop {
                while tokens.get(i).map(|t| &t.0) == Some(&Token::Newline) {
                    i += 1;
                }
                match tokens.get(i) {
                    Some((Token::Close, _)) => return Ok((Value::List(items), i + 1)),
                    Some((Token::Str(s), l)) => {
                        items.push((s.clone(), *l));
                        i += 1;
                    }
                    Some((_, l)) => return Err((*l, "lists may only hold strings".into())),
                    None => return Err((line, "unterminated list".into())),
                }
                while tokens.get(i).map(|t| &t.0) == Some(&Token::Newline) {
                    i += 1;
                }
                match tokens.get(i) {
                    Some((Token::Comma, _)) => i += 1,
                    Some((Token::Close, _)) => {}
                    Some((_, l)) => return Err((*l, "expected ',' or ']' in list".into())),
                    None => return Err((line, "unterminated list".into())),
                }
            }
        }
        _ => Err((
            line,
            "expected a string, a number or a list of strings".into(),
        )),
    }
}

/// Parses an inosync `.py` config into the common model.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    parse_with(file, text, None)
}

/// For `--convert`: as [`parse`], but a watch path that does not exist on this
/// machine (converting is often done before the move, on another host) is kept
/// as written, with a warning in `missing`.
pub fn parse_for_convert(file: &Path, text: &str) -> Result<(Config, Vec<String>), ConfigError> {
    let mut missing = Vec::new();
    let config = parse_with(file, text, Some(&mut missing))?;
    Ok((config, missing))
}

fn parse_with(
    file: &Path,
    text: &str,
    mut missing: Option<&mut Vec<String>>,
) -> Result<Config, ConfigError> {
    let at = |line: usize, what: &str, problem: &dyn std::fmt::Display| {
        ConfigError(format!("{}:{line}: {what}: {problem}", file.display()))
    };
    let stmts = statements(text)
        .map_err(|(line, problem)| ConfigError(format!("{}:{line}: {problem}", file.display())))?;

    let mut config = Config::default();
    let mut wpaths: Vec<(String, usize)> = Vec::new();
    let mut rpaths: Option<(Vec<(String, usize)>, usize)> = None;
    for (name, value, line) in stmts {
        let wrong = |expected: &str| at(line, &name, &format!("must be {expected}"));
        match (name.as_str(), value) {
            ("wpaths", Value::List(list)) => wpaths = list,
            ("rpaths", Value::List(list)) => rpaths = Some((list, line)),
            ("rnodes", Value::List(list)) => {
                config.targets.clear();
                for (target, l) in list {
                    checks::target(&target).map_err(|e| at(l, "rnodes", &e))?;
                    config.targets.push(target);
                }
            }
            ("rexcludes", Value::List(list)) => {
                config.excludes.clear();
                for (pattern, l) in list {
                    crate::exclude::check_pattern(&pattern).map_err(|e| at(l, "rexcludes", &e))?;
                    config.excludes.push(pattern);
                }
            }
            ("extra", Value::Str(extra)) => {
                // inosync handed `extra` to a shell: split it as one does, so
                // quoted options (`--rsh='ssh -i key'`) stay one argument.
                config.rsync_args = shlex::split(&extra).ok_or_else(|| {
                    at(
                        line,
                        "extra",
                        &"unbalanced quotes (it is split as a shell would)",
                    )
                })?;
            }
            ("rspeed", Value::Number(n)) => {
                if n < 0.0 || n.fract() != 0.0 || n > f64::from(u32::MAX) {
                    return Err(wrong("a whole number of KB/s >= 0"));
                }
                config.speed = n as u32;
            }
            ("edelay", Value::Number(n)) => {
                checks::seconds(n).map_err(|e| at(line, "edelay", &e))?;
                config.delay = n;
            }
            ("emask", Value::List(list)) => {
                let names: Vec<String> = list.into_iter().map(|(n, _)| n).collect();
                config.events = EventSet::from_names(&names).map_err(|e| at(line, "emask", &e))?;
            }
            ("rsync", Value::Str(path)) if !path.is_empty() => config.rsync = path.into(),
            ("logfile", Value::Str(path)) => {
                if !Path::new(&path).is_absolute() {
                    return Err(wrong("an absolute path"));
                }
                config.log_file = Some(path.into());
            }
            ("wpaths" | "rpaths" | "rnodes" | "rexcludes" | "emask", _) => {
                return Err(wrong("a list of strings"));
            }
            ("extra" | "rsync" | "logfile", _) => return Err(wrong("a non-empty string")),
            ("rspeed" | "edelay", _) => return Err(wrong("a number")),
            (other, _) => {
                return Err(at(
                    line,
                    other,
                    &"unknown variable; inosync configs may set wpaths, rpaths, rnodes, \
                     rexcludes, extra, rspeed, emask, edelay, rsync, logfile",
                ));
            }
        }
    }

    let rpaths = match rpaths {
        Some((list, line)) => {
            if list.len() != wpaths.len() {
                return Err(at(
                    line,
                    "rpaths",
                    &format!(
                        "has {} entries but wpaths has {}: they correspond one to one",
                        list.len(),
                        wpaths.len()
                    ),
                ));
            }
            for (remote_path, item_line) in &list {
                checks::remote_path(remote_path).map_err(|e| at(*item_line, "rpaths", &e))?;
            }
            list.into_iter().map(|(p, _)| p).collect()
        }
        None => wpaths.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
    };
    let mut lines = Vec::new();
    for ((wpath, line), remote_path) in wpaths.into_iter().zip(rpaths) {
        let path = match (checks::absolute_watch_dir(&wpath), missing.as_deref_mut()) {
            (Ok(path), _) => path,
            (Err(e), Some(missing)) if Path::new(&wpath).is_absolute() => {
                missing.push(format!(
                    "{}:{line}: wpaths: {e}: converted as written; `inosyncd --check` refuses                      it until the directory exists",
                    file.display()
                ));
                PathBuf::from(&wpath)
            }
            (Err(e), _) => return Err(at(line, "wpaths", &e)),
        };
        lines.push(line);
        config.watches.push(WatchConfig::new(path, remote_path));
    }
    config.check_watches(|i| format!("{}:{}: wpaths", file.display(), lines[i]))?;
    Ok(config)
}

#[cfg(test)]
mod tests;
