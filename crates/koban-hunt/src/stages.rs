//! The pipeline after the search: `| stats count() by a | sort -count | head 5`.
//! Each stage is a name, then its own small grammar; the token after a stage must
//! be `|` or the end of the query.

use crate::ast::{SortKey, Span, Stage};
use crate::error::QueryError;
use crate::lexer::{is_field_name, STok, SToken};
use crate::parser::Parser;
use crate::time;

const STAGE_NAMES: [&str; 7] = [
    "stats",
    "top",
    "rare",
    "timechart",
    "sort",
    "head",
    "fields",
];
const DEFAULT_LIMIT: usize = 10;
const DEFAULT_SPAN_MS: i64 = 3_600_000;

impl Parser<'_> {
    fn speek(&mut self) -> Result<SToken, QueryError> {
        let t = match self.speeked.take() {
            Some(t) => t,
            None => self.lx.stage_token()?,
        };
        Ok(self.speeked.insert(t).clone())
    }

    fn sbump(&mut self) -> Result<SToken, QueryError> {
        let t = match self.speeked.take() {
            Some(t) => t,
            None => self.lx.stage_token()?,
        };
        if t.tok != STok::End {
            self.last_end = t.span.end;
        }
        Ok(t)
    }

    fn speek_word(&mut self, word: &str) -> Result<bool, QueryError> {
        Ok(matches!(self.speek()?.tok, STok::Word(w) if w.eq_ignore_ascii_case(word)))
    }

    /// A stage token as a message shows it.
    fn shown(&self, t: &SToken) -> String {
        match t.tok {
            STok::End => "the end of the query".to_string(),
            _ => format!("'{}'", &self.text[t.span.start..t.span.end]),
        }
    }

    fn span_from(&self, start: usize) -> Span {
        Span {
            start,
            end: self.last_end,
        }
    }

    pub(crate) fn stages(&mut self) -> Result<Vec<Stage>, QueryError> {
        let mut stages = Vec::new();
        loop {
            stages.push(self.stage()?);
            if self.sbump()?.tok != STok::Pipe {
                return Ok(stages);
            }
        }
    }

    /// One stage; the `|` before it is consumed, and the token after it must be
    /// another `|` or the end.
    fn stage(&mut self) -> Result<Stage, QueryError> {
        let t = self.sbump()?;
        let start = t.span.start;
        let known = STAGE_NAMES.join(", ");
        let word = match t.tok {
            STok::Word(w) => w,
            STok::Pipe | STok::End => {
                return Err(QueryError::new(
                    start,
                    format!("expected a stage after '|' (one of {known})"),
                ));
            }
            _ => {
                return Err(QueryError::new(
                    start,
                    format!(
                        "expected a stage name after '|', found {} (one of {known})",
                        self.shown(&t)
                    ),
                ));
            }
        };
        let name = word.to_ascii_lowercase();
        let stage = match name.as_str() {
            "stats" => self.stats(start)?,
            "top" => self.top(start, false)?,
            "rare" => self.top(start, true)?,
            "timechart" => self.timechart(start)?,
            "sort" => self.sort(start)?,
            "head" => self.head(start)?,
            "fields" => self.fields(start)?,
            _ => {
                let hint = suggest(&name, &STAGE_NAMES)
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                return Err(QueryError::new(
                    start,
                    format!("unknown stage '{word}'{hint}; the stages are {known}"),
                ));
            }
        };
        let next = self.speek()?;
        if !matches!(next.tok, STok::Pipe | STok::End) {
            return Err(QueryError::new(
                next.span.start,
                format!(
                    "unexpected {} after the {name} stage: expected '|' or the end of the query",
                    self.shown(&next)
                ),
            ));
        }
        Ok(stage)
    }

    /// `count` or `count()`, required after `stage`.
    fn count(&mut self, stage: &str) -> Result<(), QueryError> {
        let t = self.sbump()?;
        match &t.tok {
            STok::Word(w) if w.eq_ignore_ascii_case("count") => {
                if self.speek()?.tok != STok::LParen {
                    return Ok(());
                }
                let open = self.sbump()?;
                let close = self.sbump()?;
                match close.tok {
                    STok::RParen => Ok(()),
                    STok::End | STok::Pipe => Err(QueryError::new(
                        open.span.start,
                        "unclosed '(' after count: write count()",
                    )),
                    _ => Err(QueryError::new(
                        close.span.start,
                        "count() takes nothing between its parentheses",
                    )),
                }
            }
            STok::Word(w) => {
                let lower = w.to_ascii_lowercase();
                let other = ["sum", "avg", "min", "max", "dc", "distinct_count", "values"];
                let message = if other.contains(&lower.as_str()) {
                    format!("{w}() is not supported: {stage} counts, write count()")
                } else {
                    let hint = if suggest(&lower, &["count"]).is_some() {
                        " (did you mean count()?)"
                    } else {
                        ""
                    };
                    format!("expected count() after {stage}, found '{w}'{hint}")
                };
                Err(QueryError::new(t.span.start, message))
            }
            _ => Err(QueryError::new(
                t.span.start,
                format!("expected count() after {stage}, found {}", self.shown(&t)),
            )),
        }
    }

    /// A field (or a name) after `after`.
    fn field(&mut self, after: &str) -> Result<String, QueryError> {
        let t = self.sbump()?;
        match t.tok {
            STok::Name(n) => Ok(n),
            STok::Word(w) if is_field_name(&w) => Ok(w),
            STok::Word(_) => Err(QueryError::new(
                t.span.start,
                format!(
                    "expected a field after {after}, found {}: a field name starts with a \
                     letter, '_' or '@' (put other names in backticks: `1st`)",
                    self.shown(&t)
                ),
            )),
            STok::Other('"') => Err(QueryError::new(
                t.span.start,
                format!("expected a field after {after}: put unusual field names in backticks, `like this`"),
            )),
            _ => Err(QueryError::new(
                t.span.start,
                format!("expected a field after {after}, found {}", self.shown(&t)),
            )),
        }
    }

    /// `F1, F2, ...` (each with an optional `-` or `+` when `signed`): names and
    /// whether each is descending.
    fn field_list(&mut self, after: &str, signed: bool) -> Result<Vec<(String, bool)>, QueryError> {
        let mut fields = Vec::new();
        let mut after = after.to_string();
        loop {
            let mut descending = false;
            if signed {
                match self.speek()?.tok {
                    STok::Minus => {
                        self.sbump()?;
                        descending = true;
                        after = "'-'".to_string();
                    }
                    STok::Plus => {
                        self.sbump()?;
                        after = "'+'".to_string();
                    }
                    _ => {}
                }
            }
            fields.push((self.field(&after)?, descending));
            let next = self.speek()?;
            match next.tok {
                STok::Comma => {
                    self.sbump()?;
                    after = "','".to_string();
                }
                STok::Word(_) | STok::Name(_) => {
                    return Err(QueryError::new(
                        next.span.start,
                        format!(
                            "expected ',' before {}: fields are separated by commas",
                            self.shown(&next)
                        ),
                    ));
                }
                STok::Minus | STok::Plus if signed => {
                    return Err(QueryError::new(
                        next.span.start,
                        "expected ',' before the next sort key: keys are separated by commas",
                    ));
                }
                _ => return Ok(fields),
            }
        }
    }

    /// A limit N (at least 1) for `stage`, from the word `w` at `pos`.
    fn limit(&self, stage: &str, w: &str, pos: usize) -> Result<usize, QueryError> {
        if !w.bytes().all(|b| b.is_ascii_digit()) {
            return Err(QueryError::new(
                pos,
                format!("expected a whole number after {stage}, found '{w}'"),
            ));
        }
        match w.parse::<usize>() {
            Ok(0) => Err(QueryError::new(
                pos,
                format!("{stage} 0 would return nothing: the number must be at least 1"),
            )),
            Ok(n) => Ok(n),
            Err(_) => Err(QueryError::new(pos, format!("the number {w} is too large"))),
        }
    }

    fn stats(&mut self, start: usize) -> Result<Stage, QueryError> {
        self.count("stats")?;
        let mut name = "count".to_string();
        if self.speek_word("as")? {
            self.sbump()?;
            name = self.field("'as'")?;
        }
        let mut by = Vec::new();
        if self.speek_word("by")? {
            self.sbump()?;
            by = self
                .field_list("'by'", false)?
                .into_iter()
                .map(|f| f.0)
                .collect();
        } else if let t @ SToken {
            tok: STok::Word(_) | STok::Name(_),
            ..
        } = self.speek()?
        {
            return Err(QueryError::new(
                t.span.start,
                format!(
                    "expected 'by' or '|' after count(), found {}",
                    self.shown(&t)
                ),
            ));
        }
        Ok(Stage::Stats {
            name,
            by,
            span: self.span_from(start),
        })
    }

    fn top(&mut self, start: usize, rare: bool) -> Result<Stage, QueryError> {
        let stage = if rare { "rare" } else { "top" };
        let mut limit = DEFAULT_LIMIT;
        let mut after = stage.to_string();
        let next = self.speek()?;
        if let STok::Word(w) = &next.tok {
            if w.starts_with(|c: char| c.is_ascii_digit()) {
                self.sbump()?;
                limit = self.limit(stage, w, next.span.start)?;
                after = format!("{stage} {w}");
            }
        }
        let field = self.field(&after)?;
        let next = self.speek()?;
        if next.tok == STok::Comma {
            return Err(QueryError::new(
                next.span.start,
                format!("{stage} counts one field; for several, use stats count() by a, b"),
            ));
        }
        Ok(Stage::Top {
            field,
            limit,
            rare,
            span: self.span_from(start),
        })
    }

    fn timechart(&mut self, start: usize) -> Result<Stage, QueryError> {
        let mut span_ms = None;
        let mut counted = false;
        loop {
            if self.speek_word("span")? {
                let t = self.sbump()?;
                if span_ms.is_some() {
                    return Err(QueryError::new(t.span.start, "span= is given twice"));
                }
                let eq = self.sbump()?;
                if eq.tok != STok::Eq {
                    return Err(QueryError::new(
                        eq.span.start,
                        "expected '=' after span (like span=1h)",
                    ));
                }
                let v = self.sbump()?;
                let duration = match &v.tok {
                    STok::Word(d) if d.starts_with(|c: char| c.is_ascii_digit()) => Some(d),
                    _ => None,
                };
                let Some(d) = duration else {
                    return Err(QueryError::new(
                        v.span.start,
                        format!(
                            "expected a duration after 'span=' (like 5m or 1h), found {}",
                            self.shown(&v)
                        ),
                    ));
                };
                let ms =
                    time::duration(d).map_err(|(at, m)| QueryError::new(v.span.start + at, m))?;
                span_ms = Some(ms);
            } else if !counted {
                self.count("timechart")?;
                counted = true;
            } else {
                break;
            }
        }
        let mut by = None;
        if self.speek_word("by")? {
            self.sbump()?;
            by = Some(self.field("'by'")?);
            let next = self.speek()?;
            if next.tok == STok::Comma {
                return Err(QueryError::new(
                    next.span.start,
                    "timechart splits by one field only",
                ));
            }
        }
        Ok(Stage::Timechart {
            span_ms: span_ms.unwrap_or(DEFAULT_SPAN_MS),
            by,
            span: self.span_from(start),
        })
    }

    fn sort(&mut self, start: usize) -> Result<Stage, QueryError> {
        let keys = self
            .field_list("sort", true)?
            .into_iter()
            .map(|(field, descending)| SortKey { field, descending })
            .collect();
        Ok(Stage::Sort {
            keys,
            span: self.span_from(start),
        })
    }

    fn head(&mut self, start: usize) -> Result<Stage, QueryError> {
        let mut limit = DEFAULT_LIMIT;
        let next = self.speek()?;
        match &next.tok {
            STok::Word(w) => {
                self.sbump()?;
                limit = self.limit("head", w, next.span.start)?;
            }
            STok::Minus | STok::Plus => {
                return Err(QueryError::new(
                    next.span.start,
                    "expected a whole number after head (at least 1)",
                ));
            }
            _ => {}
        }
        Ok(Stage::Head {
            limit,
            span: self.span_from(start),
        })
    }

    fn fields(&mut self, start: usize) -> Result<Stage, QueryError> {
        let fields = self
            .field_list("fields", false)?
            .into_iter()
            .map(|f| f.0)
            .collect();
        Ok(Stage::Fields {
            fields,
            span: self.span_from(start),
        })
    }
}

/// The option closest to `word` when it is a likely typo (at most two edits).
fn suggest<'o>(word: &str, options: &[&'o str]) -> Option<&'o str> {
    options
        .iter()
        .map(|o| (edit_distance(word, o), *o))
        .filter(|&(d, o)| d <= 2 && d * 2 <= o.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, o)| o)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("stat", "stats"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(suggest("stat", &STAGE_NAMES), Some("stats"));
        assert_eq!(suggest("timechrt", &STAGE_NAMES), Some("timechart"));
        assert_eq!(suggest("xyz", &STAGE_NAMES), None);
    }
}
