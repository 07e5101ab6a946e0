//! `exclude_from = "FILE"` (README "Config (TOML)"): exclude patterns kept in a
//! file of their own, one a line as rsync's `--exclude-from` reads them, so a
//! list shared with other tools (or an lsyncd `excludeFrom`) needs no copying.
//! Read at start, `--check` and every reload.

use std::path::Path;

/// The patterns of an exclude file: every line but blank ones and comments
/// (`#` or `;` first, as rsync has it). Patterns are checked as `excludes` are.
/// The error names the file (and the line of a bad pattern).
pub fn read(file: &str) -> Result<Vec<String>, String> {
    if !Path::new(file).is_absolute() {
        return Err(format!("{file:?} is not an absolute path"));
    }
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "{file} is not valid UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    parse(file, &text)
}

/// [`read`] on text already in memory.
fn parse(file: &str, text: &str) -> Result<Vec<String>, String> {
    let mut patterns = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        crate::exclude::check_pattern(line).map_err(|e| format!("{file}:{}: {e}", i + 1))?;
        patterns.push(line.to_string());
    }
    Ok(patterns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "# cache\n*.tmp\n\n; old style\n/cache/\r\n   \nname with space\n";
        assert_eq!(
            parse("x", text).unwrap(),
            ["*.tmp", "/cache/", "name with space"]
        );
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let err = read("/nonexistent/inosync-excludes").unwrap_err();
        assert!(err.contains("/nonexistent/inosync-excludes"), "{err}");
        assert!(read("relative.txt").unwrap_err().contains("absolute"));
    }
}
