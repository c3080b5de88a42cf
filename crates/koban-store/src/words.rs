//! The free-text tokenizer of `text`: the words tantivy's `default` analyzer makes
//! (`SimpleTokenizer`, then `RemoveLongFilter::limit(40)`, then `LowerCaser`), in
//! one pass.
//!
//! A syslog line is about 20 words, and the three stages — a chained iterator over
//! `char_indices`, a filter, and a lower-casing pass per word — were ~9 % of the
//! instructions of storing it. Here ASCII bytes are classified by a table and a word
//! is lower-cased while it is copied. The words are exactly tantivy's (the tests
//! compare both on every kind of text), so partitions written before and after, and
//! queries tokenized by either, agree. It is registered under tantivy's own name
//! `default`, the name the schema records, so no schema changed.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Words of this many bytes or more are dropped, as `RemoveLongFilter::limit(40)`.
const TOO_LONG: usize = 40;

/// What a byte says about the text there: 0 an ASCII separator, 1 an ASCII letter or
/// digit, 2 a byte of a non-ASCII character (decoded to decide).
const CLASS: [u8; 256] = {
    let mut t = [2u8; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = (b as u8).is_ascii_alphanumeric() as u8;
        b += 1;
    }
    t
};

#[derive(Clone, Default)]
pub(crate) struct Words {
    token: Token,
}

pub(crate) struct WordStream<'a> {
    text: &'a str,
    at: usize,
    token: &'a mut Token,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            at: 0,
            token: &mut self.token,
        }
    }
}

/// Whether the non-ASCII character at `at` (a char boundary) is part of a word, and
/// its length.
fn non_ascii(text: &str, at: usize) -> (bool, usize) {
    match text[at..].chars().next() {
        Some(c) => (c.is_alphanumeric(), c.len_utf8()),
        None => (false, 1),
    }
}

impl WordStream<'_> {
    /// The next word after `self.at`: (start, end, all ASCII).
    fn next_word(&mut self) -> Option<(usize, usize, bool)> {
        let text = self.text;
        let b = text.as_bytes();
        let mut i = self.at;
        let start = loop {
            while i < b.len() && CLASS[b[i] as usize] == 0 {
                i += 1;
            }
            if i >= b.len() {
                self.at = i;
                return None;
            }
            if CLASS[b[i] as usize] == 1 {
                break i;
            }
            let (word, n) = non_ascii(text, i);
            if word {
                break i;
            }
            i += n;
        };
        let mut ascii = true;
        loop {
            while i < b.len() && CLASS[b[i] as usize] == 1 {
                i += 1;
            }
            if i >= b.len() || CLASS[b[i] as usize] == 0 {
                break;
            }
            let (word, n) = non_ascii(text, i);
            if !word {
                break;
            }
            ascii = false;
            i += n;
        }
        self.at = i;
        Some((start, i, ascii))
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        while let Some((start, end, ascii)) = self.next_word() {
            // Every word takes a position, dropped ones too (as in tantivy's chain).
            self.token.position = self.token.position.wrapping_add(1);
            if end - start >= TOO_LONG {
                continue;
            }
            let word = &self.text[start..end];
            self.token.offset_from = start;
            self.token.offset_to = end;
            self.token.text.clear();
            if ascii {
                self.token.text.push_str(word);
                self.token.text.make_ascii_lowercase();
            } else {
                // As tantivy's LowerCaser: char by char, no final-sigma rule.
                for c in word.chars() {
                    self.token.text.extend(c.to_lowercase());
                }
            }
            return true;
        }
        self.token.text.clear();
        false
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};

    use super::*;

    fn tokens(mut a: TextAnalyzer, text: &str) -> Vec<(String, usize, usize, usize)> {
        let mut out = Vec::new();
        let mut s = a.token_stream(text);
        while s.advance() {
            let t = s.token();
            out.push((t.text.clone(), t.offset_from, t.offset_to, t.position));
        }
        out
    }

    fn tantivys() -> TextAnalyzer {
        TokenizerManager::default()
            .get("default")
            .expect("tantivy's default analyzer")
    }

    #[test]
    fn the_same_words_as_tantivys_default_analyzer() {
        let long = "x".repeat(39);
        let cases = [
            String::new(),
            " ".into(),
            "<38>Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
                .into(),
            "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6".into(),
            "ÄÖÜ straße İstanbul ΣΑΣ Ωmega naïve café 東京タワー ١٢٣ 𝔘𝔫𝔦 ǅemal".into(),
            "e\u{301}cole x\u{200b}y a\u{0}b tab\there\r\nnew — dash…".into(),
            "emoji 🦀rust🦀 ß ẞ ﬁ Ⅻ ⅻ ½ ²".into(),
            format!("{long} {long}y {long}yz é{long} {long}é"),
            "é".repeat(20),
            "é".repeat(19),
            "trailing word".into(),
            "ends-in-é".into(),
        ];
        for text in &cases {
            assert_eq!(
                tokens(TextAnalyzer::from(Words::default()), text),
                tokens(tantivys(), text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_same_words_over_every_char_class_mix() {
        // Every short string over a few characters of each class.
        let alphabet = [
            'a', 'Z', '9', ' ', '.', 'é', 'Σ', '東', '١', '\u{301}', '🦀', 'İ',
        ];
        let mut text = String::new();
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    text.clear();
                    text.extend([a, b, c, b, a]);
                    assert_eq!(
                        tokens(TextAnalyzer::from(Words::default()), &text),
                        tokens(tantivys(), &text),
                        "{text:?}"
                    );
                }
            }
        }
    }
}
