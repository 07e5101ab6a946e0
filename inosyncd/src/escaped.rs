//! File names as people read them in reports: escaped as `ls -b` does, so a
//! name with a newline never looks like another line, leading spaces stay
//! visible, and bytes that are not UTF-8 survive (as octal) in a `String`.
//! The escaping is reversible: `\ `, `\\`, the C escapes (`\n`, `\t`, ...) and `\ooo`.

use std::fmt::Write;

/// `name` escaped as `ls -b` prints it.
pub fn ls_b(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                ' ' => out.push_str("\\ "),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0b' => out.push_str("\\v"),
                '\x0c' => out.push_str("\\f"),
                c if c.is_control() || reorders_or_breaks(c) => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\{b:03o}");
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\{b:03o}");
        }
    }
    out
}

/// Characters that are not control characters yet change how the rest of a
/// line reads: line and paragraph separators (a viewer breaks the line
/// there), bidirectional overrides and isolates (`x\u{202e}txt.exe` shows as
/// `xexe.txt`), zero-width characters and the byte-order mark.
fn reorders_or_breaks(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::ls_b;

    #[test]
    fn names_are_escaped_as_ls_b_does() {
        // What `ls -b` printed for the same names (coreutils 9.1).
        let cases: [(&[u8], &str); 8] = [
            (b"  one", "\\ \\ one"),
            (b"b\\s", "b\\\\s"),
            (b"n\xffo", "n\\377o"),
            (b"tab\tt", "tab\\tt"),
            (b"x\nFAKE -> T: equal", "x\\nFAKE\\ ->\\ T:\\ equal"),
            ("é ok".as_bytes(), "é\\ ok"),
            (b"bell\x07", "bell\\a"),
            (b"esc\x1b", "esc\\033"),
        ];
        for (name, expected) in cases {
            assert_eq!(ls_b(name), expected, "{:?}", String::from_utf8_lossy(name));
        }
    }

    /// A name cannot reorder or break the line it is printed in: separators,
    /// bidirectional controls and zero-width characters are escaped as bytes.
    #[test]
    fn names_cannot_reorder_or_break_a_line() {
        assert_eq!(
            ls_b("x\u{202e}txt.exe".as_bytes()),
            "x\\342\\200\\256txt.exe"
        );
        assert_eq!(ls_b("a\u{2028}b".as_bytes()), "a\\342\\200\\250b");
        assert_eq!(ls_b("z\u{200b}w".as_bytes()), "z\\342\\200\\213w");
        assert_eq!(ls_b("ü ok".as_bytes()), "ü\\ ok");
    }
}
