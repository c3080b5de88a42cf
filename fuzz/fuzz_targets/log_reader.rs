//! Arbitrary bytes as a log file. The first byte picks the file name (so both the
//! extension-based and the content-based format detection are reached) and whether
//! an EVTX body is zero-padded to whole 64 KiB chunks; the rest is the file. Reading
//! must not panic, whatever the file holds. The bytes are also parsed as text lines.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use koban_parse::{parse_line, Reader};
use libfuzzer_sys::fuzz_target;

const EXTENSIONS: [&str; 5] = ["json", "evtx", "log", "zip", "gz"];
/// File stems the reader uses as hints (Zeek logs are named after their kind).
const STEMS: [&str; 4] = ["input", "dns", "conn", "auth"];
const EVTX_HEADER: usize = 4096;
const EVTX_CHUNK: usize = 65536;

fn reader() -> &'static Reader {
    static READER: OnceLock<Reader> = OnceLock::new();
    READER.get_or_init(|| Reader::new().expect("embedded Windows map loads"))
}

/// One scratch directory per fuzzing process; its files are overwritten each run.
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("koban-fuzz-log-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let ext = EXTENSIONS[(selector & 0x0f) as usize % EXTENSIONS.len()];
    let stem = STEMS[((selector >> 4) & 0x07) as usize % STEMS.len()];
    let pad_evtx = selector & 0x80 != 0 && ext == "evtx";
    let path = scratch_dir().join(format!("{stem}.{ext}"));
    let mut bytes = body.to_vec();
    if pad_evtx && bytes.len() > EVTX_HEADER {
        // Real EVTX files are a 4 KiB header and whole 64 KiB chunks, bigger than the
        // fuzzer's input limit; seeds keep only the used part of their one chunk.
        let chunks = (bytes.len() - EVTX_HEADER).div_ceil(EVTX_CHUNK);
        bytes.resize(EVTX_HEADER + chunks * EVTX_CHUNK, 0);
    }
    std::fs::write(&path, &bytes).expect("write scratch file");
    let mut records = 0usize;
    reader().read_file(
        &path,
        &mut |r| {
            records += 1;
            let _ = r.event.len();
        },
        &mut |e| {
            let _ = e.to_string();
        },
    );
    let _ = records;
    let text = String::from_utf8_lossy(body);
    for line in text.lines().take(1000) {
        let _ = parse_line(line);
    }
    let _ = parse_line(&text);
});
