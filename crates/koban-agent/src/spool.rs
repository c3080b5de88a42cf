//! The disk spool between the files the agent tails and the server: every line read
//! is on disk (fsynced) before the tail position moves past it, and leaves the disk
//! only after the server said it holds it. The server may be away for hours; the
//! agent loses nothing and sends nothing twice.
//!
//! Layout under `<state>/spool/`: segments `<first seq>.jsonl`, one record per line
//! (`{"s": seq, "f": file, "o": end offset, "i": inode, "l": line}`; journal entries
//! carry the journal's cursor as `"c"` instead of an offset), and `acked` (the last
//! sequence number the server confirmed). The tail positions are recovered from
//! the records themselves, so a crash between spooling a line and noting its position
//! cannot read the line again. A torn last record (a crash mid-write) is cut off.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Segments roll over at this size.
const SEGMENT_BYTES: u64 = 8 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Rec {
    s: u64,
    f: String,
    o: u64,
    i: u64,
    l: String,
    /// The journal cursor after this entry (journal sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
}

/// Where tailing a file stands: its inode and the offset after the last spooled line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub inode: u64,
    pub offset: u64,
}

pub struct Spool {
    dir: PathBuf,
    /// First seq of each segment → its path.
    segments: BTreeMap<u64, PathBuf>,
    current: Option<(File, u64)>,
    /// The next sequence number to give.
    next: u64,
    acked: u64,
    positions: HashMap<String, Position>,
    /// Journal source → the cursor after its last spooled entry.
    cursors: HashMap<String, String>,
}

fn io(what: &Path, e: std::io::Error) -> String {
    format!("spool {}: {e}", what.display())
}

impl Spool {
    pub fn open(dir: &Path) -> Result<Spool, String> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let acked = match std::fs::read_to_string(dir.join("acked")) {
            Ok(t) => t
                .trim()
                .parse()
                .map_err(|_| format!("spool {}: damaged acked file", dir.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(dir, e)),
        };
        let mut segments = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let p = entry.map_err(|e| io(dir, e))?.path();
            if let Some(first) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                segments.insert(first, p);
            }
        }
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            segments,
            current: None,
            next: acked + 1,
            acked,
            positions: HashMap::new(),
            cursors: HashMap::new(),
        };
        spool.recover()?;
        Ok(spool)
    }

    /// Reads every segment: the next seq, the tail positions, a torn end cut off.
    fn recover(&mut self) -> Result<(), String> {
        if let Ok(t) = std::fs::read_to_string(self.dir.join("positions.json")) {
            if let Ok(p) = serde_json::from_str(&t) {
                self.positions = p;
            }
        }
        if let Ok(t) = std::fs::read_to_string(self.dir.join("cursors.json")) {
            if let Ok(c) = serde_json::from_str(&t) {
                self.cursors = c;
            }
        }
        let segs: Vec<PathBuf> = self.segments.values().cloned().collect();
        for (n, path) in segs.iter().enumerate() {
            let last = n + 1 == segs.len();
            let f = File::open(path).map_err(|e| io(path, e))?;
            let mut good = 0u64;
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            loop {
                line.clear();
                let got = reader.read_line(&mut line).map_err(|e| io(path, e))?;
                if got == 0 {
                    break;
                }
                let Some(rec) = line
                    .strip_suffix('\n')
                    .and_then(|l| serde_json::from_str::<Rec>(l).ok())
                else {
                    if last {
                        break; // a torn record at the very end: the crash point
                    }
                    return Err(format!(
                        "spool {}: damaged record at byte {good}",
                        path.display()
                    ));
                };
                good += got as u64;
                self.next = self.next.max(rec.s + 1);
                if let Some(c) = rec.c {
                    // Records are in order: the last one's cursor is the newest.
                    self.cursors.insert(rec.f, c);
                    continue;
                }
                let pos = self.positions.entry(rec.f).or_default();
                if rec.i != pos.inode || rec.o > pos.offset {
                    *pos = Position {
                        inode: rec.i,
                        offset: rec.o,
                    };
                }
            }
            if last {
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io(path, e))?;
                f.set_len(good).map_err(|e| io(path, e))?;
                f.sync_all().map_err(|e| io(path, e))?;
            }
        }
        Ok(())
    }

    pub fn position(&self, file: &str) -> Position {
        self.positions.get(file).copied().unwrap_or_default()
    }

    /// The cursor after the last spooled entry of a journal source.
    pub fn cursor(&self, source: &str) -> Option<&str> {
        self.cursors.get(source).map(String::as_str)
    }

    /// Spools journal entries (each with the cursor after it), durably.
    pub fn append_journal(
        &mut self,
        source: &str,
        entries: &[(String, String)],
    ) -> Result<(), String> {
        let recs: Vec<Rec> = entries
            .iter()
            .map(|(line, cursor)| Rec {
                s: 0,
                f: source.to_owned(),
                o: 0,
                i: 0,
                l: line.clone(),
                c: Some(cursor.clone()),
            })
            .collect();
        self.write(recs)?;
        if let Some((_, c)) = entries.last() {
            self.cursors.insert(source.to_owned(), c.clone());
        }
        Ok(())
    }

    /// Lines waiting for the server.
    pub fn backlog(&self) -> u64 {
        self.next - 1 - self.acked
    }

    /// Spools lines of `file` (each with the position after it), durably.
    pub fn append(&mut self, file: &str, lines: &[(String, Position)]) -> Result<(), String> {
        let recs: Vec<Rec> = lines
            .iter()
            .map(|(line, pos)| Rec {
                s: 0,
                f: file.to_owned(),
                o: pos.offset,
                i: pos.inode,
                l: line.clone(),
                c: None,
            })
            .collect();
        self.write(recs)?;
        if let Some((_, last)) = lines.last() {
            self.positions.insert(file.to_owned(), *last);
        }
        Ok(())
    }

    /// Numbers the records, appends them to the current segment and fsyncs.
    fn write(&mut self, recs: Vec<Rec>) -> Result<(), String> {
        if recs.is_empty() {
            return Ok(());
        }
        let roll = self
            .current
            .as_ref()
            .map_or(true, |(_, size)| *size >= SEGMENT_BYTES);
        if roll {
            let path = self.dir.join(format!("{:020}.jsonl", self.next));
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            let size = f.metadata().map_err(|e| io(&path, e))?.len();
            self.segments.insert(self.next, path);
            self.current = Some((f, size));
        }
        let mut buf = String::new();
        for mut rec in recs {
            rec.s = self.next;
            buf.push_str(&serde_json::to_string(&rec).unwrap_or_default());
            buf.push('\n');
            self.next += 1;
        }
        let (f, size) = self.current.as_mut().ok_or("no spool segment")?;
        f.write_all(buf.as_bytes())
            .map_err(|e| format!("spool write: {e}"))?;
        f.sync_data().map_err(|e| format!("spool sync: {e}"))?;
        *size += buf.len() as u64;
        Ok(())
    }

    /// Up to `max` lines (and about `max_bytes`) from the first unconfirmed one:
    /// (first seq, lines).
    pub fn pending(&self, max: usize, max_bytes: usize) -> Result<(u64, Vec<String>), String> {
        let mut bytes = 0;
        let from = self.acked + 1;
        let mut out = Vec::new();
        let start = self
            .segments
            .range(..=from)
            .next_back()
            .map_or(from, |(k, _)| *k);
        for (_, path) in self.segments.range(start..) {
            let f = File::open(path).map_err(|e| io(path, e))?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| io(path, e))?;
                let Ok(rec) = serde_json::from_str::<Rec>(&line) else {
                    break;
                };
                if rec.s < from {
                    continue;
                }
                bytes += rec.l.len() + 4;
                out.push(rec.l);
                if out.len() >= max || bytes >= max_bytes {
                    return Ok((from, out));
                }
            }
        }
        Ok((from, out))
    }

    /// The server holds everything up to `seq`: note it, drop whole segments behind it.
    pub fn ack(&mut self, seq: u64) -> Result<(), String> {
        if seq <= self.acked {
            return Ok(());
        }
        let seq = seq.min(self.next - 1);
        let tmp = self.dir.join("acked.tmp");
        std::fs::write(&tmp, seq.to_string()).map_err(|e| io(&tmp, e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, self.dir.join("acked")).map_err(|e| io(&tmp, e))?;
        self.acked = seq;
        // A segment is done when the next one starts at or before acked + 1; the
        // current one stays (it holds the newest tail positions).
        let firsts: Vec<u64> = self.segments.keys().copied().collect();
        for w in firsts.windows(2) {
            if w[1] <= seq + 1 {
                if let Some(p) = self.segments.remove(&w[0]) {
                    self.save_positions()?;
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        Ok(())
    }

    /// The tail positions, kept beside the segments so that removing a segment never
    /// forgets where a file was.
    fn save_positions(&self) -> Result<(), String> {
        let p = self.dir.join("positions.json");
        let tmp = self.dir.join("positions.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_string(&self.positions).unwrap_or_default(),
        )
        .map_err(|e| io(&tmp, e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| io(&p, e))?;
        let p = self.dir.join("cursors.json");
        let tmp = self.dir.join("cursors.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_string(&self.cursors).unwrap_or_default(),
        )
        .map_err(|e| io(&tmp, e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| io(&p, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(from: u64, n: u64) -> Vec<(String, Position)> {
        (from..from + n)
            .map(|i| {
                (
                    format!("line {i}"),
                    Position {
                        inode: 7,
                        offset: (i + 1) * 10,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn lines_leave_only_when_acked_and_survive_a_torn_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path()).expect("open");
        s.append("/var/log/a", &lines(0, 100)).expect("append");
        assert_eq!(s.backlog(), 100);
        let (first, got) = s.pending(30, 1 << 20).expect("pending");
        assert_eq!((first, got.len(), got[0].as_str()), (1, 30, "line 0"));
        s.ack(30).expect("ack");
        let (first, got) = s.pending(1000, 1 << 20).expect("pending");
        assert_eq!((first, got.len(), got[0].as_str()), (31, 70, "line 30"));
        drop(s);

        // A crash mid-record: the torn end is cut, nothing before it is lost, and the
        // file position is the last whole record's.
        let seg = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .expect("segment");
        let mut f = OpenOptions::new().append(true).open(&seg).expect("segment");
        f.write_all(b"{\"s\":101,\"f\":\"/var/log/a\",\"o\":99")
            .expect("torn");
        drop(f);
        let mut s = Spool::open(dir.path()).expect("reopen");
        assert_eq!(s.backlog(), 70);
        assert_eq!(
            s.position("/var/log/a"),
            Position {
                inode: 7,
                offset: 1000
            }
        );
        s.append("/var/log/a", &lines(100, 5)).expect("append");
        let (_, got) = s.pending(1000, 1 << 20).expect("pending");
        assert_eq!(got.len(), 75);
        assert_eq!(got.last().map(String::as_str), Some("line 104"));
        s.ack(105).expect("ack all");
        assert_eq!(s.backlog(), 0);
        assert!(s.pending(10, 1 << 20).expect("pending").1.is_empty());
        // Acks beyond what exists, or behind, change nothing.
        s.ack(1_000).expect("ack");
        s.ack(3).expect("ack");
        assert_eq!(s.backlog(), 0);
    }

    #[test]
    fn journal_cursors_come_back_from_the_records_and_after_segments_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(dir.path()).expect("open");
        assert_eq!(s.cursor("journal"), None);
        let entries: Vec<(String, String)> = (0..3)
            .map(|i| (format!("{{\"MESSAGE\":\"m{i}\"}}"), format!("s=a;i={i}")))
            .collect();
        s.append_journal("journal", &entries).expect("append");
        s.append(
            "/var/log/app.log",
            &[(
                "a file line".into(),
                Position {
                    inode: 7,
                    offset: 12,
                },
            )],
        )
        .expect("append");
        drop(s);
        let mut s = Spool::open(dir.path()).expect("reopen");
        assert_eq!(s.cursor("journal"), Some("s=a;i=2"));
        assert_eq!(s.position("/var/log/app.log").offset, 12);
        let (first, lines) = s.pending(10, 1 << 20).expect("pending");
        assert_eq!((first, lines.len()), (1, 4));
        s.ack(4).expect("ack");
        drop(s);
        let s = Spool::open(dir.path()).expect("reopen");
        assert_eq!(s.cursor("journal"), Some("s=a;i=2"));
        assert_eq!(s.backlog(), 0);
    }
}
