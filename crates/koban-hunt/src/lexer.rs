//! Cuts query text into tokens, on demand: the parser asks for a search token, a
//! value (after an operator) or a stage token, because what a character means
//! depends on where it stands (`-` is NOT before a term, a sign in `earliest=-24h`,
//! a descending sort in `sort -count`).
//!
//! Values keep what the analyst typed, wildcards and backslashes included, so that
//! `C:\Windows\*` needs no doubling. Only the escapes that decide where a token ends
//! are decoded: `\"` inside quotes, and in bare words a backslash before a space,
//! `(`, `)`, `|`, `,` or `"`. `\\` is kept as two characters (the pattern reads it as
//! one backslash), and is consumed as a pair so that `"C:\\"` closes its quote.

use crate::ast::Span;
use crate::error::QueryError;

/// The operator between a field and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `=` (or `==`)
    Eq,
    /// `:`
    Colon,
    /// `!=`
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `IN (`: the opening parenthesis is part of the operator.
    In,
}

impl Op {
    pub(crate) fn shown(self) -> &'static str {
        match self {
            Op::Eq => "'='",
            Op::Colon => "':'",
            Op::Ne => "'!='",
            Op::Lt => "'<'",
            Op::Le => "'<='",
            Op::Gt => "'>'",
            Op::Ge => "'>='",
            Op::In => "IN",
        }
    }
}

/// A token of the search part.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    Pipe,
    /// `-` directly before a term.
    Minus,
    End,
    /// A bare word (keywords AND, OR, NOT are words too; the parser tells them).
    Word(String),
    Quoted(String),
    /// A field name and its operator; the value is read next with [`Lexer::value`].
    Field {
        name: String,
        backticked: bool,
        op: Op,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// A value after an operator.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Value {
    pub text: String,
    pub quoted: bool,
    /// Quotes included.
    pub span: Span,
    /// Where `text` starts in the query when it is exactly the query's bytes there
    /// (no escape was decoded), so that a position inside it maps back.
    pub verbatim_at: Option<usize>,
}

impl Value {
    /// The query position of byte `offset` of `text` (the value's start when the
    /// text was decoded and offsets no longer map).
    pub(crate) fn at(&self, offset: usize) -> usize {
        self.verbatim_at.map_or(self.span.start, |s| s + offset)
    }
}

/// A token of a pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum STok {
    /// Letters, digits, `_`, `.`, `-`, `@` (not starting with `-`).
    Word(String),
    /// A backtick-quoted name.
    Name(String),
    Comma,
    LParen,
    RParen,
    Eq,
    Minus,
    Plus,
    Pipe,
    End,
    /// Any other character.
    Other(char),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SToken {
    pub tok: STok,
    pub span: Span,
}

/// Characters a field name may start with.
pub(crate) fn is_field_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '@'
}

/// Characters a field name is made of.
pub(crate) fn is_field_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@')
}

/// Is `s` a field name as written without backticks?
pub(crate) fn is_field_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_field_start) && chars.all(is_field_char)
}

pub(crate) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Lexer<'a> {
        Lexer { text, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn char_at(&self, i: usize) -> Option<char> {
        self.text.get(i..).and_then(|s| s.chars().next())
    }

    pub(crate) fn peek_char(&self) -> Option<char> {
        self.char_at(self.pos)
    }

    pub(crate) fn bump_char(&mut self) {
        if let Some(c) = self.peek_char() {
            self.pos += c.len_utf8();
        }
    }

    /// Where the next non-whitespace character is, and that character.
    pub(crate) fn peek_past_ws(&self) -> (usize, Option<char>) {
        let rest = &self.text[self.pos..];
        let skipped = rest.len() - rest.trim_start().len();
        (self.pos + skipped, self.char_at(self.pos + skipped))
    }

    pub(crate) fn skip_ws(&mut self) {
        while self.peek_char().is_some_and(char::is_whitespace) {
            self.bump_char();
        }
    }

    fn token(&self, tok: Tok, start: usize) -> Token {
        Token {
            tok,
            span: Span {
                start,
                end: self.pos,
            },
        }
    }

    /// The next token of the search part.
    pub(crate) fn search_token(&mut self) -> Result<Token, QueryError> {
        self.skip_ws();
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(self.token(Tok::End, start));
        };
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '|' => Some(Tok::Pipe),
            _ => None,
        };
        if let Some(tok) = single {
            self.bump_char();
            return Ok(self.token(tok, start));
        }
        match c {
            '-' => {
                self.bump_char();
                match self.peek_char() {
                    Some(n) if !n.is_whitespace() && n != ')' && n != '|' => {
                        Ok(self.token(Tok::Minus, start))
                    }
                    _ => Err(QueryError::new(
                        start,
                        "a lone '-': write -term to leave out a term, or \"-\" to search for a dash",
                    )),
                }
            }
            '"' => {
                let (text, _) = self.quoted(false)?;
                Ok(self.token(Tok::Quoted(text), start))
            }
            '`' => self.backticked_field(),
            '=' | '<' | '>' => Err(self.operator_without_field(start)),
            '!' if self.char_at(start + 1) == Some('=') => Err(self.operator_without_field(start)),
            _ => {
                if let Some((name_end, op, op_end)) = self.field_at(start) {
                    let name = self.text[start..name_end].to_string();
                    self.pos = op_end;
                    self.tight_colon(op, &name)?;
                    let tok = Tok::Field {
                        name,
                        backticked: false,
                        op,
                    };
                    return Ok(self.token(tok, start));
                }
                let (text, _) = self.bare(false)?;
                Ok(self.token(Tok::Word(text), start))
            }
        }
    }

    /// `user: bob` and `Error: disk full` are refused rather than guessed at: after
    /// `:` the value must follow at once.
    fn tight_colon(&self, op: Op, name: &str) -> Result<(), QueryError> {
        let ends = self.peek_char().is_none() || self.peek_char().is_some_and(char::is_whitespace);
        if op == Op::Colon && ends {
            return Err(QueryError::new(
                self.pos,
                format!(
                    "expected a value right after ':' (write {name}:value; to search for \
                     the text \"{name}:\", quote it)"
                ),
            ));
        }
        Ok(())
    }

    fn operator_without_field(&self, start: usize) -> QueryError {
        let op: String = self.text[start..]
            .chars()
            .take_while(|c| matches!(c, '=' | '<' | '>' | '!'))
            .collect();
        QueryError::new(
            start,
            format!("expected a field name before '{op}' (to search for the text, quote it)"),
        )
    }

    /// A field name at `start` followed by an operator: the name's end, the operator
    /// and the operator's end.
    fn field_at(&self, start: usize) -> Option<(usize, Op, usize)> {
        let rest = &self.text[start..];
        if !rest.chars().next().is_some_and(is_field_start) {
            return None;
        }
        let name_end = start
            + rest
                .char_indices()
                .find(|&(_, c)| !is_field_char(c))
                .map_or(rest.len(), |(i, _)| i);
        let (op, op_end) = self.operator_at(name_end)?;
        // `a OR > 5` is a keyword followed by a mistake, not a field named OR;
        // written tight (`or=5`) it is a field.
        let name = &self.text[start..name_end];
        let spaced = self.char_at(name_end).is_some_and(char::is_whitespace);
        let keyword = ["AND", "OR", "NOT", "IN"]
            .iter()
            .any(|k| name.eq_ignore_ascii_case(k));
        if spaced && keyword {
            return None;
        }
        Some((name_end, op, op_end))
    }

    /// An operator at `i`, directly or after whitespace: the operator and its end.
    /// `:` counts only when written right after the name and not followed by `:`,
    /// `/` or `\`, so that `fe80::1`, `http://x` and `C:\Windows` stay text; its value
    /// must follow at once (see [`Lexer::tight_colon`]).
    fn operator_at(&self, i: usize) -> Option<(Op, usize)> {
        let after = |n: usize| self.char_at(i + n);
        if after(0) == Some(':') {
            return match after(1) {
                Some(':' | '/' | '\\') => None,
                _ => Some((Op::Colon, i + 1)),
            };
        }
        let mut j = i;
        while self.char_at(j).is_some_and(char::is_whitespace) {
            j += self.char_at(j).map_or(1, char::len_utf8);
        }
        let two = self.text.get(j..j + 2);
        let op = match (two, self.char_at(j)) {
            (Some("!="), _) => Some((Op::Ne, j + 2)),
            (Some("=="), _) => Some((Op::Eq, j + 2)),
            (Some("<="), _) => Some((Op::Le, j + 2)),
            (Some(">="), _) => Some((Op::Ge, j + 2)),
            (_, Some('=')) => Some((Op::Eq, j + 1)),
            (_, Some('<')) => Some((Op::Lt, j + 1)),
            (_, Some('>')) => Some((Op::Gt, j + 1)),
            _ => None,
        };
        if op.is_some() {
            return op;
        }
        // `field IN (`: the word IN, after at least one space, then a parenthesis.
        let word = self.text.get(j..j + 2)?;
        if j == i || !word.eq_ignore_ascii_case("in") {
            return None;
        }
        let mut k = j + 2;
        if self.char_at(k).is_some_and(is_field_char) {
            return None;
        }
        while self.char_at(k).is_some_and(char::is_whitespace) {
            k += self.char_at(k).map_or(1, char::len_utf8);
        }
        (self.char_at(k) == Some('(')).then_some((Op::In, k + 1))
    }

    fn backticked_field(&mut self) -> Result<Token, QueryError> {
        let start = self.pos;
        let name = self.backticked()?;
        let name_end = self.pos;
        let Some((op, op_end)) = self.operator_at(name_end) else {
            self.skip_ws();
            return Err(QueryError::new(
                self.pos,
                format!("expected an operator (=, !=, <, >, IN ...) after the field name `{name}`"),
            ));
        };
        self.pos = op_end;
        self.tight_colon(op, &name)?;
        let tok = Tok::Field {
            name,
            backticked: true,
            op,
        };
        Ok(self.token(tok, start))
    }

    /// A backtick-quoted name; the lexer stands on the opening backtick.
    fn backticked(&mut self) -> Result<String, QueryError> {
        let open = self.pos;
        let rest = &self.text[open + 1..];
        let Some(len) = rest.find('`') else {
            return Err(QueryError::new(
                open,
                "unclosed '`': add the closing backtick",
            ));
        };
        if len == 0 {
            return Err(QueryError::new(open, "empty field name between backticks"));
        }
        self.pos = open + 1 + len + 1;
        Ok(rest[..len].to_string())
    }

    /// A double-quoted string; the lexer stands on the opening quote. Returns the
    /// text and whether it is the query's bytes unchanged.
    fn quoted(&mut self, in_list: bool) -> Result<(String, bool), QueryError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut verbatim = true;
        loop {
            match self.peek_char() {
                None => {
                    return Err(QueryError::new(
                        open,
                        "unclosed '\"': add the closing quote",
                    ));
                }
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => match self.char_at(self.pos + 1) {
                    Some('"') => {
                        out.push('"');
                        verbatim = false;
                        self.pos += 2;
                    }
                    Some('\\') => {
                        out.push_str("\\\\");
                        self.pos += 2;
                    }
                    _ => {
                        out.push('\\');
                        self.pos += 1;
                    }
                },
                Some(c) => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        match self.peek_char() {
            None | Some('|' | ')') => {}
            Some(',') if in_list => {}
            Some(c) if c.is_whitespace() => {}
            Some(c) => {
                return Err(QueryError::new(
                    self.pos,
                    format!(
                        "unexpected '{c}' right after a closing quote: put a space between them"
                    ),
                ));
            }
        }
        Ok((out, verbatim))
    }

    /// A bare word or value: up to whitespace, `|`, an unmatched `)` (or `,` in a
    /// list). Parentheses opened inside the word are its own: `foo(bar)`.
    fn bare(&mut self, in_list: bool) -> Result<(String, bool), QueryError> {
        let mut out = String::new();
        let mut verbatim = true;
        let mut depth = 0usize;
        while let Some(c) = self.peek_char() {
            match c {
                '|' => break,
                ',' if in_list => break,
                ')' if depth == 0 => break,
                c if c.is_whitespace() => break,
                ')' => depth -= 1,
                '(' => depth += 1,
                '"' => {
                    return Err(QueryError::new(
                        self.pos,
                        "a '\"' inside a word: put a space before it to start a quoted \
                         string, or escape it as \\\"",
                    ));
                }
                '\\' => {
                    match self.char_at(self.pos + 1) {
                        Some(n)
                            if n.is_whitespace() || matches!(n, '(' | ')' | '|' | ',' | '"') =>
                        {
                            out.push(n);
                            verbatim = false;
                            self.pos += 1 + n.len_utf8();
                        }
                        Some('\\') => {
                            out.push_str("\\\\");
                            self.pos += 2;
                        }
                        _ => {
                            out.push('\\');
                            self.pos += 1;
                        }
                    }
                    continue;
                }
                _ => {}
            }
            out.push(c);
            self.pos += c.len_utf8();
        }
        Ok((out, verbatim))
    }

    /// The value after an operator (`after` names it for messages: "'='", "','").
    /// Whitespace before the value is allowed (`EventID = 4625`), but then a keyword
    /// is not taken for the value: `user= OR x` lacks one.
    pub(crate) fn value(&mut self, after: &str, in_list: bool) -> Result<Value, QueryError> {
        let op_end = self.pos;
        self.skip_ws();
        let start = self.pos;
        let missing = || QueryError::new(op_end, format!("expected a value after {after}"));
        let (text, quoted, verbatim) = match self.peek_char() {
            None | Some('|' | ')') => return Err(missing()),
            Some(',') if in_list => return Err(missing()),
            Some('(') => {
                return Err(QueryError::new(
                    start,
                    format!(
                        "expected a value after {after}, found '(': quote a value that starts \
                         with '(', or list several values with field IN (a, b)"
                    ),
                ));
            }
            Some('"') => {
                let (text, verbatim) = self.quoted(in_list)?;
                (text, true, verbatim)
            }
            Some(_) => {
                let (text, verbatim) = self.bare(in_list)?;
                let keyword = ["AND", "OR", "NOT"]
                    .iter()
                    .any(|k| text.eq_ignore_ascii_case(k));
                if start > op_end && keyword {
                    return Err(missing());
                }
                (text, false, verbatim)
            }
        };
        let content = if quoted { start + 1 } else { start };
        Ok(Value {
            text,
            quoted,
            span: Span {
                start,
                end: self.pos,
            },
            verbatim_at: verbatim.then_some(content),
        })
    }

    /// The next token of a pipeline stage.
    pub(crate) fn stage_token(&mut self) -> Result<SToken, QueryError> {
        self.skip_ws();
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(self.stoken(STok::End, start));
        };
        let tok = match c {
            '|' => STok::Pipe,
            ',' => STok::Comma,
            '(' => STok::LParen,
            ')' => STok::RParen,
            '=' => STok::Eq,
            '-' => STok::Minus,
            '+' => STok::Plus,
            '`' => {
                let name = self.backticked()?;
                return Ok(self.stoken(STok::Name(name), start));
            }
            c if is_field_char(c) => {
                let rest = &self.text[start..];
                let len = rest
                    .char_indices()
                    .find(|&(_, c)| !is_field_char(c))
                    .map_or(rest.len(), |(i, _)| i);
                self.pos += len;
                return Ok(self.stoken(STok::Word(rest[..len].to_string()), start));
            }
            c => STok::Other(c),
        };
        self.bump_char();
        Ok(self.stoken(tok, start))
    }

    fn stoken(&self, tok: STok, start: usize) -> SToken {
        SToken {
            tok,
            span: Span {
                start,
                end: self.pos,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Tok> {
        let mut lx = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let t = lx.search_token().expect("lexes");
            if t.tok == Tok::End {
                return out;
            }
            if let Tok::Field { .. } = t.tok {
                out.push(t.tok);
                out.push(Tok::Word(lx.value("'='", false).expect("a value").text));
            } else {
                out.push(t.tok);
            }
        }
    }

    fn word(s: &str) -> Tok {
        Tok::Word(s.to_string())
    }

    fn field(name: &str, op: Op) -> Tok {
        Tok::Field {
            name: name.to_string(),
            backticked: false,
            op,
        }
    }

    #[test]
    fn colon_is_an_operator_only_when_tight() {
        assert_eq!(tokens("fe80::1"), vec![word("fe80::1")]);
        assert_eq!(tokens("http://x/?a=b"), vec![word("http://x/?a=b")]);
        assert_eq!(tokens(r"C:\Windows"), vec![word(r"C:\Windows")]);
        assert_eq!(
            tokens("user:bob"),
            vec![field("user", Op::Colon), word("bob")]
        );
    }

    #[test]
    fn operators_may_stand_apart() {
        assert_eq!(tokens("a = 1"), vec![field("a", Op::Eq), word("1")]);
        assert_eq!(tokens("a>=1"), vec![field("a", Op::Ge), word("1")]);
        assert_eq!(tokens("a != 1"), vec![field("a", Op::Ne), word("1")]);
    }

    #[test]
    fn escapes_that_end_tokens_are_decoded_others_kept() {
        assert_eq!(tokens(r"a\ b\(c\)"), vec![word("a b(c)")]);
        assert_eq!(
            tokens(r"x=C:\\dir\*"),
            vec![field("x", Op::Eq), word(r"C:\\dir\*")]
        );
        assert_eq!(
            tokens(r#""say \"hi\" \\""#),
            vec![Tok::Quoted(r#"say "hi" \\"#.into())]
        );
    }

    #[test]
    fn parentheses_inside_a_word_belong_to_it() {
        assert_eq!(
            tokens("(x=f(a) y)"),
            vec![
                Tok::LParen,
                field("x", Op::Eq),
                word("f(a)"),
                word("y"),
                Tok::RParen
            ]
        );
    }

    #[test]
    fn stage_tokens() {
        let mut lx = Lexer::new(" sort -a,+`b c` 10 *");
        let mut got = Vec::new();
        loop {
            let t = lx.stage_token().expect("lexes");
            if t.tok == STok::End {
                break;
            }
            got.push(t.tok);
        }
        assert_eq!(
            got,
            vec![
                STok::Word("sort".into()),
                STok::Minus,
                STok::Word("a".into()),
                STok::Comma,
                STok::Plus,
                STok::Name("b c".into()),
                STok::Word("10".into()),
                STok::Other('*'),
            ]
        );
    }
}
