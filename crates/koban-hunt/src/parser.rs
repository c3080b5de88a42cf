//! Query text → [`Query`]. A recursive-descent parser over the lexer's tokens: the
//! search (OR of ANDs of possibly negated terms) here, then the `|`-separated stages
//! (`stages.rs`). Recursion happens only at `(` and NOT, and both count towards
//! [`MAX_DEPTH`].

use std::net::IpAddr;

use ipnet::IpNet;

use crate::ast::{Bound, Expr, Query, Span, TimeBound};
use crate::error::{floor_boundary, QueryError};
use crate::lexer::{Lexer, Op, SToken, Tok, Token, Value};
use crate::time;

/// The longest query accepted, in bytes (64 KiB).
pub const MAX_QUERY_LEN: usize = 64 * 1024;
/// How deep parentheses and negations may nest.
pub const MAX_DEPTH: usize = 64;

/// Parses a hunting query (see the crate documentation for the syntax).
///
/// ```
/// use koban_hunt::{parse, Expr};
/// let q = parse("EventID=4625 earliest=-24h | top 5 IpAddress").unwrap();
/// assert!(matches!(q.search, Some(Expr::Match { ref field, .. }) if field == "EventID"));
/// assert_eq!(q.stages.len(), 1);
/// ```
pub fn parse(text: &str) -> Result<Query, QueryError> {
    if text.len() > MAX_QUERY_LEN {
        return Err(QueryError::new(
            floor_boundary(text, MAX_QUERY_LEN),
            format!(
                "the query is too long: {} bytes, the limit is {MAX_QUERY_LEN} (64 KiB)",
                text.len()
            ),
        ));
    }
    let mut p = Parser {
        lx: Lexer::new(text),
        text,
        peeked: None,
        speeked: None,
        depth: 0,
        last_end: 0,
    };
    let search = p.search()?;
    let stages = if search.piped {
        p.stages()?
    } else {
        Vec::new()
    };
    Ok(Query {
        search: search.expr,
        earliest: search.earliest,
        latest: search.latest,
        stages,
    })
}

/// The part before the first `|`.
struct Search {
    expr: Option<Expr>,
    earliest: Option<TimeBound>,
    latest: Option<TimeBound>,
    /// A `|` ended it: stages follow.
    piped: bool,
}

/// `earliest=` or `latest=` found among the top-level terms.
struct TimeSet {
    latest: bool,
    bound: TimeBound,
    span: Span,
}

enum Item {
    Expr(Expr),
    Time(TimeSet),
}

/// Terms joined by AND, and the time bounds found among them.
type Conjunction = (Vec<Expr>, Vec<TimeSet>);

pub(crate) struct Parser<'a> {
    pub(crate) lx: Lexer<'a>,
    pub(crate) text: &'a str,
    peeked: Option<Token>,
    /// The stage token looked at but not consumed (see `stages.rs`).
    pub(crate) speeked: Option<SToken>,
    /// Parentheses and negations open around the current term.
    depth: usize,
    /// End of the last stage token consumed.
    pub(crate) last_end: usize,
}

fn is_keyword(tok: &Tok, keyword: &str) -> bool {
    matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
}

fn starts_term(tok: &Tok) -> bool {
    match tok {
        Tok::LParen | Tok::Minus | Tok::Quoted(_) | Tok::Field { .. } => true,
        Tok::Word(_) => !is_keyword(tok, "AND") && !is_keyword(tok, "OR"),
        Tok::RParen | Tok::Pipe | Tok::End => false,
    }
}

/// Terms joined by AND: `None` when there are none (only time bounds).
fn conjunction(mut exprs: Vec<Expr>) -> Option<Expr> {
    match exprs.len() {
        0 => None,
        1 => exprs.pop(),
        _ => Some(Expr::And(exprs)),
    }
}

impl Parser<'_> {
    // ------------------------------------------------------------ search part

    fn peek(&mut self) -> Result<Token, QueryError> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lx.search_token()?,
        };
        Ok(self.peeked.insert(t).clone())
    }

    fn bump(&mut self) -> Result<Token, QueryError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lx.search_token(),
        }
    }

    /// One more level of nesting, opened at `pos`.
    fn enter(&mut self, pos: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::new(
                pos,
                format!(
                    "the query nests too deeply: more than {MAX_DEPTH} levels of parentheses \
                     and NOT"
                ),
            ));
        }
        Ok(())
    }

    /// The search part, its time bounds, and whether a `|` ended it.
    fn search(&mut self) -> Result<Search, QueryError> {
        let (mut expr, times) = match self.peek()?.tok {
            Tok::Pipe | Tok::End => (None, Vec::new()),
            _ => self.or()?,
        };
        // A lone bare `*` is the usual way to say "every event".
        if let Some(Expr::Text { text, span }) = &expr {
            if text == "*" && span.end - span.start == 1 {
                expr = None;
            }
        }
        let end = self.bump()?;
        let piped = match end.tok {
            Tok::Pipe => true,
            Tok::End => false,
            Tok::RParen => {
                return Err(QueryError::new(
                    end.span.start,
                    "unmatched ')': no '(' opens it",
                ));
            }
            _ => return Err(QueryError::new(end.span.start, "expected a search term")),
        };
        let (earliest, latest) = time_range(times)?;
        Ok(Search {
            expr,
            earliest,
            latest,
            piped,
        })
    }

    fn or(&mut self) -> Result<(Option<Expr>, Vec<TimeSet>), QueryError> {
        let mut branches = vec![self.and()?];
        while is_keyword(&self.peek()?.tok, "OR") {
            self.bump()?;
            self.require_term(Some("OR"))?;
            branches.push(self.and()?);
        }
        if branches.len() == 1 {
            let (exprs, times) = branches.pop().unwrap_or_default();
            return Ok((conjunction(exprs), times));
        }
        if let Some(t) = branches.iter().flat_map(|b| &b.1).next() {
            return Err(QueryError::new(
                t.span.start,
                format!(
                    "{} cannot be part of an OR: put it beside the search, as in \
                     earliest=-24h (a OR b)",
                    time_name(t)
                ),
            ));
        }
        let alternatives = branches
            .into_iter()
            .filter_map(|(exprs, _)| conjunction(exprs))
            .collect();
        Ok((Some(Expr::Or(alternatives)), Vec::new()))
    }

    fn and(&mut self) -> Result<Conjunction, QueryError> {
        self.require_term(None)?;
        let mut exprs = Vec::new();
        let mut times = Vec::new();
        loop {
            match self.unary()? {
                Item::Expr(e) => exprs.push(e),
                Item::Time(t) if self.depth > 0 => {
                    return Err(QueryError::new(
                        t.span.start,
                        format!(
                            "{} must be at the top level of the search, not inside parentheses",
                            time_name(&t)
                        ),
                    ));
                }
                Item::Time(t) => times.push(t),
            }
            let next = self.peek()?;
            if is_keyword(&next.tok, "AND") {
                self.bump()?;
                self.require_term(Some("AND"))?;
            } else if !starts_term(&next.tok) {
                return Ok((exprs, times));
            }
        }
    }

    /// The next token must start a term; `after` names what came before it.
    fn require_term(&mut self, after: Option<&str>) -> Result<(), QueryError> {
        let t = self.peek()?;
        if starts_term(&t.tok) {
            return Ok(());
        }
        let found = match &t.tok {
            Tok::End => "the end of the query".to_string(),
            _ => format!("'{}'", &self.text[t.span.start..t.span.end]),
        };
        let message = match (after, &t.tok) {
            (Some(after), _) => format!("expected a search term after {after}, found {found}"),
            (None, Tok::RParen) if self.depth > 0 => {
                "empty parentheses: expected a search term before ')'".to_string()
            }
            (None, Tok::RParen) => "unmatched ')': no '(' opens it".to_string(),
            (None, _) => format!("expected a search term before {found}"),
        };
        Err(QueryError::new(t.span.start, message))
    }

    fn unary(&mut self) -> Result<Item, QueryError> {
        let mut negations = 0;
        loop {
            let t = self.peek()?;
            let after = match &t.tok {
                Tok::Minus => "'-'",
                tok if is_keyword(tok, "NOT") => "NOT",
                _ => break,
            };
            self.bump()?;
            self.enter(t.span.start)?;
            negations += 1;
            self.require_term(Some(after))?;
        }
        let item = self.primary();
        self.depth -= negations;
        match item? {
            Item::Time(t) if negations > 0 => Err(QueryError::new(
                t.span.start,
                format!("{} cannot be negated", time_name(&t)),
            )),
            Item::Expr(mut e) => {
                for _ in 0..negations {
                    e = Expr::Not(Box::new(e));
                }
                Ok(Item::Expr(e))
            }
            time => Ok(time),
        }
    }

    fn primary(&mut self) -> Result<Item, QueryError> {
        let t = self.bump()?;
        match t.tok {
            Tok::LParen => {
                let unclosed = || QueryError::new(t.span.start, "unclosed '(': add a ')'");
                self.enter(t.span.start)?;
                if matches!(self.peek()?.tok, Tok::End | Tok::Pipe) {
                    return Err(unclosed());
                }
                let (expr, _) = self.or()?;
                let close = self.bump()?;
                self.depth -= 1;
                match (close.tok, expr) {
                    (Tok::RParen, Some(e)) => Ok(Item::Expr(e)),
                    _ => Err(unclosed()),
                }
            }
            Tok::Quoted(text) | Tok::Word(text) => {
                Ok(Item::Expr(Expr::Text { text, span: t.span }))
            }
            Tok::Field {
                name,
                backticked,
                op,
            } => self.condition(name, backticked, op, t.span.start),
            Tok::RParen | Tok::Pipe | Tok::End | Tok::Minus => {
                Err(QueryError::new(t.span.start, "expected a search term"))
            }
        }
    }

    /// `field op value`; the lexer stands after the operator.
    fn condition(
        &mut self,
        field: String,
        backticked: bool,
        op: Op,
        start: usize,
    ) -> Result<Item, QueryError> {
        let lower = field.to_ascii_lowercase();
        if !backticked && (lower == "earliest" || lower == "latest") {
            if !matches!(op, Op::Eq | Op::Colon) {
                return Err(QueryError::new(
                    start,
                    format!("{lower} takes '=': {lower}=-24h, {lower}=now or {lower}=2023-08-15"),
                ));
            }
            let v = self.lx.value(op.shown(), false)?;
            let bound = time::bound(&v.text).map_err(|(at, m)| QueryError::new(v.at(at), m))?;
            return Ok(Item::Time(TimeSet {
                latest: lower == "latest",
                bound,
                span: Span {
                    start,
                    end: v.span.end,
                },
            }));
        }
        if op == Op::In {
            return self.in_list(&field).map(Item::Expr);
        }
        let v = self.lx.value(op.shown(), false)?;
        let span = Span {
            start,
            end: v.span.end,
        };
        let expr = match op {
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let value = number(&v.text).ok_or_else(|| {
                    QueryError::new(
                        v.span.start,
                        format!(
                            "expected a number after {} (like 10, -2.5 or 0x1F), found '{}'",
                            op.shown(),
                            v.text
                        ),
                    )
                })?;
                let bound = Some(Bound {
                    value,
                    inclusive: matches!(op, Op::Le | Op::Ge),
                });
                let (min, max) = match op {
                    Op::Gt | Op::Ge => (bound, None),
                    _ => (None, bound),
                };
                Expr::Range {
                    field,
                    min,
                    max,
                    span,
                }
            }
            Op::Ne => Expr::Not(Box::new(value_expr(&field, &v, span)?)),
            _ => value_expr(&field, &v, span)?,
        };
        Ok(Item::Expr(expr))
    }

    /// `field IN (a, b, c)`; the lexer stands after the `(`. Each alternative's span
    /// is its value's.
    fn in_list(&mut self, field: &str) -> Result<Expr, QueryError> {
        let open = self.lx.pos() - 1;
        let unclosed = || QueryError::new(open, "unclosed '(' of the IN list: add a ')'");
        let mut alternatives = Vec::new();
        let mut after = "'('";
        loop {
            match self.lx.peek_past_ws() {
                (_, None | Some('|')) => return Err(unclosed()),
                (at, Some(')')) if alternatives.is_empty() => {
                    return Err(QueryError::new(
                        at,
                        "an empty IN list: write field IN (a, b)",
                    ));
                }
                _ => {}
            }
            let v = self.lx.value(after, true)?;
            alternatives.push(value_expr(field, &v, v.span)?);
            self.lx.skip_ws();
            match self.lx.peek_char() {
                Some(',') => after = "','",
                Some(')') => break,
                None | Some('|') => return Err(unclosed()),
                Some(_) => {
                    return Err(QueryError::new(
                        self.lx.pos(),
                        "expected ',' or ')' in the IN list",
                    ));
                }
            }
            self.lx.bump_char();
        }
        self.lx.bump_char();
        Ok(if alternatives.len() == 1 {
            alternatives.remove(0)
        } else {
            Expr::Or(alternatives)
        })
    }
}

fn time_name(t: &TimeSet) -> &'static str {
    if t.latest {
        "latest="
    } else {
        "earliest="
    }
}

/// The query's time bounds from the top-level `earliest=` / `latest=` terms: each at
/// most once, and the range not empty when both are of the same kind.
fn time_range(times: Vec<TimeSet>) -> Result<(Option<TimeBound>, Option<TimeBound>), QueryError> {
    let mut earliest: Option<TimeSet> = None;
    let mut latest: Option<TimeSet> = None;
    for t in times {
        let slot = if t.latest { &mut latest } else { &mut earliest };
        if slot.is_some() {
            return Err(QueryError::new(
                t.span.start,
                format!("{} is given twice", time_name(&t)),
            ));
        }
        *slot = Some(t);
    }
    if let (Some(e), Some(l)) = (&earliest, &latest) {
        let empty = match (e.bound, l.bound) {
            (TimeBound::Absolute(a), TimeBound::Absolute(b))
            | (TimeBound::Relative(a), TimeBound::Relative(b)) => a >= b,
            _ => false,
        };
        if empty {
            return Err(QueryError::new(
                l.span.start,
                "latest= is not after earliest=: the time range is empty",
            ));
        }
    }
    Ok((earliest.map(|t| t.bound), latest.map(|t| t.bound)))
}

/// What `field=value` means: `*` is Exists, `a..b` a Range, `net/len` a Cidr, anything
/// else (and anything quoted) a Match on the value as typed.
fn value_expr(field: &str, v: &Value, span: Span) -> Result<Expr, QueryError> {
    let field = field.to_string();
    let t = v.text.as_str();
    if v.quoted {
        return Ok(Expr::Match {
            field,
            value: v.text.clone(),
            span,
        });
    }
    if t == "*" {
        return Ok(Expr::Exists { field, span });
    }
    if let Some(i) = t.find("..") {
        if let Some(lo) = number(&t[..i]) {
            let hi_text = &t[i + 2..];
            let hi = number(hi_text).ok_or_else(|| {
                QueryError::new(
                    v.at(i + 2),
                    format!("expected a number after '..' (like 1..1024), found '{hi_text}'"),
                )
            })?;
            if lo > hi {
                return Err(QueryError::new(
                    v.span.start,
                    format!("the range {t} is empty: {} is more than {hi_text}", &t[..i]),
                ));
            }
            let bound = |value| {
                Some(Bound {
                    value,
                    inclusive: true,
                })
            };
            return Ok(Expr::Range {
                field,
                min: bound(lo),
                max: bound(hi),
                span,
            });
        }
    }
    if let Some(slash) = t.find('/') {
        if t[..slash].parse::<IpAddr>().is_ok() {
            return match t.parse::<IpNet>() {
                Ok(net) => Ok(Expr::Cidr { field, net, span }),
                Err(_) => Err(QueryError::new(
                    v.at(slash + 1),
                    format!(
                        "bad network '{t}': after '/' comes a prefix length, 0-32 for IPv4 \
                         or 0-128 for IPv6"
                    ),
                )),
            };
        }
    }
    Ok(Expr::Match {
        field,
        value: v.text.clone(),
        span,
    })
}

/// A number as a range takes it: an optional sign, then digits with an optional
/// fraction (`10`, `-2.5`) or `0x` and up to 16 hex digits. No exponents, no `inf`.
pub(crate) fn number(s: &str) -> Option<f64> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()? as f64
    } else {
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        let (int, frac) = match body.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (body, None),
        };
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return None;
        }
        body.parse::<f64>().ok().filter(|v| v.is_finite())?
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("10"), Some(10.0));
        assert_eq!(number("-2.5"), Some(-2.5));
        assert_eq!(number("+3"), Some(3.0));
        assert_eq!(number("0x1F"), Some(31.0));
        assert_eq!(number("-0X10"), Some(-16.0));
        for bad in [
            "",
            "-",
            "1.",
            ".5",
            "1e3",
            "inf",
            "NaN",
            "0x",
            "0xG",
            "1.2.3",
            "0x12345678901234567",
        ] {
            assert_eq!(number(bad), None, "{bad}");
        }
        assert_eq!(number(&"9".repeat(400)), None);
    }
}
