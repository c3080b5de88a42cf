//! STIX 2.1: patterns parsed by the grammar of the patterning language, and bundles
//! imported.
//!
//! A pattern becomes indicators when what it says is "any of these values": one or
//! more equality (or `IN`, or `ISSUBSET` for networks) comparisons on a path Koban
//! matches, joined by `OR`, inside one or more observation expressions joined by `OR`.
//! Anything else — `AND` across properties, `FOLLOWEDBY`, `MATCHES`, `LIKE`,
//! qualifiers, paths such as `x509-certificate:issuer` — parses, but is reported as
//! unsupported with its reason and counted, never dropped in silence.

use serde_json::Value;

use crate::indicator::{time_ms, Indicator, Kind, Tlp};
use crate::ImportReport;

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    /// `[ … ]` with its qualifiers.
    Observation(Comparison, Vec<String>),
    And(Box<Pattern>, Box<Pattern>),
    Or(Box<Pattern>, Box<Pattern>),
    FollowedBy(Box<Pattern>, Box<Pattern>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    Test {
        path: String,
        negated: bool,
        op: String,
        value: Literal,
    },
    Exists(String),
    And(Box<Comparison>, Box<Comparison>),
    Or(Box<Comparison>, Box<Comparison>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(String),
    Bool(bool),
    /// `t'…'`, `h'…'`, `b'…'`.
    Typed(char, String),
    List(Vec<Literal>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Word(String),
    Op(String),
    Str(String),
    Typed(char, String),
    Num(String),
}

fn tokens(p: &str) -> Result<Vec<Tok>, String> {
    let b = p.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'[' => {
                out.push(Tok::LBracket);
                i += 1
            }
            b']' => {
                out.push(Tok::RBracket);
                i += 1
            }
            b'(' => {
                out.push(Tok::LParen);
                i += 1
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1
            }
            b'=' => {
                out.push(Tok::Op("=".into()));
                i += 1
            }
            b'!' | b'<' | b'>' => {
                let two = b.get(i + 1) == Some(&b'=');
                let op = if two { &p[i..i + 2] } else { &p[i..i + 1] };
                if op == "!" {
                    return Err(format!("a lone ! at byte {i}"));
                }
                out.push(Tok::Op(op.to_owned()));
                i += op.len();
            }
            b'\'' => {
                let (s, end) = quoted(p, i)?;
                out.push(Tok::Str(s));
                i = end;
            }
            b't' | b'h' | b'b' if b.get(i + 1) == Some(&b'\'') => {
                let (s, end) = quoted(p, i + 1)?;
                out.push(Tok::Typed(c as char, s));
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                out.push(Tok::Num(p[start..i].to_owned()));
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                // A word, or an object path: type:prop.'quoted prop'[*].x
                let start = i;
                while i < b.len() {
                    match b[i] {
                        b'\'' if p[start..i].ends_with('.') || p[start..i].ends_with(':') => {
                            let (_, end) = quoted(p, i)?;
                            i = end;
                        }
                        b'[' if p[start..i].contains(':') => {
                            let close = p[i..].find(']').ok_or("an unclosed [ in a path")?;
                            i += close + 1;
                        }
                        c if c.is_ascii_alphanumeric() || b"_-:.*".contains(&c) => i += 1,
                        _ => break,
                    }
                }
                out.push(Tok::Word(p[start..i].to_owned()));
            }
            _ => {
                return Err(format!(
                    "{:?} at byte {i} is not part of a pattern",
                    c as char
                ))
            }
        }
    }
    Ok(out)
}

/// The text of a quoted string starting at `start` (a `'`), and the byte after it.
fn quoted(p: &str, start: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = p[start + 1..].char_indices();
    while let Some((j, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => out.push(e),
                None => break,
            },
            '\'' => return Ok((out, start + 1 + j + 1)),
            c => out.push(c),
        }
    }
    Err(format!("the string at byte {start} is never closed"))
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn word_is(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<(), String> {
        match self.next() {
            Some(got) if got == t => Ok(()),
            got => Err(format!("expected {what}, found {got:?}")),
        }
    }

    // pattern := followed ( "OR" followed )*  — precedence: AND > OR > FOLLOWEDBY
    // (the specification's order: FOLLOWEDBY binds loosest).
    fn pattern(&mut self) -> Result<Pattern, String> {
        let mut left = self.or_obs()?;
        while self.word_is("FOLLOWEDBY") {
            self.at += 1;
            let right = self.or_obs()?;
            left = Pattern::FollowedBy(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or_obs(&mut self) -> Result<Pattern, String> {
        let mut left = self.and_obs()?;
        while self.word_is("OR") {
            self.at += 1;
            let right = self.and_obs()?;
            left = Pattern::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_obs(&mut self) -> Result<Pattern, String> {
        let mut left = self.observation()?;
        while self.word_is("AND") {
            self.at += 1;
            let right = self.observation()?;
            left = Pattern::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn observation(&mut self) -> Result<Pattern, String> {
        match self.next() {
            Some(Tok::LBracket) => {
                let c = self.comparison()?;
                self.expect(Tok::RBracket, "]")?;
                let q = self.qualifiers()?;
                Ok(Pattern::Observation(c, q))
            }
            Some(Tok::LParen) => {
                let p = self.pattern()?;
                self.expect(Tok::RParen, ")")?;
                let q = self.qualifiers()?;
                if q.is_empty() {
                    Ok(p)
                } else {
                    // A qualifier on a group: keep it on a wrapper the caller sees.
                    Ok(Pattern::And(
                        Box::new(p),
                        Box::new(Pattern::Observation(
                            Comparison::Exists("(qualified group)".into()),
                            q,
                        )),
                    ))
                }
            }
            t => Err(format!("expected [ or (, found {t:?}")),
        }
    }

    fn qualifiers(&mut self) -> Result<Vec<String>, String> {
        let mut q = Vec::new();
        loop {
            if self.word_is("WITHIN") {
                self.at += 1;
                let n = self.next();
                if !self.word_is("SECONDS") {
                    return Err("WITHIN needs SECONDS".into());
                }
                self.at += 1;
                q.push(format!("WITHIN {n:?} SECONDS"));
            } else if self.word_is("REPEATS") {
                self.at += 1;
                let n = self.next();
                if !self.word_is("TIMES") {
                    return Err("REPEATS needs TIMES".into());
                }
                self.at += 1;
                q.push(format!("REPEATS {n:?} TIMES"));
            } else if self.word_is("START") {
                self.at += 1;
                let a = self.next();
                if !self.word_is("STOP") {
                    return Err("START needs STOP".into());
                }
                self.at += 1;
                let b = self.next();
                q.push(format!("START {a:?} STOP {b:?}"));
            } else {
                return Ok(q);
            }
        }
    }

    fn comparison(&mut self) -> Result<Comparison, String> {
        let mut left = self.comparison_and()?;
        while self.word_is("OR") {
            self.at += 1;
            let right = self.comparison_and()?;
            left = Comparison::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn comparison_and(&mut self) -> Result<Comparison, String> {
        let mut left = self.test()?;
        while self.word_is("AND") {
            self.at += 1;
            let right = self.test()?;
            left = Comparison::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn test(&mut self) -> Result<Comparison, String> {
        if self.peek() == Some(&Tok::LParen) {
            self.at += 1;
            let c = self.comparison()?;
            self.expect(Tok::RParen, ")")?;
            return Ok(c);
        }
        if self.word_is("EXISTS") {
            self.at += 1;
            return match self.next() {
                Some(Tok::Word(p)) if p.contains(':') => Ok(Comparison::Exists(p)),
                t => Err(format!("EXISTS needs an object path, found {t:?}")),
            };
        }
        let path = match self.next() {
            Some(Tok::Word(p)) if p.contains(':') => p,
            t => {
                return Err(format!(
                    "expected an object path (type:property), found {t:?}"
                ))
            }
        };
        let negated = self.word_is("NOT");
        if negated {
            self.at += 1;
        }
        let op = match self.next() {
            Some(Tok::Op(o)) => o,
            Some(Tok::Word(w))
                if ["IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                w.to_ascii_uppercase()
            }
            t => {
                return Err(format!(
                    "expected a comparison operator after {path}, found {t:?}"
                ))
            }
        };
        let value = self.literal()?;
        Ok(Comparison::Test {
            path,
            negated,
            op,
            value,
        })
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal::Str(s)),
            Some(Tok::Num(n)) => Ok(Literal::Num(n)),
            Some(Tok::Typed(c, s)) => Ok(Literal::Typed(c, s)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Tok::LParen) => {
                let mut items = vec![self.literal()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.at += 1;
                    items.push(self.literal()?);
                }
                self.expect(Tok::RParen, ")")?;
                Ok(Literal::List(items))
            }
            t => Err(format!("expected a value, found {t:?}")),
        }
    }
}

/// Parses a STIX 2.1 pattern.
pub fn parse(pattern: &str) -> Result<Pattern, String> {
    let mut p = Parser {
        toks: tokens(pattern)?,
        at: 0,
    };
    let out = p.pattern()?;
    match p.peek() {
        None => Ok(out),
        Some(t) => Err(format!("unexpected {t:?} after the pattern")),
    }
}

/// The kind of value an object path holds, when Koban matches it.
pub fn path_kind(path: &str) -> Option<Kind> {
    let p = path.to_ascii_lowercase().replace('\'', "");
    Some(match p.as_str() {
        "ipv4-addr:value" | "ipv6-addr:value" => Kind::Ip,
        "domain-name:value" => Kind::Domain,
        "url:value" => Kind::Url,
        "email-addr:value" | "email-message:from_ref.value" | "email-message:sender_ref.value" => {
            Kind::Email
        }
        "file:hashes.md5" => Kind::Md5,
        "file:hashes.sha-1" | "file:hashes.sha1" => Kind::Sha1,
        "file:hashes.sha-256" | "file:hashes.sha256" => Kind::Sha256,
        _ => return None,
    })
}

/// The values a pattern stands for, or why Koban cannot evaluate it.
pub fn atoms(p: &Pattern) -> Result<Vec<(Kind, String)>, String> {
    match p {
        Pattern::Or(a, b) => {
            let mut v = atoms(a)?;
            v.extend(atoms(b)?);
            Ok(v)
        }
        Pattern::And(..) => Err("AND between observations".into()),
        Pattern::FollowedBy(..) => Err("FOLLOWEDBY".into()),
        Pattern::Observation(_, q) if !q.is_empty() => Err(format!(
            "qualifier {}",
            q[0].split_whitespace().next().unwrap_or("")
        )),
        Pattern::Observation(c, _) => comparison_atoms(c),
    }
}

fn comparison_atoms(c: &Comparison) -> Result<Vec<(Kind, String)>, String> {
    match c {
        Comparison::Or(a, b) => {
            let mut v = comparison_atoms(a)?;
            v.extend(comparison_atoms(b)?);
            Ok(v)
        }
        Comparison::And(..) => Err("AND between comparisons".into()),
        Comparison::Exists(_) => Err("EXISTS".into()),
        Comparison::Test {
            path,
            negated,
            op,
            value,
        } => {
            if *negated {
                return Err(format!("NOT {op}"));
            }
            let kind = path_kind(path).ok_or_else(|| {
                let object = path.split(':').next().unwrap_or(path);
                format!("path {object}:{}", path.split(':').nth(1).unwrap_or(""))
            })?;
            let strings = |l: &Literal| -> Result<Vec<String>, String> {
                match l {
                    Literal::Str(s) => Ok(vec![s.clone()]),
                    Literal::List(items) => items
                        .iter()
                        .map(|i| match i {
                            Literal::Str(s) => Ok(s.clone()),
                            _ => Err("a non-string value".to_owned()),
                        })
                        .collect(),
                    _ => Err("a non-string value".to_owned()),
                }
            };
            match op.as_str() {
                "=" => strings(value),
                "IN" => strings(value),
                "ISSUBSET" if kind == Kind::Ip => strings(value),
                other => Err(format!("operator {other}")),
            }
            .map(|vals| vals.into_iter().map(|v| (kind, v)).collect())
        }
    }
}

/// Imports the indicators of a STIX 2.1 bundle (or a lone object, or a list).
pub fn import_bundle(
    doc: &Value,
    source: &str,
    out: &mut Vec<Indicator>,
    report: &mut ImportReport,
) {
    let objects: Vec<&Value> = match doc {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("bundle") => o
            .get("objects")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        other => vec![other],
    };
    // TLP markings by id (the marking-definition objects of the bundle and the
    // well-known STIX 2.1 TLP ids are recognised by their definition/name).
    let mut tlp_of = std::collections::HashMap::new();
    for o in &objects {
        if o["type"] == "marking-definition" {
            let name = o["definition"]["tlp"]
                .as_str()
                .or_else(|| o["name"].as_str())
                .unwrap_or_default();
            if let (Some(id), Some(t)) = (o["id"].as_str(), Tlp::parse(name)) {
                tlp_of.insert(id.to_owned(), t);
            }
        }
    }
    for o in objects {
        if o["type"] != "indicator" {
            continue;
        }
        let lang = o["pattern_type"].as_str().unwrap_or("stix");
        if lang != "stix" {
            report.skip(format!("pattern_type {lang}"));
            continue;
        }
        let Some(text) = o["pattern"].as_str() else {
            report.skip("an indicator without a pattern");
            continue;
        };
        let atoms = match parse(text) {
            Ok(p) => atoms(&p),
            Err(e) => Err(format!("pattern does not parse: {e}")),
        };
        let atoms = match atoms {
            Ok(a) => a,
            Err(why) => {
                report.skip(why);
                continue;
            }
        };
        let tlp = o["object_marking_refs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().and_then(|m| tlp_of.get(m).copied()))
            .max();
        for (kind, value) in atoms {
            match Indicator::new(kind, &value, source) {
                Ok(mut ind) => {
                    ind.id = o["id"].as_str().map(str::to_owned);
                    ind.confidence = o["confidence"].as_u64().map(|c| c.min(100) as u8);
                    ind.tlp = tlp;
                    ind.first_seen_ms = o["valid_from"].as_str().and_then(time_ms);
                    ind.valid_until_ms = o["valid_until"].as_str().and_then(time_ms);
                    ind.context = o["name"]
                        .as_str()
                        .or_else(|| o["description"].as_str())
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect();
                    out.push(ind);
                    report.imported += 1;
                }
                Err(e) => report.skip(format!("a bad {} value: {e}", kind.as_str())),
            }
        }
    }
}
