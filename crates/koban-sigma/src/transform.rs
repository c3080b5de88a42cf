//! Value transformations from the modifier chain: encodings (base64, base64offset,
//! UTF-16), Windows dash variants and placeholder expansion. Each turns one value
//! into one or more values; they run once, when the rule is compiled.

use base64::Engine as _;
use std::collections::HashMap;

use crate::modifier::Transform;
use crate::pattern::{self, Token};

/// A value in the middle of transformation: wildcard tokens until an encoding turns it
/// into plain bytes.
#[derive(Debug, Clone)]
pub(crate) enum Staged {
    Tokens(Vec<Token>),
    Bytes(Vec<u8>),
}

impl Staged {
    /// The value as wildcard tokens for the final comparison. Encoded bytes are a
    /// literal: an encoding leaves no wildcards behind.
    pub(crate) fn into_tokens(self) -> Vec<Token> {
        match self {
            Staged::Tokens(t) => t,
            Staged::Bytes(b) => pattern::literal(String::from_utf8_lossy(&b).into_owned()),
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        match self {
            Staged::Bytes(b) => b,
            // Wildcards inside an encoded value cannot be honoured; they are kept
            // as the characters they are.
            Staged::Tokens(tokens) => {
                let mut s = String::new();
                for t in tokens {
                    match t {
                        Token::Lit(l) => s.push_str(&l),
                        Token::Star => s.push('*'),
                        Token::One => s.push('?'),
                    }
                }
                s.into_bytes()
            }
        }
    }
}

/// Placeholders that `expand` could not resolve, reported as warnings by the caller.
#[derive(Debug, Default)]
pub(crate) struct Unresolved(pub Vec<String>);

/// Applies the transforms in order. Returns every resulting value (one value may
/// become several, e.g. base64offset gives three).
pub(crate) fn apply(
    value: Vec<Token>,
    transforms: &[Transform],
    placeholders: &HashMap<String, Vec<String>>,
    unresolved: &mut Unresolved,
) -> Vec<Staged> {
    let mut values = vec![Staged::Tokens(value)];
    for t in transforms {
        values = values
            .into_iter()
            .flat_map(|v| step(v, *t, placeholders, unresolved))
            .collect();
    }
    values
}

fn step(
    v: Staged,
    t: Transform,
    placeholders: &HashMap<String, Vec<String>>,
    unresolved: &mut Unresolved,
) -> Vec<Staged> {
    let b64 = base64::engine::general_purpose::STANDARD;
    match t {
        Transform::Base64 => vec![Staged::Bytes(b64.encode(v.into_bytes()).into_bytes())],
        Transform::Base64Offset => {
            let raw = v.into_bytes();
            (0..3)
                .map(|shift| {
                    let mut padded = vec![0u8; shift];
                    padded.extend_from_slice(&raw);
                    let enc = b64.encode(&padded).into_bytes();
                    // Drop the characters that depend on the unknown bytes before and
                    // after the value in the encoded stream.
                    let start = [0, 2, 3][shift];
                    let cut_end = [0, 3, 2][(raw.len() + shift) % 3];
                    let end = enc.len().saturating_sub(cut_end).max(start);
                    Staged::Bytes(enc[start..end].to_vec())
                })
                .collect()
        }
        Transform::Utf16Le | Transform::Utf16Be | Transform::Utf16 => {
            let text = String::from_utf8_lossy(&v.into_bytes()).into_owned();
            let mut out = Vec::with_capacity(text.len() * 2 + 2);
            if t == Transform::Utf16 {
                out.extend_from_slice(&[0xFF, 0xFE]);
            }
            for unit in text.encode_utf16() {
                let bytes = if t == Transform::Utf16Be {
                    unit.to_be_bytes()
                } else {
                    unit.to_le_bytes()
                };
                out.extend_from_slice(&bytes);
            }
            vec![Staged::Bytes(out)]
        }
        Transform::Windash => match v {
            Staged::Tokens(tokens) => windash(&tokens).into_iter().map(Staged::Tokens).collect(),
            bytes @ Staged::Bytes(_) => vec![bytes],
        },
        Transform::Expand => match v {
            Staged::Tokens(tokens) => expand(tokens, placeholders, unresolved)
                .into_iter()
                .map(Staged::Tokens)
                .collect(),
            bytes @ Staged::Bytes(_) => vec![bytes],
        },
    }
}

/// The characters Windows command lines accept in place of a leading `-`.
const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// Every variant of the value with each option dash (a `-` or `/` starting a word)
/// replaced by each of the dash characters Windows accepts.
fn windash(tokens: &[Token]) -> Vec<Vec<Token>> {
    // Count the option dashes first: a value with many gets one uniform replacement per
    // dash character rather than every combination, which would explode.
    let mut count = 0usize;
    let mut prev_space = true;
    for t in tokens {
        match t {
            Token::Lit(l) => {
                for c in l.chars() {
                    if prev_space && (c == '-' || c == '/') {
                        count += 1;
                    }
                    prev_space = c.is_whitespace();
                }
            }
            _ => prev_space = false,
        }
    }
    if count == 0 {
        return vec![tokens.to_vec()];
    }
    let combinations: Vec<Vec<char>> = if count <= 3 {
        let mut all = vec![Vec::new()];
        for _ in 0..count {
            all = all
                .into_iter()
                .flat_map(|prefix: Vec<char>| {
                    DASHES.iter().map(move |d| {
                        let mut p = prefix.clone();
                        p.push(*d);
                        p
                    })
                })
                .collect();
        }
        all
    } else {
        DASHES.iter().map(|d| vec![*d; count]).collect()
    };
    combinations
        .into_iter()
        .map(|choice| {
            let mut i = 0;
            let mut prev_space = true;
            tokens
                .iter()
                .map(|t| match t {
                    Token::Lit(l) => {
                        let mut s = String::with_capacity(l.len() + 2);
                        for c in l.chars() {
                            if prev_space && (c == '-' || c == '/') {
                                s.push(choice[i]);
                                i += 1;
                            } else {
                                s.push(c);
                            }
                            prev_space = c.is_whitespace();
                        }
                        Token::Lit(s)
                    }
                    other => {
                        prev_space = false;
                        other.clone()
                    }
                })
                .collect()
        })
        .collect()
}

/// Replaces `%name%` placeholders with each configured value (values may carry
/// wildcards). A placeholder with no configured values yields no value at all, so the
/// comparison can never match; the name is recorded for a warning.
fn expand(
    tokens: Vec<Token>,
    placeholders: &HashMap<String, Vec<String>>,
    unresolved: &mut Unresolved,
) -> Vec<Vec<Token>> {
    let mut results: Vec<Vec<Token>> = vec![Vec::new()];
    for t in tokens {
        let Token::Lit(lit) = t else {
            for r in &mut results {
                r.push(t.clone());
            }
            continue;
        };
        let mut rest = lit.as_str();
        while !rest.is_empty() {
            let Some(open) = rest.find('%') else {
                push_lit(&mut results, rest);
                break;
            };
            let after = &rest[open + 1..];
            let Some(close) = after.find('%') else {
                push_lit(&mut results, rest);
                break;
            };
            let name = &after[..close];
            if name.is_empty() || name.contains(char::is_whitespace) {
                push_lit(&mut results, &rest[..open + 1]);
                rest = after;
                continue;
            }
            push_lit(&mut results, &rest[..open]);
            match placeholders.get(name) {
                Some(values) if !values.is_empty() => {
                    results = results
                        .into_iter()
                        .flat_map(|prefix| {
                            values.iter().map(move |v| {
                                let mut p = prefix.clone();
                                p.extend(pattern::tokenize(v));
                                p
                            })
                        })
                        .collect();
                }
                _ => {
                    unresolved.0.push(name.to_owned());
                    return Vec::new();
                }
            }
            rest = &after[close + 1..];
        }
    }
    results
}

fn push_lit(results: &mut [Vec<Token>], s: &str) {
    if s.is_empty() {
        return;
    }
    for r in results {
        match r.last_mut() {
            Some(Token::Lit(l)) => l.push_str(s),
            _ => r.push(Token::Lit(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str, t: &[Transform]) -> Vec<String> {
        let mut u = Unresolved::default();
        apply(pattern::tokenize(s), t, &HashMap::new(), &mut u)
            .into_iter()
            .map(|v| pattern::display(&v.into_tokens()))
            .collect()
    }

    #[test]
    fn base64offset_gives_the_three_alignments() {
        // The classic example: "/bin/bash" appears in base64 at one of three offsets.
        let got = run("/bin/bash", &[Transform::Base64Offset]);
        assert_eq!(got, vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]);
        assert_eq!(run("abc", &[Transform::Base64]), vec!["YWJj"]);
    }

    #[test]
    fn utf16_then_base64_matches_powershell_encoding() {
        // `-enc` payloads are base64 of UTF-16LE text.
        assert_eq!(
            run("iex", &[Transform::Utf16Le, Transform::Base64]),
            vec!["aQBlAHgA"]
        );
        assert_eq!(
            run("ab", &[Transform::Utf16]),
            vec!["\u{FFFD}\u{FFFD}a\0b\0"]
        );
    }

    #[test]
    fn windash_replaces_option_dashes_only() {
        let got = run(" -exec bypass", &[Transform::Windash]);
        assert_eq!(got.len(), 5);
        assert!(got.contains(&" /exec bypass".to_string()));
        assert!(got.contains(&" \u{2013}exec bypass".to_string()));
        assert_eq!(run("a-b", &[Transform::Windash]), vec!["a-b"]);
        assert_eq!(run("-a -b", &[Transform::Windash]).len(), 25);
    }

    #[test]
    fn expand_substitutes_or_reports() {
        let mut map = HashMap::new();
        map.insert(
            "admins".to_string(),
            vec!["root".to_string(), "adm*".to_string()],
        );
        let mut u = Unresolved::default();
        let got: Vec<String> = apply(
            pattern::tokenize("x%admins%y"),
            &[Transform::Expand],
            &map,
            &mut u,
        )
        .into_iter()
        .map(|v| pattern::display(&v.into_tokens()))
        .collect();
        assert_eq!(got, vec!["xrooty", "xadm*y"]);
        let none = apply(
            pattern::tokenize("%nope%"),
            &[Transform::Expand],
            &map,
            &mut u,
        );
        assert!(none.is_empty());
        assert_eq!(u.0, vec!["nope"]);
    }
}
