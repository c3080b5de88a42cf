//! Why a query did not parse, and where: a byte offset into the query text and a
//! message that says what was expected there. [`QueryError::caret`] draws the place
//! for a terminal or a `<pre>` block.

/// A syntax error in a hunting query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {pos}: {message}")]
pub struct QueryError {
    /// Byte offset into the query text, always on a character boundary and at most
    /// the text's length (the length itself: the query ended too early).
    pub pos: usize,
    pub message: String,
}

impl QueryError {
    pub(crate) fn new(pos: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            pos,
            message: message.into(),
        }
    }

    /// The line of `query` that holds the error, and under it a `^` at the error's
    /// column. Columns count characters as a terminal shows them: a tab stays a tab,
    /// CJK and other wide characters take two columns, combining marks none.
    ///
    /// ```
    /// let e = koban_hunt::parse("user= | head").unwrap_err();
    /// assert_eq!(e.caret("user= | head"), "user= | head\n     ^");
    /// ```
    pub fn caret(&self, query: &str) -> String {
        let pos = floor_boundary(query, self.pos);
        let start = query[..pos].rfind('\n').map_or(0, |i| i + 1);
        let end = query[pos..].find('\n').map_or(query.len(), |i| pos + i);
        let line = query[start..end].trim_end_matches('\r');
        let mut out = String::with_capacity(2 * line.len() + 2);
        out.push_str(line);
        out.push('\n');
        for c in query[start..pos].chars() {
            match c {
                '\t' => out.push('\t'),
                c => {
                    for _ in 0..width(c) {
                        out.push(' ');
                    }
                }
            }
        }
        out.push('^');
        out
    }
}

/// The largest character boundary of `s` at or before `pos`.
pub(crate) fn floor_boundary(s: &str, pos: usize) -> usize {
    let mut pos = pos.min(s.len());
    while !s.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

/// Terminal columns of `c`: 0 for combining marks and zero-width characters, 2 for
/// East Asian wide and full-width characters and emoji, 1 otherwise. A short table of
/// the common blocks, not the whole of Unicode's East Asian Width property.
fn width(c: char) -> usize {
    let c = c as u32;
    let zero = [
        (0x0300, 0x036F),
        (0x0483, 0x0489),
        (0x0591, 0x05BD),
        (0x200B, 0x200F),
        (0x20D0, 0x20FF),
        (0xFE00, 0xFE0F),
        (0xFE20, 0xFE2F),
    ];
    let wide = [
        (0x1100, 0x115F),
        (0x2E80, 0x303E),
        (0x3041, 0x33FF),
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xA000, 0xA4CF),
        (0xAC00, 0xD7A3),
        (0xF900, 0xFAFF),
        (0xFE30, 0xFE4F),
        (0xFF00, 0xFF60),
        (0xFFE0, 0xFFE6),
        (0x1F300, 0x1F64F),
        (0x1F900, 0x1F9FF),
        (0x20000, 0x3FFFD),
    ];
    let within = |table: &[(u32, u32)]| table.iter().any(|&(lo, hi)| (lo..=hi).contains(&c));
    if within(&zero) {
        0
    } else if within(&wide) {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caret(query: &str, pos: usize) -> String {
        QueryError::new(pos, "x").caret(query)
    }

    #[test]
    fn display_names_the_position() {
        let e = QueryError::new(17, "expected a value after '='");
        assert_eq!(e.to_string(), "at 17: expected a value after '='");
    }

    #[test]
    fn caret_under_ascii_and_at_the_end() {
        assert_eq!(caret("a=b c", 2), "a=b c\n  ^");
        assert_eq!(caret("a=", 2), "a=\n  ^");
        assert_eq!(caret("", 0), "\n^");
    }

    #[test]
    fn caret_counts_wide_characters_twice() {
        // "ユーザー" is four characters, 12 bytes, 8 columns.
        let q = "ユーザー=\"太郎";
        assert_eq!(caret(q, "ユーザー=".len()), format!("{q}\n         ^"));
        assert_eq!(caret("é=x", "é".len()), "é=x\n ^");
        // A combining acute accent takes no column.
        assert_eq!(caret("e\u{301}=x", 3), "e\u{301}=x\n ^");
    }

    #[test]
    fn caret_keeps_tabs_and_picks_the_line() {
        assert_eq!(caret("a\tb", 2), "a\tb\n \t^");
        assert_eq!(caret("a=1\r\n| hed", 7), "| hed\n  ^");
    }

    #[test]
    fn caret_never_panics_off_a_boundary() {
        assert_eq!(caret("日本", 1), "日本\n^");
        assert_eq!(caret("ab", 99), "ab\n  ^");
    }
}
