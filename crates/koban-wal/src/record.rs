//! One accepted record and its on-disk frame.
//!
//! A frame is `len: u32 LE | crc: u32 LE | body` where `crc` is CRC32 over the length
//! bytes and the body, so a damaged length is caught like a damaged body. The body is
//! `seq u64 | kind u8 | received_ms i64 | tenant | source | remote` (each a u16 length and
//! UTF-8 bytes) `| payload` (the rest).

use std::net::SocketAddr;

/// What a payload is, so the pipeline knows how to parse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// One syslog message (one frame: newline- or octet-counted), RFC 3164 or 5424.
    Syslog,
    /// One JSON document (an Elasticsearch `_bulk` source line).
    Json,
    /// One line of an NDJSON upload.
    NdjsonLine,
    /// One Splunk HEC event object (`{"event": ..., "time": ...}`).
    HecEvent,
    /// One line posted to HEC's raw endpoint.
    HecRaw,
    /// Text of unknown shape.
    RawText,
    /// A whole EVTX file; the pipeline splits it into events.
    Evtx,
    /// One row of a Zeek TSV log. The payload is the `#path` / `#fields` directives
    /// the row came after, one per line, then the row as the last line: the column
    /// names travel with the row, so parsing needs no state and survives a replay.
    ZeekTsvRow,
}

impl RecordKind {
    pub fn code(self) -> u8 {
        match self {
            RecordKind::Syslog => 1,
            RecordKind::Json => 2,
            RecordKind::NdjsonLine => 3,
            RecordKind::HecEvent => 4,
            RecordKind::HecRaw => 5,
            RecordKind::RawText => 6,
            RecordKind::Evtx => 7,
            RecordKind::ZeekTsvRow => 8,
        }
    }

    pub fn from_code(code: u8) -> Option<RecordKind> {
        Some(match code {
            1 => RecordKind::Syslog,
            2 => RecordKind::Json,
            3 => RecordKind::NdjsonLine,
            4 => RecordKind::HecEvent,
            5 => RecordKind::HecRaw,
            6 => RecordKind::RawText,
            7 => RecordKind::Evtx,
            8 => RecordKind::ZeekTsvRow,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Syslog => "syslog",
            RecordKind::Json => "json",
            RecordKind::NdjsonLine => "ndjson",
            RecordKind::HecEvent => "hec_event",
            RecordKind::HecRaw => "hec_raw",
            RecordKind::RawText => "raw",
            RecordKind::Evtx => "evtx",
            RecordKind::ZeekTsvRow => "zeek_tsv",
        }
    }
}

/// A record as the intake accepted it, before it has a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub tenant: String,
    /// The configured source name (token's source, syslog listener name).
    pub source: String,
    pub kind: RecordKind,
    /// When the server received it, UTC milliseconds.
    pub received_ms: i64,
    pub remote: Option<SocketAddr>,
    pub payload: Vec<u8>,
}

/// A record read back from the log, with the sequence number it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    pub seq: u64,
    pub record: Record,
}

/// Frame header: length and CRC.
pub(crate) const HEADER: usize = 8;
/// Body bytes before the strings: seq, kind, received_ms.
const FIXED: usize = 8 + 1 + 8;

impl Record {
    /// Bytes this record takes on disk.
    pub fn frame_len(&self) -> usize {
        HEADER + FIXED + 6 + self.tenant.len() + self.source.len() + 64 + self.payload.len()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names are short; a longer one is cut at a char boundary rather than failing an append.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// Appends the frame of `record` with `seq` to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, seq: u64, record: &Record) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(record.kind.code());
    out.extend_from_slice(&record.received_ms.to_le_bytes());
    put_str(out, &record.tenant);
    put_str(out, &record.source);
    let remote = record.remote.map(|r| r.to_string()).unwrap_or_default();
    put_str(out, &remote);
    out.extend_from_slice(&record.payload);
    let len = (out.len() - start - HEADER) as u32;
    let len_bytes = len.to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len_bytes);
    h.update(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&h.finalize().to_le_bytes());
}

/// The result of looking at the bytes where a frame should start.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// A whole frame with a good checksum: its body and total length.
    Whole {
        body: &'a [u8],
        len: usize,
    },
    /// Fewer bytes than the frame needs: a write in progress or torn by a crash.
    Partial,
    Corrupt(String),
}

pub(crate) fn frame(buf: &[u8], max_body: usize) -> Frame<'_> {
    if buf.len() < HEADER {
        return Frame::Partial;
    }
    let len_bytes: [u8; 4] = [buf[0], buf[1], buf[2], buf[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len < FIXED + 6 || len > max_body {
        return Frame::Corrupt(format!("frame length {len} out of range"));
    }
    if buf.len() < HEADER + len {
        return Frame::Partial;
    }
    let body = &buf[HEADER..HEADER + len];
    let mut h = crc32fast::Hasher::new();
    h.update(&len_bytes);
    h.update(body);
    if h.finalize() != crc {
        return Frame::Corrupt("checksum mismatch".into());
    }
    Frame::Whole {
        body,
        len: HEADER + len,
    }
}

/// Reads the length of a frame from its header, if the header is there.
pub(crate) fn header_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= HEADER).then(|| u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize)
}

/// The sequence number of a body that passed its checksum.
pub(crate) fn body_seq(body: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&body[..8]);
    u64::from_le_bytes(b)
}

fn take_str<'a>(body: &'a [u8], pos: &mut usize) -> Result<&'a str, String> {
    if body.len() < *pos + 2 {
        return Err("string length past the end".into());
    }
    let n = u16::from_le_bytes([body[*pos], body[*pos + 1]]) as usize;
    *pos += 2;
    if body.len() < *pos + n {
        return Err("string past the end".into());
    }
    let s = std::str::from_utf8(&body[*pos..*pos + n]).map_err(|_| "string is not UTF-8")?;
    *pos += n;
    Ok(s)
}

/// Decodes a body that passed its checksum. A failure here means a writer of another
/// version or a checksum collision; either way the caller reports corruption.
pub(crate) fn decode(body: &[u8]) -> Result<WalRecord, String> {
    if body.len() < FIXED {
        return Err("body too short".into());
    }
    let seq = body_seq(body);
    let kind = RecordKind::from_code(body[8]).ok_or_else(|| format!("unknown kind {}", body[8]))?;
    let mut ms = [0u8; 8];
    ms.copy_from_slice(&body[9..17]);
    let mut pos = FIXED;
    let tenant = take_str(body, &mut pos)?.to_owned();
    let source = take_str(body, &mut pos)?.to_owned();
    let remote = take_str(body, &mut pos)?;
    let remote = if remote.is_empty() {
        None
    } else {
        Some(remote.parse().map_err(|_| "bad remote address")?)
    };
    Ok(WalRecord {
        seq,
        record: Record {
            tenant,
            source,
            kind,
            received_ms: i64::from_le_bytes(ms),
            remote,
            payload: body[pos..].to_vec(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Record {
            tenant: "acme".into(),
            source: "fw".into(),
            kind: RecordKind::Syslog,
            received_ms: 1_700_000_000_123,
            remote: Some("10.0.0.1:514".parse().unwrap()),
            payload: b"<13>hello\nworld".to_vec(),
        };
        let mut buf = Vec::new();
        encode(&mut buf, 42, &r);
        let Frame::Whole { body, len } = frame(&buf, 1 << 20) else {
            panic!("frame")
        };
        assert_eq!(len, buf.len());
        let back = decode(body).unwrap();
        assert_eq!(back.seq, 42);
        assert_eq!(back.record, r);
        buf[12] ^= 1;
        assert!(matches!(frame(&buf, 1 << 20), Frame::Corrupt(_)));
        assert!(matches!(
            frame(&buf[..buf.len() - 1], 1 << 20),
            Frame::Partial
        ));
    }
}
