//! Segment files: naming, the header, and scanning the bytes of one segment.
//!
//! A segment is `{first_seq:020}.wal`: a 16-byte header (`KOBANWAL`, format version,
//! reserved) followed by frames whose sequence numbers run on from `first_seq` without
//! gaps. Only the last segment is ever written to; the others are sealed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::WalError;
use crate::record::{body_seq, decode, frame, Frame, WalRecord};

pub(crate) const MAGIC: &[u8; 8] = b"KOBANWAL";
pub(crate) const VERSION: u32 = 1;
pub const SEGMENT_HEADER: u64 = 16;

pub(crate) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.wal"))
}

/// The segments in `dir`, oldest first.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| WalError::io("read dir", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("read dir", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".wal") else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn header() -> [u8; SEGMENT_HEADER as usize] {
    let mut h = [0u8; SEGMENT_HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Creates (or empties) a segment and writes its header.
pub(crate) fn create(dir: &Path, first_seq: u64) -> Result<(File, PathBuf), WalError> {
    let path = segment_path(dir, first_seq);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&path)
        .map_err(|e| WalError::io("create", &path, e))?;
    file.write_all(&header())
        .map_err(|e| WalError::io("write", &path, e))?;
    Ok((file, path))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("sync dir", dir, e))
}

/// Why a scan stopped before the end of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belongs to a whole frame.
    Clean,
    /// The last frame is incomplete (or the tail is zeros): a write cut short by a crash.
    Torn,
    /// A frame that fails its checksum or cannot be decoded, with what was wrong.
    Corrupt { reason: String },
}

/// What scanning one segment's bytes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// Bytes (header included) up to the end of the last good frame.
    pub valid_len: u64,
    pub records: u64,
    pub last_seq: Option<u64>,
    pub end: ScanEnd,
}

/// Scans the bytes of a segment whose first record must be `first_seq`. Never panics,
/// whatever the bytes; this is what the fuzz target drives.
pub fn scan(bytes: &[u8], first_seq: u64, max_body: usize) -> Result<SegmentScan, ScanHeaderError> {
    check_header(bytes)?;
    let mut pos = SEGMENT_HEADER as usize;
    let mut records = 0u64;
    let mut last_seq = None;
    let mut expect = first_seq;
    let end = loop {
        if pos == bytes.len() {
            break ScanEnd::Clean;
        }
        let rest = &bytes[pos..];
        match frame(rest, max_body) {
            Frame::Whole { body, len } => {
                let seq = body_seq(body);
                if seq != expect {
                    break ScanEnd::Corrupt {
                        reason: format!("sequence {seq} where {expect} was expected"),
                    };
                }
                if let Err(reason) = decode(body) {
                    break ScanEnd::Corrupt { reason };
                }
                records += 1;
                last_seq = Some(seq);
                expect = seq.wrapping_add(1);
                pos += len;
            }
            Frame::Partial => break ScanEnd::Torn,
            // A crash can leave the file longer than what was written, filled with zeros.
            Frame::Corrupt(_) if rest.iter().all(|&b| b == 0) => break ScanEnd::Torn,
            Frame::Corrupt(reason) => break ScanEnd::Corrupt { reason },
        }
    };
    Ok(SegmentScan {
        valid_len: pos as u64,
        records,
        last_seq,
        end,
    })
}

/// The header of a segment is missing or wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanHeaderError {
    /// Shorter than a header: a segment created just before a crash.
    Short,
    /// Not our magic or version.
    Foreign,
}

fn check_header(bytes: &[u8]) -> Result<(), ScanHeaderError> {
    if bytes.len() < SEGMENT_HEADER as usize {
        // A prefix of our header is a segment whose creation was cut short.
        let h = header();
        return if bytes == &h[..bytes.len()] {
            Err(ScanHeaderError::Short)
        } else {
            Err(ScanHeaderError::Foreign)
        };
    }
    if &bytes[..8] != MAGIC || bytes[8..12] != VERSION.to_le_bytes() {
        return Err(ScanHeaderError::Foreign);
    }
    Ok(())
}

/// Decodes every whole, good record of a segment's bytes (what a scan accepted).
pub fn records(bytes: &[u8], first_seq: u64, max_body: usize) -> Vec<WalRecord> {
    let Ok(scan) = scan(bytes, first_seq, max_body) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(scan.records as usize);
    let mut pos = SEGMENT_HEADER as usize;
    while pos < scan.valid_len as usize {
        match frame(&bytes[pos..], max_body) {
            Frame::Whole { body, len } => {
                if let Ok(r) = decode(body) {
                    out.push(r);
                }
                pos += len;
            }
            _ => break,
        }
    }
    out
}
