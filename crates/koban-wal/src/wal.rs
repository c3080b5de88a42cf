//! The log itself: open with recovery, group-committed appends, truncation.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::error::WalError;
use crate::record::{encode, Record};
use crate::segment::{self, ScanEnd, ScanHeaderError, SEGMENT_HEADER};

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `append` returns after an fsync that covers its records; concurrent appenders
    /// share one fsync (group commit).
    Always,
    /// A background thread fsyncs every so many milliseconds; `append` returns once the
    /// records are written to the OS. A crash of the machine (not of the process) can
    /// lose up to that interval.
    IntervalMs(u64),
    /// Never fsync (tests, throw-away setups): the OS decides.
    Never,
}

#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment is sealed and a new one started once it would grow past this.
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
    /// The largest record body accepted (an EVTX upload is one record).
    pub max_record_bytes: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
            fsync: FsyncPolicy::Always,
            max_record_bytes: 256 << 20,
        }
    }
}

/// What opening the log found and repaired in its last segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from the end of the last segment.
    pub truncated_bytes: u64,
    /// The tail was an incomplete write (a crash mid-append): expected, nothing acked lost.
    pub torn_tail: bool,
    /// A frame failed its checksum: what and where. The bytes from there on are kept
    /// beside the segment as `<segment>.corrupt-<offset>` for inspection.
    pub corrupt: Option<String>,
    pub segments: usize,
}

pub(crate) struct Sealed {
    pub first_seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
}

pub(crate) struct Writer {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub first_seq: u64,
    pub len: u64,
    pub next_seq: u64,
    pub sealed: Vec<Sealed>,
    sealed_bytes: u64,
    buf: Vec<u8>,
    poisoned: bool,
}

struct SyncState {
    durable: u64,
    leader: bool,
    poisoned: bool,
}

pub(crate) struct Shared {
    pub dir: PathBuf,
    pub opts: WalOptions,
    pub writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    /// Wakes appenders waiting for their fsync and readers waiting for new records.
    cv: Condvar,
    written: AtomicU64,
    size: AtomicU64,
    recovery: Recovery,
}

/// A write-ahead log in one directory. Cheap to clone; all clones share the log.
#[derive(Clone)]
pub struct Wal {
    pub(crate) shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-written frame visible: the
    // file length is only advanced after a whole write, so the state stays usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wal {
    /// Opens (creating when needed) the log in `dir` and repairs a torn or corrupt tail.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Wal, WalError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| WalError::io("create dir", &dir, e))?;
        let mut found = segment::list(&dir)?;
        let mut recovery = Recovery::default();
        if found.is_empty() {
            segment::create(&dir, 1)?;
            segment::sync_dir(&dir)?;
            found = segment::list(&dir)?;
        }
        let (last_first, last_path) = found.pop().expect("at least one segment");
        let mut sealed = Vec::new();
        let mut sealed_bytes = 0;
        for (first_seq, path) in found {
            let bytes = std::fs::metadata(&path)
                .map_err(|e| WalError::io("stat", &path, e))?
                .len();
            sealed_bytes += bytes;
            sealed.push(Sealed {
                first_seq,
                path,
                bytes,
            });
        }
        let bytes = std::fs::read(&last_path).map_err(|e| WalError::io("read", &last_path, e))?;
        let scan = match segment::scan(&bytes, last_first, opts.max_record_bytes + 64) {
            Ok(scan) => scan,
            Err(ScanHeaderError::Short) => {
                // Created just before a crash: nothing in it was ever acknowledged.
                segment::create(&dir, last_first)?;
                recovery.torn_tail = true;
                recovery.truncated_bytes = bytes.len() as u64;
                segment::SegmentScan {
                    valid_len: SEGMENT_HEADER,
                    records: 0,
                    last_seq: None,
                    end: ScanEnd::Clean,
                }
            }
            Err(ScanHeaderError::Foreign) => return Err(WalError::NotASegment { path: last_path }),
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&last_path)
            .map_err(|e| WalError::io("open", &last_path, e))?;
        if scan.valid_len < bytes.len() as u64 {
            recovery.truncated_bytes = bytes.len() as u64 - scan.valid_len;
            match &scan.end {
                ScanEnd::Corrupt { reason } => {
                    let keep = PathBuf::from(format!(
                        "{}.corrupt-{}",
                        last_path.display(),
                        scan.valid_len
                    ));
                    std::fs::write(&keep, &bytes[scan.valid_len as usize..])
                        .map_err(|e| WalError::io("write", &keep, e))?;
                    recovery.corrupt = Some(format!(
                        "{} at byte {}: {reason}",
                        last_path.display(),
                        scan.valid_len
                    ));
                }
                _ => recovery.torn_tail = true,
            }
            file.set_len(scan.valid_len)
                .and_then(|_| file.sync_all())
                .map_err(|e| WalError::io("truncate", &last_path, e))?;
        }
        let mut file = file;
        file.seek(SeekFrom::Start(scan.valid_len))
            .map_err(|e| WalError::io("seek", &last_path, e))?;
        let next_seq = scan.last_seq.map_or(last_first, |s| s + 1);
        recovery.segments = sealed.len() + 1;
        let last = next_seq - 1;
        let shared = Arc::new(Shared {
            dir,
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                path: last_path,
                first_seq: last_first,
                len: scan.valid_len,
                next_seq,
                sealed,
                sealed_bytes,
                buf: Vec::new(),
                poisoned: false,
            }),
            sync: Mutex::new(SyncState {
                durable: last,
                leader: false,
                poisoned: false,
            }),
            cv: Condvar::new(),
            written: AtomicU64::new(last),
            size: AtomicU64::new(sealed_bytes + scan.valid_len),
            recovery,
            opts,
        });
        if let FsyncPolicy::IntervalMs(ms) = shared.opts.fsync {
            let weak = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name("koban-wal-fsync".into())
                .spawn(move || interval_sync(weak, Duration::from_millis(ms.max(1))))
                .map_err(|e| WalError::io("spawn fsync thread", "", e))?;
        }
        Ok(Wal { shared })
    }

    /// What recovery found when this log was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.shared.recovery
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Appends `records` in order and returns the sequence number of the last one once
    /// they are durable under the fsync policy. Empty input returns `last_seq()`.
    pub fn append(&self, records: &[Record]) -> Result<u64, WalError> {
        if records.is_empty() {
            return Ok(self.last_seq());
        }
        let last = self.write(records)?;
        match self.shared.opts.fsync {
            FsyncPolicy::Always => self.wait_durable(last)?,
            FsyncPolicy::Never => {
                let mut s = lock(&self.shared.sync);
                s.durable = s.durable.max(last);
                self.shared.cv.notify_all();
            }
            FsyncPolicy::IntervalMs(_) => {}
        }
        Ok(last)
    }

    /// Encodes and writes the records to the OS under the writer lock.
    fn write(&self, records: &[Record]) -> Result<u64, WalError> {
        let sh = &self.shared;
        let mut guard = lock(&sh.writer);
        let w = &mut *guard;
        if w.poisoned {
            return Err(WalError::Poisoned);
        }
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        let mut seq = w.next_seq;
        for r in records {
            if r.payload.len() > sh.opts.max_record_bytes {
                w.buf = buf;
                return Err(WalError::RecordTooLarge {
                    size: r.payload.len(),
                    limit: sh.opts.max_record_bytes,
                });
            }
            encode(&mut buf, seq, r);
            seq += 1;
        }
        if w.len > SEGMENT_HEADER && w.len + buf.len() as u64 > sh.opts.segment_bytes {
            if let Err(e) = self.rotate(w) {
                w.buf = buf;
                return Err(e);
            }
        }
        if let Err(e) = (&*w.file).write_all(&buf) {
            // Cut the partial frame off so the next append starts on a frame boundary.
            let _ = w.file.set_len(w.len);
            let _ = (&*w.file).seek(SeekFrom::Start(w.len));
            w.buf = buf;
            return Err(WalError::io("write", &w.path, e));
        }
        w.len += buf.len() as u64;
        w.next_seq = seq;
        w.buf = buf;
        let last = seq - 1;
        sh.written.store(last, Ordering::Release);
        sh.size.store(w.sealed_bytes + w.len, Ordering::Relaxed);
        Ok(last)
    }

    /// Seals the current segment and starts the next one.
    fn rotate(&self, w: &mut Writer) -> Result<(), WalError> {
        let sh = &self.shared;
        if sh.opts.fsync != FsyncPolicy::Never {
            // The sealed segment must be durable before records go to the next one,
            // because later fsyncs only cover the new file.
            if let Err(e) = w.file.sync_data() {
                w.poisoned = true;
                return Err(WalError::io("sync", &w.path, e));
            }
        }
        let (file, path) = segment::create(&sh.dir, w.next_seq)?;
        if sh.opts.fsync != FsyncPolicy::Never {
            segment::sync_dir(&sh.dir)?;
        }
        let old_path = std::mem::replace(&mut w.path, path);
        w.sealed.push(Sealed {
            first_seq: w.first_seq,
            path: old_path,
            bytes: w.len,
        });
        w.sealed_bytes += w.len;
        w.file = Arc::new(file);
        w.first_seq = w.next_seq;
        w.len = SEGMENT_HEADER;
        Ok(())
    }

    /// Waits until `target` is durable, doing the fsync itself when no one else is
    /// (the leader's one fsync covers every appender that wrote before it started).
    fn wait_durable(&self, target: u64) -> Result<(), WalError> {
        let sh = &self.shared;
        let mut s = lock(&sh.sync);
        loop {
            if s.poisoned {
                return Err(WalError::Poisoned);
            }
            if s.durable >= target {
                return Ok(());
            }
            if s.leader {
                s = sh.cv.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.leader = true;
            drop(s);
            let result = self.sync_once();
            s = lock(&sh.sync);
            s.leader = false;
            match result {
                Ok(seq) => s.durable = s.durable.max(seq),
                Err(e) => {
                    s.poisoned = true;
                    lock(&sh.writer).poisoned = true;
                    sh.cv.notify_all();
                    return Err(e);
                }
            }
            sh.cv.notify_all();
        }
    }

    /// One fsync of the active segment; returns the last sequence it covers.
    fn sync_once(&self) -> Result<u64, WalError> {
        let (file, path, seq) = {
            let w = lock(&self.shared.writer);
            (
                Arc::clone(&w.file),
                w.path.clone(),
                self.shared.written.load(Ordering::Acquire),
            )
        };
        file.sync_data()
            .map_err(|e| WalError::io("sync", &path, e))?;
        Ok(seq)
    }

    /// Makes everything written so far durable (shutdown, the interval policy).
    pub fn sync(&self) -> Result<(), WalError> {
        let written = self.last_seq();
        self.wait_durable(written)
    }

    /// The sequence number of the last record appended (0 when none ever was).
    pub fn last_seq(&self) -> u64 {
        self.shared.written.load(Ordering::Acquire)
    }

    /// The last sequence number that is durable and so visible to readers.
    pub fn durable_seq(&self) -> u64 {
        lock(&self.shared.sync).durable
    }

    /// Waits up to `timeout` for a durable record after `seq`; returns `durable_seq()`.
    pub fn wait_for(&self, seq: u64, timeout: Duration) -> u64 {
        let s = lock(&self.shared.sync);
        let (s, _) = self
            .shared
            .cv
            .wait_timeout_while(s, timeout, |s| s.durable <= seq && !s.poisoned)
            .unwrap_or_else(|p| p.into_inner());
        s.durable
    }

    /// Wakes every reader waiting in `wait_for` (used at shutdown).
    pub fn notify_readers(&self) {
        let _s = lock(&self.shared.sync);
        self.shared.cv.notify_all();
    }

    /// Bytes the segments take on disk.
    pub fn size_bytes(&self) -> u64 {
        self.shared.size.load(Ordering::Relaxed)
    }

    /// The oldest sequence number still in the log.
    pub fn first_seq(&self) -> u64 {
        let w = lock(&self.shared.writer);
        w.sealed.first().map_or(w.first_seq, |s| s.first_seq)
    }

    /// Deletes whole sealed segments whose records are all ≤ `seq` (already stored).
    /// The active segment is never deleted. Returns how many segments went.
    pub fn truncate_through(&self, seq: u64) -> Result<usize, WalError> {
        let sh = &self.shared;
        let mut w = lock(&sh.writer);
        let mut removed = 0;
        while !w.sealed.is_empty() {
            let next_first = w.sealed.get(1).map_or(w.first_seq, |s| s.first_seq);
            if next_first - 1 > seq {
                break;
            }
            let seg = w.sealed.remove(0);
            match std::fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    w.sealed.insert(0, seg);
                    return Err(WalError::io("remove", &w.sealed[0].path, e));
                }
            }
            w.sealed_bytes -= seg.bytes;
            removed += 1;
        }
        sh.size.store(w.sealed_bytes + w.len, Ordering::Relaxed);
        Ok(removed)
    }

    /// Makes the next appended record get `next_seq`, when the log holds no record at
    /// all (a consumer that stored up to `next_seq - 1` met a new or wiped WAL directory:
    /// without this, new records would reuse sequence numbers it has already applied).
    /// Returns false, changing nothing, when the log has records or is already past it.
    pub fn start_at(&self, next_seq: u64) -> Result<bool, WalError> {
        let sh = &self.shared;
        let mut w = lock(&sh.writer);
        if !w.sealed.is_empty() || w.len != SEGMENT_HEADER || next_seq <= w.next_seq {
            return Ok(false);
        }
        let (file, path) = segment::create(&sh.dir, next_seq)?;
        segment::sync_dir(&sh.dir)?;
        let old = std::mem::replace(&mut w.path, path);
        std::fs::remove_file(&old).map_err(|e| WalError::io("remove", &old, e))?;
        w.file = Arc::new(file);
        w.first_seq = next_seq;
        w.next_seq = next_seq;
        sh.written.store(next_seq - 1, Ordering::Release);
        let mut s = lock(&sh.sync);
        s.durable = s.durable.max(next_seq - 1);
        Ok(true)
    }

    /// The segment holding `seq`: its first sequence number and path.
    pub(crate) fn segment_for(&self, seq: u64) -> Result<(u64, PathBuf), WalError> {
        let w = lock(&self.shared.writer);
        let oldest = w.sealed.first().map_or(w.first_seq, |s| s.first_seq);
        if seq < oldest {
            return Err(WalError::Truncated {
                wanted: seq,
                oldest,
            });
        }
        if seq >= w.first_seq {
            return Ok((w.first_seq, w.path.clone()));
        }
        let i = w.sealed.partition_point(|s| s.first_seq <= seq) - 1;
        Ok((w.sealed[i].first_seq, w.sealed[i].path.clone()))
    }
}

fn interval_sync(weak: Weak<Shared>, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(shared) = weak.upgrade() else { return };
        let wal = Wal { shared };
        if wal.durable_seq() < wal.last_seq() && wal.sync().is_err() {
            // The error is returned to every later append (the log is poisoned).
            return;
        }
    }
}
