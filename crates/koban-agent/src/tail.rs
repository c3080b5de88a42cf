//! Reading what was appended to a log file since a position: whole lines only (a line
//! still being written waits for its newline), a truncated file starts over, a rotated
//! one (a new inode at the path) is read from its start.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;

use crate::spool::Position;

/// Lines longer than this are cut (the rest of the line is skipped, not lost silently:
/// the cut line ends with a marker).
const MAX_LINE: usize = 64 * 1024;

/// Up to `max` new lines of `path` after `at`, each with the position after it.
pub fn read_new(path: &str, at: Position, max: usize) -> Result<Vec<(String, Position)>, String> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{path}: {e}")),
    };
    let meta = f.metadata().map_err(|e| format!("{path}: {e}"))?;
    let inode = meta.ino();
    let mut offset = if inode != at.inode || meta.len() < at.offset {
        0
    } else {
        at.offset
    };
    if offset == meta.len() {
        return Ok(Vec::new());
    }
    let mut reader = BufReader::new(f);
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while out.len() < max {
        buf.clear();
        let got = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("{path}: {e}"))?;
        if got == 0 || buf.last() != Some(&b'\n') {
            break; // nothing more, or a line not finished yet
        }
        offset += got as u64;
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        if buf.is_empty() {
            continue;
        }
        let mut line = String::from_utf8_lossy(&buf).into_owned();
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" [koban-agent: line cut at 64 KiB]");
        }
        out.push((line, Position { inode, offset }));
    }
    Ok(out)
}
