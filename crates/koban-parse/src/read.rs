//! Reading files: pick the format, stream its records, normalise each one.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use evtx::{EvtxParser, ParserSettings};
use koban_event::Event;
use serde_json::Value as Json;

use crate::sources::{self, SourceHint};
use crate::text;
use crate::windows::{self, WindowsMap};
use crate::{MapError, ReadError};

/// Records larger than this are reported and skipped rather than parsed: no log
/// record is legitimately this large, and parsing one would hold it all in memory.
pub const DEFAULT_MAX_RECORD: usize = 16 * 1024 * 1024;

/// One event read from a file.
#[derive(Debug)]
pub struct Record {
    pub event: Event,
    /// 0-based index: the line for line-oriented files, else the record ordinal.
    pub index: u64,
    /// The archive member it came from, for records inside zip files.
    pub entry: Option<Arc<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Evtx,
    Zip,
    /// gzip: a compressed tar archive or a single compressed log.
    Gzip,
    Json,
    Text,
}

/// Reads files of any supported format into events.
#[derive(Debug)]
pub struct Reader {
    windows: WindowsMap,
    max_record: usize,
}

struct Ctx<'a> {
    path: &'a Path,
    entry: Option<Arc<str>>,
    hint: SourceHint,
    sink: &'a mut dyn FnMut(Record),
    errors: &'a mut dyn FnMut(ReadError),
}

impl Ctx<'_> {
    fn record_error(&mut self, record: u64, message: String) {
        (self.errors)(ReadError::Record {
            path: self.path.to_path_buf(),
            entry: self.entry.as_deref().map(str::to_owned),
            record,
            message,
        });
    }

    fn emit(&mut self, event: Event, index: u64) {
        (self.sink)(Record {
            event,
            index,
            entry: self.entry.clone(),
        });
    }
}

impl Reader {
    pub fn new() -> Result<Reader, MapError> {
        Ok(Reader {
            windows: WindowsMap::embedded()?,
            max_record: DEFAULT_MAX_RECORD,
        })
    }

    pub fn with_max_record(mut self, bytes: usize) -> Reader {
        self.max_record = bytes.max(1024);
        self
    }

    /// Normalises one JSON record (any supported shape) into an event.
    pub fn normalise_json(&self, value: Json, hint: &SourceHint) -> Option<Event> {
        if !value.is_object() {
            return None;
        }
        let mut fields = Vec::with_capacity(64);
        crate::flatten::flatten_into("", value, &mut fields);
        Some(self.normalise_fields(fields, hint))
    }

    /// Normalises a record already flattened into dotted field names.
    pub fn normalise_fields(
        &self,
        fields: Vec<(String, koban_event::Value)>,
        hint: &SourceHint,
    ) -> Event {
        if windows::is_windows(&fields) {
            windows::normalise(fields, &self.windows)
        } else {
            sources::normalise(fields, hint)
        }
    }

    /// Reads one file, calling `sink` for every event and `errors` for every problem.
    pub fn read_file(
        &self,
        path: &Path,
        sink: &mut dyn FnMut(Record),
        errors: &mut dyn FnMut(ReadError),
    ) {
        let io = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) => return errors(io(e)),
        };
        let mut head = [0u8; 4096];
        let n = match read_up_to(&mut file, &mut head) {
            Ok(n) => n,
            Err(e) => return errors(io(e)),
        };
        let format = match sniff(path, &head[..n]) {
            Some(f) => f,
            None => {
                return errors(ReadError::Unsupported {
                    path: path.to_path_buf(),
                    message: "binary file of no supported format (EVTX, zip, JSON, text); skipped"
                        .into(),
                })
            }
        };
        let mut ctx = Ctx {
            path,
            entry: None,
            hint: SourceHint::from_path(path),
            sink,
            errors,
        };
        match format {
            Format::Evtx => {
                let size = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
                drop(file);
                match EvtxParser::from_path(path) {
                    Ok(p) => self.read_evtx(p, &mut ctx, size),
                    Err(e) => (ctx.errors)(ReadError::Evtx {
                        path: path.to_path_buf(),
                        entry: None,
                        message: e.to_string(),
                    }),
                }
            }
            Format::Zip => self.read_zip(file, &mut ctx),
            Format::Gzip => {
                let reader = std::io::Cursor::new(head[..n].to_vec()).chain(file);
                self.read_gzip(reader, &mut ctx);
            }
            Format::Json | Format::Text => {
                let reader = BufReader::with_capacity(
                    256 * 1024,
                    std::io::Cursor::new(head[..n].to_vec()).chain(file),
                );
                self.read_stream(reader, format, &mut ctx);
            }
        }
    }

    /// Reads an EVTX file held in memory (an upload), named `name` in errors.
    pub fn read_evtx_bytes(
        &self,
        name: &Path,
        bytes: Vec<u8>,
        sink: &mut dyn FnMut(Record),
        errors: &mut dyn FnMut(ReadError),
    ) {
        let size = bytes.len() as u64;
        let mut ctx = Ctx {
            path: name,
            entry: None,
            hint: SourceHint::from_path(name),
            sink,
            errors,
        };
        match EvtxParser::from_buffer(bytes) {
            Ok(p) => self.read_evtx(p, &mut ctx, size),
            Err(e) => (ctx.errors)(ReadError::Evtx {
                path: name.to_path_buf(),
                entry: None,
                message: e.to_string(),
            }),
        }
    }

    fn read_evtx<T: Read + std::io::Seek>(
        &self,
        parser: EvtxParser<T>,
        ctx: &mut Ctx<'_>,
        size: u64,
    ) {
        let mut parser = parser.with_configuration(ParserSettings::new().num_threads(1));
        // Chunks past the end of a cut file vanish silently in the parser: say so.
        let expected = 4096 + u64::from(parser.header().chunk_count) * 65536;
        if size < expected {
            (ctx.errors)(ReadError::Evtx {
                path: ctx.path.to_path_buf(),
                entry: ctx.entry.as_deref().map(str::to_owned),
                message: format!(
                    "file is truncated: {size} bytes where its header announces {} chunks ({expected} bytes); records in the missing part are lost",
                    parser.header().chunk_count
                ),
            });
        }
        for (i, record) in parser.records_json_value().enumerate() {
            match record {
                Ok(r) => {
                    if let Some(event) = self.normalise_json(r.data, &ctx.hint) {
                        ctx.emit(event, i as u64);
                    }
                }
                Err(e) => ctx.record_error(i as u64, format!("broken EVTX record: {e}")),
            }
        }
    }

    fn read_zip(&self, file: File, ctx: &mut Ctx<'_>) {
        let mut archive = match zip::ZipArchive::new(BufReader::new(file)) {
            Ok(a) => a,
            Err(e) => {
                return (ctx.errors)(ReadError::Zip {
                    path: ctx.path.to_path_buf(),
                    message: e.to_string(),
                })
            }
        };
        for i in 0..archive.len() {
            let mut member = match archive.by_index(i) {
                Ok(m) => m,
                Err(e) => {
                    (ctx.errors)(ReadError::Zip {
                        path: ctx.path.to_path_buf(),
                        message: format!("member {i}: {e}"),
                    });
                    continue;
                }
            };
            // macOS archive metadata (`__MACOSX/._name`) is not a log.
            if member.is_dir()
                || member.name().starts_with("__MACOSX/")
                || Path::new(member.name())
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("._"))
            {
                continue;
            }
            let name: Arc<str> = Arc::from(member.name());
            ctx.entry = Some(name.clone());
            ctx.hint = SourceHint::from_path(Path::new(&*name));
            let mut head = [0u8; 4096];
            let n = match read_up_to(&mut member, &mut head) {
                Ok(n) => n,
                Err(e) => {
                    ctx.record_error(0, format!("cannot read archive member: {e}"));
                    continue;
                }
            };
            match sniff(Path::new(&*name), &head[..n]) {
                Some(Format::Evtx) => {
                    let mut buf = head[..n].to_vec();
                    if let Err(e) = member.read_to_end(&mut buf) {
                        ctx.record_error(0, format!("cannot read archive member: {e}"));
                        continue;
                    }
                    let size = buf.len() as u64;
                    match EvtxParser::from_buffer(buf) {
                        Ok(p) => self.read_evtx(p, ctx, size),
                        Err(e) => (ctx.errors)(ReadError::Evtx {
                            path: ctx.path.to_path_buf(),
                            entry: Some(name.to_string()),
                            message: e.to_string(),
                        }),
                    }
                }
                Some(f @ (Format::Json | Format::Text)) => {
                    let reader = BufReader::with_capacity(
                        256 * 1024,
                        std::io::Cursor::new(head[..n].to_vec()).chain(member),
                    );
                    self.read_stream(reader, f, ctx);
                }
                Some(Format::Zip | Format::Gzip) | None => (ctx.errors)(ReadError::Unsupported {
                    path: ctx.path.to_path_buf(),
                    message: format!(
                        "archive member {name}: nested archives and binary files are not read"
                    ),
                }),
            }
        }
        ctx.entry = None;
    }

    /// A gzip stream: a tar archive of logs (`.tar.gz`) or one compressed log. A
    /// truncated stream keeps every record before the damage and reports the rest.
    fn read_gzip<R: Read>(&self, raw: R, ctx: &mut Ctx<'_>) {
        let mut decoded =
            BufReader::with_capacity(256 * 1024, flate2::read::MultiGzDecoder::new(raw));
        let is_tar = match decoded.fill_buf() {
            Ok(buf) => buf.len() > 262 && &buf[257..262] == b"ustar",
            Err(e) => {
                ctx.record_error(0, format!("not a readable gzip stream: {e}"));
                return;
            }
        };
        if !is_tar {
            let format = match decoded.fill_buf() {
                Ok(buf) => sniff(Path::new(""), buf).unwrap_or(Format::Text),
                Err(_) => Format::Text,
            };
            let format = if format == Format::Json {
                Format::Json
            } else {
                Format::Text
            };
            self.read_stream(decoded, format, ctx);
            return;
        }
        let mut archive = tar::Archive::new(decoded);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => {
                ctx.record_error(0, format!("not a readable tar archive: {e}"));
                return;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    ctx.record_error(0, format!("tar archive damaged, rest skipped: {e}"));
                    break;
                }
            };
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name: Arc<str> = Arc::from(
                entry
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
            ctx.entry = Some(name);
            let mut member = BufReader::with_capacity(256 * 1024, entry);
            let format = match member.fill_buf() {
                Ok(buf) => sniff(Path::new(""), buf),
                Err(_) => Some(Format::Text),
            };
            match format {
                Some(f @ (Format::Json | Format::Text)) => self.read_stream(member, f, ctx),
                _ => ctx.record_error(0, "archive member of an unsupported kind (only JSON and text are read inside tar)".into()),
            }
        }
        ctx.entry = None;
    }

    /// Line-oriented reading: NDJSON, or text lines. A JSON file whose first record
    /// spans lines (pretty-printed, or an array) is read as a whole document instead.
    fn read_stream<R: BufRead>(&self, mut reader: R, format: Format, ctx: &mut Ctx<'_>) {
        let mut line = Vec::new();
        let mut index: u64 = 0;
        let mut zeek = crate::zeek::ZeekTsv::default();
        loop {
            line.clear();
            let (read, truncated) = match read_line_limited(&mut reader, &mut line, self.max_record)
            {
                Ok(x) => x,
                Err(e) => {
                    ctx.record_error(index, format!("read failed: {e}"));
                    return;
                }
            };
            if read == 0 {
                return;
            }
            if truncated {
                ctx.record_error(
                    index,
                    format!(
                        "record is {read} bytes, over the {} MiB limit for one record; skipped",
                        self.max_record / (1024 * 1024)
                    ),
                );
                index += 1;
                continue;
            }
            let trimmed = trim_ascii(&line);
            if trimmed.is_empty() {
                index += 1;
                continue;
            }
            if format == Format::Json && (trimmed[0] == b'{' || trimmed[0] == b'[') {
                // Objects go straight to fields; a line holding an array is a batch.
                let parsed = if trimmed[0] == b'{' {
                    crate::flatten::flat_fields(trimmed).map(|f| {
                        let event = self.normalise_fields(f, &ctx.hint);
                        ctx.emit(event, index);
                    })
                } else {
                    serde_json::from_slice::<Json>(trimmed).map(|v| {
                        let items = match v {
                            Json::Array(items) => items,
                            v => vec![v],
                        };
                        for item in items {
                            if let Some(event) = self.normalise_json(item, &ctx.hint) {
                                ctx.emit(event, index);
                            }
                        }
                    })
                };
                match parsed {
                    Ok(()) => {}
                    Err(e) if e.is_eof() && index == 0 => {
                        // The first record spans lines: a pretty-printed document.
                        let mut rest = std::mem::take(&mut line);
                        if let Err(e) = reader.read_to_end(&mut rest) {
                            ctx.record_error(index, format!("read failed: {e}"));
                            return;
                        }
                        self.read_document(&rest, ctx);
                        return;
                    }
                    Err(e) => ctx.record_error(index, json_error(&e, trimmed)),
                }
            } else if zeek.active() || (index == 0 && trimmed.starts_with(b"#separator")) {
                // Zeek's TSV logs: `#` directives name the fields, rows follow.
                let row = String::from_utf8_lossy(trimmed);
                if let Some(fields) = zeek.line(&row) {
                    ctx.emit(sources::normalise(fields, &ctx.hint), index);
                }
            } else {
                match std::str::from_utf8(trimmed) {
                    Ok(s) => ctx.emit(text::parse_line(s), index),
                    Err(e) => {
                        // Keep the line (lossily) so nothing is dropped, and say so.
                        ctx.record_error(
                            index,
                            format!(
                                "line is not valid UTF-8 (at byte {}); read with replacement characters",
                                e.valid_up_to()
                            ),
                        );
                        ctx.emit(text::parse_line(&String::from_utf8_lossy(trimmed)), index);
                    }
                }
            }
            index += 1;
        }
    }

    /// A whole JSON document: one value, an array, or several concatenated values.
    /// After a broken value, reading resumes at the next line that opens an object.
    fn read_document(&self, bytes: &[u8], ctx: &mut Ctx<'_>) {
        let mut offset = 0usize;
        let mut ordinal: u64 = 0;
        while offset < bytes.len() {
            let mut stream =
                serde_json::Deserializer::from_slice(&bytes[offset..]).into_iter::<Json>();
            let mut failed_at = None;
            for item in stream.by_ref() {
                match item {
                    Ok(Json::Array(items)) => {
                        for v in items {
                            if let Some(e) = self.normalise_json(v, &ctx.hint) {
                                ctx.emit(e, ordinal);
                            }
                            ordinal += 1;
                        }
                    }
                    Ok(v) => {
                        if let Some(e) = self.normalise_json(v, &ctx.hint) {
                            ctx.emit(e, ordinal);
                        }
                        ordinal += 1;
                    }
                    Err(e) => {
                        ctx.record_error(
                            ordinal,
                            format!(
                                "invalid JSON at line {}: {e}",
                                line_at(bytes, offset) + e.line() - 1
                            ),
                        );
                        ordinal += 1;
                        failed_at = Some(offset + stream.byte_offset());
                        break;
                    }
                }
            }
            match failed_at {
                None => return,
                Some(at) => {
                    // Resume at the next object that starts a line.
                    match memchr::memmem::find(&bytes[at.min(bytes.len())..], b"\n{") {
                        Some(next) => offset = at + next + 1,
                        None => return,
                    }
                    if offset <= at {
                        return;
                    }
                }
            }
        }
    }
}

fn line_at(bytes: &[u8], offset: usize) -> usize {
    memchr::memchr_iter(b'\n', &bytes[..offset.min(bytes.len())]).count() + 1
}

fn json_error(e: &serde_json::Error, line: &[u8]) -> String {
    if std::str::from_utf8(line).is_err() {
        return format!("invalid JSON: not valid UTF-8 ({e})");
    }
    format!("invalid JSON: {e}")
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads one line into `buf`, keeping at most `limit` bytes. Returns the bytes the
/// line really had and whether it was cut.
fn read_line_limited<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<(usize, bool)> {
    let mut total = 0usize;
    let mut truncated = false;
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((total, truncated));
        }
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let len = chunk.len();
        if !truncated {
            if buf.len() + len > limit {
                truncated = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        total += len;
        r.consume(len);
        if done {
            return Ok((total, truncated));
        }
    }
}

/// Decides the format from magic bytes, then the extension, then the content.
fn sniff(path: &Path, head: &[u8]) -> Option<Format> {
    if head.starts_with(b"ElfFile\0") {
        return Some(Format::Evtx);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(Format::Zip);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Some(Format::Gzip);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ext == "evtx" {
        // Named EVTX but without the signature: let the EVTX parser explain.
        return Some(Format::Evtx);
    }
    let first = head.iter().find(|c| !c.is_ascii_whitespace());
    if matches!(ext.as_str(), "json" | "jsonl" | "ndjson")
        || matches!(first, Some(b'{') | Some(b'['))
    {
        return Some(Format::Json);
    }
    if head.contains(&0) {
        return None;
    }
    Some(Format::Text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_bytes(name: &str, bytes: &[u8]) -> (Vec<Record>, Vec<String>) {
        let dir =
            std::env::temp_dir().join(format!("koban-parse-test-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        let mut f = File::create(&path).expect("temp file");
        f.write_all(bytes).expect("write temp file");
        drop(f);
        let reader = Reader::new().expect("embedded map").with_max_record(4096);
        let mut records = Vec::new();
        let mut errors = Vec::new();
        reader.read_file(&path, &mut |r| records.push(r), &mut |e| {
            errors.push(e.to_string())
        });
        let _ = std::fs::remove_dir_all(&dir);
        (records, errors)
    }

    #[test]
    fn ndjson_with_a_broken_line_goes_on() {
        let (r, e) = read_bytes("a.json", b"{\"a\":1}\n{broken\n\n{\"a\":2}\n");
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].index, 3);
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("record 1"), "{e:?}");
    }

    #[test]
    fn pretty_printed_concatenated_documents() {
        let (r, e) = read_bytes("p.json", b"{\n \"a\": 1\n}\n{\n \"a\": 2\n}\n");
        assert_eq!(r.len(), 2, "{e:?}");
        let (r, e) = read_bytes("q.json", b"[\n{\"a\": 1},\n{\"a\": 2}\n]\n");
        assert_eq!(r.len(), 2, "{e:?}");
        let (r, e) = read_bytes(
            "r.json",
            b"{\n \"a\": 1\n}\n{\n \"a\": \n}\n{\n \"a\": 3\n}\n",
        );
        assert_eq!(r.len(), 2, "{e:?}");
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn oversized_record_is_reported_not_parsed() {
        let mut big = b"{\"a\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'x', 10_000));
        big.extend_from_slice(b"\"}\n{\"a\":1}\n");
        let (r, e) = read_bytes("big.json", &big);
        assert_eq!(r.len(), 1);
        assert!(e[0].contains("over the"), "{e:?}");
    }

    #[test]
    fn non_utf8_text_line_is_kept_and_reported() {
        let (r, e) = read_bytes(
            "s.log",
            b"Dec 10 06:55:46 host sshd[1]: bad \xff\xfe byte\nplain\n",
        );
        assert_eq!(r.len(), 2);
        assert!(e[0].contains("not valid UTF-8"), "{e:?}");
    }

    #[test]
    fn truncated_evtx_is_an_error_not_a_panic() {
        let (r, e) = read_bytes("t.evtx", b"ElfFile\0\x00\x00");
        assert!(r.is_empty());
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn binary_garbage_is_refused() {
        let (r, e) = read_bytes("g.bin", &[0u8, 1, 2, 3, 0, 0, 7]);
        assert!(r.is_empty());
        assert!(e[0].contains("binary"), "{e:?}");
    }
}
