//! Making text fit a table column without breaking words: a path too long
//! for its column keeps its first and last components (`/srv/…/blog`), and a
//! message is wrapped at spaces into a few lines, the paths in it shortened
//! the same way. A terminal's own wrapping would cut `/srv/backup/afil` from
//! `e/dst`, and `retrying in 54` from `s`.

/// `path` in at most `max` characters: its first component, `…`, and as many
/// of its last components as fit; only the end of the last one when even
/// that is too long.
pub fn middle(path: &str, max: usize) -> String {
    let count = path.chars().count();
    if count <= max {
        return path.to_string();
    }
    let (head, body) = split_head(path);
    let parts: Vec<&str> = body.split('/').filter(|p| !p.is_empty()).collect();
    for prefix in [head.as_str(), ""] {
        let mut tail = String::new();
        for part in parts.iter().rev() {
            let longer = if tail.is_empty() {
                (*part).to_string()
            } else {
                format!("{part}/{tail}")
            };
            if prefix.chars().count() + 2 + longer.chars().count() > max {
                break;
            }
            tail = longer;
        }
        if !tail.is_empty() {
            return format!("{prefix}…/{tail}");
        }
        // The host at least, when nothing of the rest fits beside it.
        if prefix.contains(':') && prefix.chars().count() < max {
            return format!("{prefix}…");
        }
    }
    let kept: String = path.chars().skip(count + 1 - max.max(1)).collect();
    format!("…{kept}")
}

/// The part of `path` kept whole when it is shortened, and the rest: what
/// names the host (`rsync://host:port/`, `user@host:`), or a local path's
/// first component (`/srv/`).
pub fn split_head(path: &str) -> (String, &str) {
    if let Some((scheme, rest)) = path.split_once("://")
        && let Some((host, body)) = rest.split_once('/')
    {
        return (format!("{scheme}://{host}/"), body);
    }
    if let Some((host, body)) = path.split_once(':')
        && !host.contains('/')
    {
        return (format!("{host}:"), body);
    }
    match path.strip_prefix('/').and_then(|rest| rest.split_once('/')) {
        Some((first, body)) => (format!("/{first}/"), body),
        None => (String::new(), path),
    }
}

/// `text` (its first line) wrapped at spaces into at most `lines` lines of at
/// most `width` characters; a word longer than a line is shortened in the
/// middle when it is a path, cut otherwise. Returns the lines and whether
/// anything was left out.
pub fn wrap(text: &str, width: usize, lines: usize) -> (Vec<String>, bool) {
    let first = text.lines().next().unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in first.split_whitespace() {
        let word = fit_word(word, width);
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if needed <= width {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(&word);
            continue;
        }
        out.push(std::mem::take(&mut current));
        if out.len() == lines {
            return (ellipsis(out, width), true);
        }
        current = word;
    }
    if !current.is_empty() {
        out.push(current);
    }
    let cut = text.contains('\n');
    if cut {
        return (ellipsis(out, width), true);
    }
    (out, false)
}

/// A word that fits one line: a path shortened in the middle (quotes kept),
/// anything else cut at its end.
fn fit_word(word: &str, width: usize) -> String {
    if word.chars().count() <= width {
        return word.to_string();
    }
    if word.contains('/') {
        let quoted = word.starts_with('"') && word.len() > 1;
        let inner = word.trim_matches(|c| c == '"' || c == ',' || c == ':');
        let room = width.saturating_sub(word.chars().count() - inner.chars().count());
        let short = middle(inner, room.max(3));
        return if quoted {
            word.replacen(inner, &short, 1)
        } else {
            short
        };
    }
    let kept: String = word.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// The lines with `…` at the end of the last, within `width`.
fn ellipsis(mut lines: Vec<String>, width: usize) -> Vec<String> {
    if let Some(last) = lines.last_mut() {
        if last.chars().count() + 1 > width {
            *last = last.chars().take(width.saturating_sub(1)).collect();
        }
        last.push('…');
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_target_keeps_its_host() {
        let short = middle("rsync://127.0.0.1:38731/m/backups/blog/", 34);
        assert!(short.starts_with("rsync://127.0.0.1:38731/"), "{short}");
        assert!(short.chars().count() <= 34, "{short}");
        let short = middle("backup@m1.example.com:/srv/backups/blog", 30);
        assert!(short.starts_with("backup@m1.example.com:"), "{short}");
    }

    #[test]
    fn paths_keep_their_first_and_last_components() {
        assert_eq!(middle("/srv/blog", 20), "/srv/blog");
        assert_eq!(middle("/srv/backup/afile/dst", 16), "/srv/…/afile/dst");
        assert_eq!(middle("/srv/backup/afile/dst", 12), "/srv/…/dst");
        assert_eq!(middle("/a-long-first/x/blog", 9), "…/x/blog");
        assert_eq!(middle("/a-long-first/x/blog", 7), "…/blog");
        assert_eq!(middle("/srv/a-very-long-last-name", 8).chars().count(), 8);
    }

    #[test]
    fn messages_wrap_at_spaces_and_their_paths_shorten() {
        let (lines, cut) = wrap(
            "mkdir \"/srv/backup/afile/dst\" failed: Not a directory",
            20,
            3,
        );
        assert_eq!(lines, ["mkdir", "\"/srv/…/afile/dst\"", "failed: Not a…"]);
        assert!(cut);
        let (lines, cut) = wrap("short one", 20, 2);
        assert_eq!(lines, ["short one"]);
        assert!(!cut);
        for line in wrap(&"word ".repeat(40), 12, 2).0 {
            assert!(line.chars().count() <= 12, "{line}");
        }
    }
}
