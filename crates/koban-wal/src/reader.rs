//! Reading the log in order from a sequence number, following the live tail.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::WalError;
use crate::record::{decode, frame, header_len, Frame, WalRecord, HEADER};
use crate::segment::SEGMENT_HEADER;
use crate::wal::Wal;

struct Cursor {
    first_seq: u64,
    path: PathBuf,
    file: BufReader<File>,
    offset: u64,
}

/// Reads durable records in order. It never returns a record that a crash could still
/// take back, so a consumer that stores what it reads is never ahead of the log.
pub struct WalReader {
    wal: Wal,
    next_seq: u64,
    cur: Option<Cursor>,
    buf: Vec<u8>,
}

impl Wal {
    /// A reader whose first record is `from_seq` (or the first one after it that exists
    /// once written).
    pub fn reader(&self, from_seq: u64) -> WalReader {
        WalReader {
            wal: self.clone(),
            next_seq: from_seq.max(1),
            cur: None,
            buf: Vec::new(),
        }
    }
}

impl WalReader {
    /// The sequence number the next record will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Up to `max_records` records (stopping early past `max_bytes` of payload) that are
    /// durable now; empty when the reader is at the durable tail.
    pub fn read_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<WalRecord>, WalError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let durable = self.wal.durable_seq();
        while out.len() < max_records && bytes < max_bytes && self.next_seq <= durable {
            match self.next_record()? {
                Some(r) => {
                    bytes += r.record.payload.len();
                    out.push(r);
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// Like `read_batch`, but waits up to `timeout` for records when none are there.
    pub fn read_batch_wait(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<WalRecord>, WalError> {
        let batch = self.read_batch(max_records, max_bytes)?;
        if !batch.is_empty() {
            return Ok(batch);
        }
        self.wal.wait_for(self.next_seq - 1, timeout);
        self.read_batch(max_records, max_bytes)
    }

    fn open(&mut self) -> Result<(), WalError> {
        let (first_seq, path) = self.wal.segment_for(self.next_seq)?;
        let file = File::open(&path).map_err(|e| WalError::io("open", &path, e))?;
        let mut file = BufReader::with_capacity(1 << 20, file);
        let mut header = [0u8; SEGMENT_HEADER as usize];
        file.read_exact(&mut header)
            .map_err(|e| WalError::io("read", &path, e))?;
        self.cur = Some(Cursor {
            first_seq,
            path,
            file,
            offset: SEGMENT_HEADER,
        });
        Ok(())
    }

    /// The record `next_seq`, known to be durable. `None` when it is not yet visible.
    fn next_record(&mut self) -> Result<Option<WalRecord>, WalError> {
        loop {
            if self.cur.is_none() {
                self.open()?;
            }
            let cur = self.cur.as_mut().expect("opened");
            let max_body = self.wal.shared.opts.max_record_bytes + 64;
            self.buf.resize(HEADER, 0);
            let got = read_full(&mut cur.file, &mut self.buf[..HEADER])
                .map_err(|e| WalError::io("read", &cur.path, e))?;
            if got == 0 {
                // End of this segment: the record is in the next one.
                let (first, _) = self.wal.segment_for(self.next_seq)?;
                if first == cur.first_seq {
                    return Ok(None);
                }
                self.cur = None;
                continue;
            }
            let corrupt = |cur: &Cursor, reason: &str| WalError::Corrupt {
                path: cur.path.clone(),
                offset: cur.offset,
                reason: reason.to_owned(),
            };
            if got < HEADER {
                return Err(corrupt(cur, "frame header cut short"));
            }
            let len = header_len(&self.buf).unwrap_or(0);
            if len > max_body {
                return Err(corrupt(cur, "frame length out of range"));
            }
            self.buf.resize(HEADER + len, 0);
            let got = read_full(&mut cur.file, &mut self.buf[HEADER..])
                .map_err(|e| WalError::io("read", &cur.path, e))?;
            if got < len {
                return Err(corrupt(cur, "frame cut short"));
            }
            let record = match frame(&self.buf, max_body) {
                Frame::Whole { body, .. } => decode(body).map_err(|r| corrupt(cur, &r))?,
                Frame::Partial => return Err(corrupt(cur, "frame cut short")),
                Frame::Corrupt(r) => return Err(corrupt(cur, &r)),
            };
            cur.offset += (HEADER + len) as u64;
            if record.seq < self.next_seq {
                continue;
            }
            if record.seq > self.next_seq {
                return Err(corrupt(
                    cur,
                    &format!(
                        "sequence {} where {} was expected",
                        record.seq, self.next_seq
                    ),
                ));
            }
            self.next_seq += 1;
            return Ok(Some(record));
        }
    }
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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
