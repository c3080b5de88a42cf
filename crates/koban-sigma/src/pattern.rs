//! Sigma string values: wildcard parsing (`*`, `?`, backslash escapes) and the
//! compiled comparisons they become.
//!
//! A value is parsed into tokens once; the match modifiers (`contains`, `startswith`,
//! `endswith`) add wildcards around it; then the shape picks the cheapest comparison:
//! equality, prefix, suffix, substring (memchr's memmem), or an anchored regex for
//! wildcards in the middle. Case-insensitive patterns are lower-cased here and compared
//! with the event's pre-lowered text, so no lowering happens per event.

use memchr::memmem;
use regex::Regex;

/// A token of a Sigma string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Lit(String),
    /// `*`: any run of characters, including none.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Parses a Sigma string with its wildcard and escape rules: `*` and `?` are
/// wildcards; `\*`, `\?` and `\\` are the literal characters; a backslash before
/// anything else is itself literal (so `C:\Windows` needs no escaping).
pub(crate) fn tokenize(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    lit.push(next);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Token::Lit(std::mem::take(&mut lit)));
                }
                out.push(if c == '*' { Token::Star } else { Token::One });
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Token::Lit(lit));
    }
    out
}

/// Tokens for a literal string (already free of wildcard meaning).
pub(crate) fn literal(s: String) -> Vec<Token> {
    if s.is_empty() {
        Vec::new()
    } else {
        vec![Token::Lit(s)]
    }
}

/// The printable Sigma form of tokens, for explanations.
pub(crate) fn display(tokens: &[Token]) -> String {
    let mut s = String::new();
    for t in tokens {
        match t {
            Token::Lit(l) => {
                for c in l.chars() {
                    if matches!(c, '*' | '?') {
                        s.push('\\');
                    }
                    s.push(c);
                }
            }
            Token::Star => s.push('*'),
            Token::One => s.push('?'),
        }
    }
    s
}

#[derive(Debug, Clone)]
enum Shape {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<memmem::Finder<'static>>),
    /// `*` alone: any text value.
    Any,
    Glob(Regex),
    Regex(Regex),
}

/// A compiled comparison of one text value.
#[derive(Debug, Clone)]
pub struct StrPattern {
    shape: Shape,
    /// Compare against the original text instead of the lowered one.
    cased: bool,
    /// The value as written in the rule, for explanations.
    shown: Box<str>,
    /// The longest literal run, lower-cased: a text this pattern matches contains it
    /// (lower-cased). `None` when there is no usable literal (regex, `*`).
    necessary: Option<Box<str>>,
}

impl StrPattern {
    /// Compiles wildcard tokens. `cased` keeps case; otherwise the literal parts are
    /// lower-cased and the event's lowered text is compared.
    pub(crate) fn from_tokens(mut tokens: Vec<Token>, cased: bool) -> StrPattern {
        let shown = display(&tokens).into_boxed_str();
        if !cased {
            for t in &mut tokens {
                if let Token::Lit(l) = t {
                    *l = l.to_lowercase();
                }
            }
        }
        // Collapse runs of stars: `**` means the same as `*`.
        tokens.dedup_by(|b, a| *a == Token::Star && *b == Token::Star);
        let necessary = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Lit(l) => Some(l.as_str()),
                _ => None,
            })
            .max_by_key(|l| l.len())
            // A cased literal is only safe to lower when lowering cannot change its
            // length or split a character, i.e. for ASCII.
            .filter(|l| !cased || l.is_ascii())
            .map(|l| l.to_lowercase().into_boxed_str());
        let lead = tokens.first() == Some(&Token::Star);
        let trail = tokens.len() > usize::from(lead) && tokens.last() == Some(&Token::Star);
        let inner = &tokens[usize::from(lead)..tokens.len() - usize::from(trail)];
        let shape = match inner {
            [] if lead || trail => Shape::Any,
            [] => Shape::Exact("".into()),
            [Token::Lit(l)] => match (lead, trail) {
                (false, false) => Shape::Exact(l.as_str().into()),
                (false, true) => Shape::Prefix(l.as_str().into()),
                (true, false) => Shape::Suffix(l.as_str().into()),
                (true, true) => {
                    Shape::Contains(Box::new(memmem::Finder::new(l.as_bytes()).into_owned()))
                }
            },
            _ => Shape::Glob(glob_regex(&tokens)),
        };
        StrPattern {
            shape,
            cased,
            shown,
            necessary,
        }
    }

    pub(crate) fn regex(re: Regex, shown: &str) -> StrPattern {
        StrPattern {
            shape: Shape::Regex(re),
            cased: true,
            shown: shown.into(),
            necessary: None,
        }
    }

    /// The literal a substring pattern looks for, when that is what it is.
    pub(crate) fn contains_literal(&self) -> Option<&[u8]> {
        match &self.shape {
            Shape::Contains(f) if !self.cased => Some(f.needle()),
            _ => None,
        }
    }

    /// A literal every text this pattern matches contains (lower-cased), if any.
    pub(crate) fn necessary(&self) -> Option<&str> {
        self.necessary.as_deref()
    }

    /// A rough relative cost of one comparison.
    pub(crate) fn cost(&self) -> u32 {
        match &self.shape {
            Shape::Exact(_) | Shape::Any => 1,
            Shape::Prefix(_) | Shape::Suffix(_) => 2,
            Shape::Contains(_) => 4,
            Shape::Glob(_) => 10,
            Shape::Regex(_) => 20,
        }
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Matches text; `original` and `lower` are the same text as written and lowered.
    #[inline]
    pub(crate) fn matches(&self, original: &str, lower: &str) -> bool {
        let s = if self.cased { original } else { lower };
        match &self.shape {
            Shape::Exact(l) => s == l.as_ref(),
            Shape::Prefix(l) => s.starts_with(l.as_ref()),
            Shape::Suffix(l) => s.ends_with(l.as_ref()),
            Shape::Contains(f) => f.find(s.as_bytes()).is_some(),
            Shape::Any => true,
            Shape::Glob(re) => re.is_match(s),
            Shape::Regex(re) => re.is_match(original),
        }
    }
}

fn glob_regex(tokens: &[Token]) -> Regex {
    let mut src = String::from("(?s)^");
    for t in tokens {
        match t {
            Token::Lit(l) => src.push_str(&regex::escape(l)),
            Token::Star => src.push_str(".*"),
            Token::One => src.push('.'),
        }
    }
    src.push('$');
    // Every piece is escaped or a fixed construct, so this cannot fail; the size
    // limit is the only way it could, and wildcard values are far below it.
    Regex::new(&src).unwrap_or_else(|_| {
        #[allow(clippy::unwrap_used)]
        Regex::new("^\\b\\B$").unwrap()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> StrPattern {
        StrPattern::from_tokens(tokenize(s), false)
    }

    fn m(p: &StrPattern, v: &str) -> bool {
        p.matches(v, &v.to_lowercase())
    }

    #[test]
    fn escapes_follow_the_spec() {
        // `\*` is an escaped star, so a folder wildcard needs `\\*`.
        assert_eq!(
            tokenize(r"C:\Windows\*"),
            vec![Token::Lit(r"C:\Windows*".into())]
        );
        assert_eq!(
            tokenize(r"C:\Windows\\*"),
            vec![Token::Lit(r"C:\Windows\".into()), Token::Star]
        );
        assert_eq!(tokenize(r"a\*b"), vec![Token::Lit("a*b".into())]);
        assert_eq!(
            tokenize(r"a\\*"),
            vec![Token::Lit(r"a\".into()), Token::Star]
        );
        // ` \\\\` in a single-quoted YAML string: two literal backslashes.
        assert_eq!(tokenize(r" \\\\"), vec![Token::Lit(r" \\".into())]);
        assert_eq!(tokenize(r"x\"), vec![Token::Lit(r"x\".into())]);
        assert_eq!(
            tokenize("a?c"),
            vec![Token::Lit("a".into()), Token::One, Token::Lit("c".into())]
        );
    }

    #[test]
    fn shapes_match_as_expected() {
        assert!(m(&pat("cmd.exe"), "CMD.EXE"));
        assert!(!m(&pat("cmd.exe"), "xcmd.exe"));
        assert!(m(&pat(r"*\cmd.exe"), r"C:\Windows\System32\cmd.exe"));
        assert!(m(&pat("C:\\\\*"), "c:\\x"));
        assert!(m(&pat("*whoami*"), "run WHOAMI now"));
        assert!(m(&pat("*"), ""));
        assert!(m(&pat("a*b?d"), "aXXbcd"));
        assert!(!m(&pat("a*b?d"), "aXXbd"));
        assert!(m(&pat(r"a\*b"), "a*b"));
        assert!(!m(&pat(r"a\*b"), "axb"));
        assert!(m(&pat(""), ""));
        assert!(!m(&pat(""), "x"));
    }

    #[test]
    fn cased_keeps_case() {
        let p = StrPattern::from_tokens(tokenize("*Evil*"), true);
        assert!(m(&p, "an Evil thing"));
        assert!(!m(&p, "an evil thing"));
    }

    #[test]
    fn display_round_trips() {
        for s in ["*a\\*b?*", r"C:\Windows\", "plain"] {
            assert_eq!(display(&tokenize(s)), s.replace(r"\\", r"\"));
        }
    }
}
