//! Syslog stream framing (RFC 6587), detected per frame: a frame that starts with a
//! digit run and a space is octet-counted (`LEN SP MSG`, MSG may hold newlines);
//! anything else runs to the next LF (a trailing CR is dropped). Pure and fuzzed.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("syslog frame of {size} bytes is over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
}

pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    max_frame: usize,
}

/// Octet counts have at most this many digits (a count past the frame limit is refused).
const MAX_DIGITS: usize = 10;

impl Framer {
    pub fn new(max_frame: usize) -> Framer {
        Framer {
            buf: Vec::with_capacity(64 << 10),
            start: 0,
            max_frame,
        }
    }

    /// Bytes buffered but not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > (1 << 20) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        loop {
            let rest = &self.buf[self.start..];
            // Blank lines between frames carry nothing.
            let skip = rest
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
            self.start += skip;
            let rest = &self.buf[self.start..];
            if rest.is_empty() {
                return Ok(None);
            }
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 && digits <= MAX_DIGITS && rest.len() > digits && rest[digits] == b' ' {
                let len: usize = std::str::from_utf8(&rest[..digits])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(usize::MAX);
                if len > self.max_frame {
                    return Err(FrameError::TooLarge {
                        size: len,
                        limit: self.max_frame,
                    });
                }
                let need = digits + 1 + len;
                if rest.len() < need {
                    return Ok(None);
                }
                let s = self.start + digits + 1;
                self.start += need;
                if len == 0 {
                    continue;
                }
                return Ok(Some(&self.buf[s..s + len]));
            }
            if digits == rest.len() && digits <= MAX_DIGITS {
                // Only digits so far: could still become an octet count.
                return Ok(None);
            }
            match memchr_nl(rest) {
                Some(i) => {
                    let s = self.start;
                    self.start += i + 1;
                    let mut end = s + i;
                    if end > s && self.buf[end - 1] == b'\r' {
                        end -= 1;
                    }
                    if end - s > self.max_frame {
                        return Err(FrameError::TooLarge {
                            size: end - s,
                            limit: self.max_frame,
                        });
                    }
                    return Ok(Some(&self.buf[s..end]));
                }
                None if rest.len() > self.max_frame => {
                    return Err(FrameError::TooLarge {
                        size: rest.len(),
                        limit: self.max_frame,
                    })
                }
                None => return Ok(None),
            }
        }
    }

    /// At end of stream: what is left, as a last newline-less frame.
    pub fn finish(&mut self) -> Option<&[u8]> {
        let rest = &self.buf[self.start..];
        let trimmed = rest.iter().rposition(|&b| b != b'\n' && b != b'\r')? + 1;
        let s = self.start;
        self.start = self.buf.len();
        Some(&self.buf[s..s + trimmed])
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]], max: usize) -> Result<Vec<String>, FrameError> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            while let Some(fr) = f.next_frame()? {
                out.push(String::from_utf8_lossy(fr).into_owned());
            }
        }
        if let Some(fr) = f.finish() {
            out.push(String::from_utf8_lossy(fr).into_owned());
        }
        Ok(out)
    }

    #[test]
    fn newline_and_octet_counted_mixed_and_split() {
        let got = frames(
            &[
                b"<13>one\r\n9 <13>two\nx",
                b"yz\n1",
                b"9 <13>1 multi\nline ok\n<13>last",
            ],
            1024,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "<13>one",
                "<13>two\nx",
                "yz",
                "<13>1 multi\nline ok",
                "<13>last"
            ]
        );
    }

    #[test]
    fn digits_without_space_are_a_plain_line() {
        assert_eq!(
            frames(&[b"2025-01-01 host msg\n"], 1024).unwrap(),
            ["2025-01-01 host msg"]
        );
    }

    #[test]
    fn too_large_frames_are_refused() {
        assert_eq!(
            frames(&[b"999999 <13>"], 1024),
            Err(FrameError::TooLarge {
                size: 999_999,
                limit: 1024
            })
        );
        assert!(frames(&[&[b'a'; 2000]], 1024).is_err());
    }
}
