//! The `condition:` expression: `not`, `and`, `or` (in that precedence), parentheses,
//! and quantifiers `1 of sel_*`, `all of them`, `N of pattern`. Parsed into a tree over
//! selection indices, so evaluation never looks a name up.

use crate::error::RuleError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Sel(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    /// At least `n` of the selections hold.
    AtLeast(usize, Vec<usize>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
}

/// Parentheses and `not` nest at most this deep; real conditions use a handful.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    depth: usize,
    src: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    names: &'a [String],
}

/// Parses `condition` against the detection's selection names.
pub(crate) fn parse(condition: &str, names: &[String]) -> Result<Cond, RuleError> {
    let toks = lex(condition)?;
    let mut p = Parser {
        depth: 0,
        src: condition,
        toks,
        pos: 0,
        names,
    };
    if p.toks.is_empty() {
        return Err(p.error(0, "the condition is empty"));
    }
    let cond = p.or()?;
    match p.toks.get(p.pos) {
        None => Ok(cond),
        Some((at, t)) => {
            let at = *at;
            Err(p.error(at, &format!("unexpected {}", describe(t))))
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("`{w}`"),
        Tok::Open => "`(`".into(),
        Tok::Close => "`)`".into(),
    }
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, RuleError> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                out.push((i, Tok::Open));
                chars.next();
            }
            ')' => {
                out.push((i, Tok::Close));
                chars.next();
            }
            // Sigma 1 aggregations (`| count() > 5`) are not parsed further.
            '|' => return Err(RuleError::Aggregation),
            c if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?') => {
                let mut w = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?') {
                        w.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push((i, Tok::Word(w)));
            }
            other => {
                return Err(RuleError::Condition {
                    condition: s.into(),
                    position: i + 1,
                    message: format!("unexpected character `{other}`"),
                })
            }
        }
    }
    Ok(out)
}

impl Parser<'_> {
    fn error(&self, at: usize, message: &str) -> RuleError {
        RuleError::Condition {
            condition: self.src.into(),
            position: at + 1,
            message: message.into(),
        }
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.toks.get(self.pos), Some((_, Tok::Word(w))) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Cond, RuleError> {
        let mut items = vec![self.and()?];
        while self.peek_word("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, RuleError> {
        let mut items = vec![self.not()?];
        while self.peek_word("and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, RuleError> {
        if self.depth >= MAX_DEPTH {
            let at = self.toks.get(self.pos).map_or(self.end(), |(at, _)| *at);
            return Err(self.error(at, &format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let result = if self.peek_word("not") {
            self.pos += 1;
            self.not().map(|c| Cond::Not(Box::new(c)))
        } else {
            self.atom()
        };
        self.depth -= 1;
        result
    }

    fn end(&self) -> usize {
        self.src.len()
    }

    fn atom(&mut self) -> Result<Cond, RuleError> {
        let Some((at, tok)) = self.toks.get(self.pos).cloned() else {
            return Err(self.error(
                self.end(),
                "the condition ends where a selection was expected",
            ));
        };
        self.pos += 1;
        match tok {
            Tok::Open => {
                let inner = self.or()?;
                match self.toks.get(self.pos) {
                    Some((_, Tok::Close)) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    Some((at, t)) => {
                        let (at, t) = (*at, t.clone());
                        Err(self.error(at, &format!("expected `)`, found {}", describe(&t))))
                    }
                    None => Err(self.error(at, "this `(` is never closed")),
                }
            }
            Tok::Close => Err(self.error(at, "unexpected `)`")),
            Tok::Word(w) => {
                let lower = w.to_ascii_lowercase();
                let count = match lower.as_str() {
                    "all" => Some(None),
                    "any" => Some(Some(1)),
                    n if n.chars().all(|c| c.is_ascii_digit()) && self.peek_word("of") => {
                        Some(Some(
                            n.parse::<usize>()
                                .map_err(|_| self.error(at, "count too large"))?,
                        ))
                    }
                    _ => None,
                };
                if let Some(count) = count {
                    if !self.peek_word("of") {
                        return Err(self.error(at, &format!("`{w}` must be followed by `of`")));
                    }
                    self.pos += 1;
                    let Some((_, Tok::Word(pattern))) = self.toks.get(self.pos).cloned() else {
                        return Err(self.error(
                            at,
                            "`of` must be followed by `them` or a selection name pattern",
                        ));
                    };
                    self.pos += 1;
                    return self.quantifier(count, &pattern);
                }
                if matches!(lower.as_str(), "and" | "or" | "of" | "them") {
                    return Err(self.error(at, &format!("`{w}` where a selection was expected")));
                }
                match self.names.iter().position(|n| *n == w) {
                    Some(i) => Ok(Cond::Sel(i)),
                    None => Err(RuleError::UnknownSelection(w)),
                }
            }
        }
    }

    fn quantifier(&self, count: Option<usize>, pattern: &str) -> Result<Cond, RuleError> {
        let selected: Vec<usize> = if pattern.eq_ignore_ascii_case("them") {
            // `them` leaves out selections whose name starts with `_`, by convention
            // helpers that are only meant to be referenced explicitly.
            (0..self.names.len())
                .filter(|&i| !self.names[i].starts_with('_'))
                .collect()
        } else {
            (0..self.names.len())
                .filter(|&i| name_matches(pattern, &self.names[i]))
                .collect()
        };
        if selected.is_empty() {
            return Err(RuleError::EmptyQuantifier {
                pattern: pattern.into(),
            });
        }
        Ok(match count {
            None => Cond::And(selected.into_iter().map(Cond::Sel).collect()),
            Some(1) => Cond::Or(selected.into_iter().map(Cond::Sel).collect()),
            Some(n) => Cond::AtLeast(n, selected),
        })
    }
}

/// Selection-name patterns in quantifiers: `*` any run, `?` one character. Linear
/// backtracking on the last star, so hostile patterns (`****...z`) stay cheap.
fn name_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) && p[i] != '*' {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["sel_a", "sel_b", "filter_x", "_helper"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn precedence_is_not_and_or() {
        let c = parse("sel_a or sel_b and not filter_x", &names()).unwrap();
        assert_eq!(
            c,
            Cond::Or(vec![
                Cond::Sel(0),
                Cond::And(vec![Cond::Sel(1), Cond::Not(Box::new(Cond::Sel(2)))])
            ])
        );
    }

    #[test]
    fn quantifiers_expand() {
        assert_eq!(
            parse("all of sel_* and not 1 of filter*", &names()).unwrap(),
            Cond::And(vec![
                Cond::And(vec![Cond::Sel(0), Cond::Sel(1)]),
                Cond::Not(Box::new(Cond::Or(vec![Cond::Sel(2)])))
            ])
        );
        assert_eq!(
            parse("1 of them", &names()).unwrap(),
            Cond::Or(vec![Cond::Sel(0), Cond::Sel(1), Cond::Sel(2)])
        );
        assert_eq!(
            parse("2 of sel_*", &names()).unwrap(),
            Cond::AtLeast(2, vec![0, 1])
        );
    }

    #[test]
    fn hostile_conditions_are_cheap_errors() {
        // Found by fuzzing: deep nesting overflowed the stack; many stars backtracked
        // exponentially.
        let deep = "(".repeat(100_000);
        assert!(matches!(
            parse(&deep, &names()),
            Err(RuleError::Condition { .. })
        ));
        let nots = "not ".repeat(100_000) + "sel_a";
        assert!(matches!(
            parse(&nots, &names()),
            Err(RuleError::Condition { .. })
        ));
        let stars = format!("1 of {}z", "*".repeat(5000));
        assert!(matches!(
            parse(&stars, &names()),
            Err(RuleError::EmptyQuantifier { .. })
        ));
        assert!(
            name_matches("sel_*", "sel_a")
                && name_matches("*_?", "sel_b")
                && !name_matches("f*x", "filter_1")
        );
        assert!(name_matches("*", "") && name_matches("a**b", "ab") && !name_matches("a*b?", "ab"));
    }

    #[test]
    fn errors_carry_a_position() {
        let e = parse("sel_a and (sel_b", &names()).unwrap_err();
        assert!(
            matches!(e, RuleError::Condition { position: 11, .. }),
            "{e}"
        );
        let e = parse("sel_a and", &names()).unwrap_err();
        assert!(
            matches!(e, RuleError::Condition { position: 10, .. }),
            "{e}"
        );
        let e = parse("sel_a $ sel_b", &names()).unwrap_err();
        assert!(matches!(e, RuleError::Condition { position: 7, .. }), "{e}");
        assert_eq!(
            parse("nope", &names()).unwrap_err(),
            RuleError::UnknownSelection("nope".into())
        );
        assert_eq!(
            parse("sel_a | count() > 5", &names()).unwrap_err(),
            RuleError::Aggregation
        );
        assert!(matches!(
            parse("1 of nothing*", &names()).unwrap_err(),
            RuleError::EmptyQuantifier { .. }
        ));
    }
}
