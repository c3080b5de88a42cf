//! The log against real files: reopen, torn and corrupt tails, concurrency, truncation.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use koban_wal::{FsyncPolicy, Record, RecordKind, Wal, WalOptions};

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "koban-wal-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn rec(i: u64) -> Record {
    Record {
        tenant: "acme".into(),
        source: "fw".into(),
        kind: RecordKind::Syslog,
        received_ms: 1_700_000_000_000 + i as i64,
        remote: Some("127.0.0.1:5514".parse().expect("address")),
        payload: format!("<13>record {i}").into_bytes(),
    }
}

fn opts(policy: FsyncPolicy) -> WalOptions {
    WalOptions {
        fsync: policy,
        ..WalOptions::default()
    }
}

fn segments(dir: &PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

fn read_all(wal: &Wal, from: u64) -> Vec<koban_wal::WalRecord> {
    let mut r = wal.reader(from);
    let mut out = Vec::new();
    loop {
        let b = r.read_batch(1000, usize::MAX).expect("read");
        if b.is_empty() {
            return out;
        }
        out.extend(b);
    }
}

#[test]
fn append_reopen_read() {
    let dir = temp_dir("reopen");
    {
        let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
        assert_eq!(wal.last_seq(), 0);
        let recs: Vec<_> = (1..=10).map(rec).collect();
        assert_eq!(wal.append(&recs[..4]).unwrap(), 4);
        assert_eq!(wal.append(&recs[4..]).unwrap(), 10);
        assert_eq!(read_all(&wal, 1).len(), 10);
    }
    let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(wal.recovery().truncated_bytes, 0);
    assert_eq!(wal.last_seq(), 10);
    let all = read_all(&wal, 3);
    assert_eq!(all.len(), 8);
    assert_eq!(all[0].seq, 3);
    assert_eq!(all[0].record, rec(3));
    assert_eq!(wal.append(&[rec(11)]).unwrap(), 11);
    assert_eq!(read_all(&wal, 11)[0].record, rec(11));
}

#[test]
fn torn_tail_is_truncated_and_nothing_before_is_lost() {
    let dir = temp_dir("torn");
    {
        let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
        let recs: Vec<_> = (1..=5).map(rec).collect();
        wal.append(&recs).unwrap();
    }
    let seg = segments(&dir).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    // Cut the last record in the middle, as a crash during write would.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 7).unwrap();
    drop(f);
    let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
    assert!(wal.recovery().torn_tail);
    assert!(wal.recovery().corrupt.is_none());
    assert!(wal.recovery().truncated_bytes > 0);
    assert_eq!(wal.last_seq(), 4);
    let all = read_all(&wal, 1);
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    // The next append takes the torn record's number: it was never acknowledged.
    assert_eq!(wal.append(&[rec(99)]).unwrap(), 5);
    assert_eq!(read_all(&wal, 5)[0].record, rec(99));
}

#[test]
fn zero_filled_tail_counts_as_torn() {
    let dir = temp_dir("zeros");
    {
        let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
        wal.append(&[rec(1), rec(2)]).unwrap();
    }
    let seg = segments(&dir).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len + 4096).unwrap();
    drop(f);
    let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
    assert!(wal.recovery().torn_tail);
    assert_eq!(wal.last_seq(), 2);
}

#[test]
fn crc_corruption_is_detected_and_reported() {
    let dir = temp_dir("crc");
    {
        let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
        let recs: Vec<_> = (1..=5).map(rec).collect();
        wal.append(&recs).unwrap();
    }
    let seg = segments(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    // Flip one payload bit of the fourth record.
    let frame = (bytes.len() - 16) / 5;
    let at = 16 + 3 * frame + frame - 3;
    bytes[at] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    // A reader of the damaged file (before recovery) reports it.
    let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
    let corrupt = wal.recovery().corrupt.clone().expect("corruption reported");
    assert!(corrupt.contains("checksum"), "{corrupt}");
    assert_eq!(wal.last_seq(), 3, "records before the damage are kept");
    assert_eq!(read_all(&wal, 1).len(), 3);
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "damaged tail kept for inspection");
}

#[test]
fn reader_reports_corruption_in_a_sealed_segment() {
    let dir = temp_dir("sealed-crc");
    let small = WalOptions {
        segment_bytes: 256,
        ..opts(FsyncPolicy::Always)
    };
    {
        let wal = Wal::open(&dir, small.clone()).unwrap();
        for i in 1..=20 {
            wal.append(&[rec(i)]).unwrap();
        }
    }
    let first = segments(&dir).remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 1;
    std::fs::write(&first, &bytes).unwrap();
    let wal = Wal::open(&dir, small).unwrap();
    let mut r = wal.reader(1);
    let err = loop {
        match r.read_batch(1, usize::MAX) {
            Ok(b) if b.is_empty() => panic!("corruption not seen"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn concurrent_appenders_get_distinct_ordered_seqs() {
    let dir = temp_dir("concurrent");
    let wal = Wal::open(
        &dir,
        WalOptions {
            segment_bytes: 64 << 10,
            ..opts(FsyncPolicy::Always)
        },
    )
    .unwrap();
    let threads = 8;
    let per = 200;
    let seqs: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let wal = wal.clone();
                s.spawn(move || {
                    (0..per)
                        .map(|i| {
                            let batch = [rec(t * 10_000 + i), rec(t * 10_000 + i)];
                            wal.append(&batch).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = seqs.into_iter().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len() as u64, threads * per);
    assert_eq!(wal.last_seq(), threads * per * 2);
    assert_eq!(wal.durable_seq(), wal.last_seq());
    let read = read_all(&wal, 1);
    assert_eq!(read.len() as u64, threads * per * 2);
    assert!(read.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert!(segments(&dir).len() > 1, "rotation happened");
    drop(wal);
    let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(read_all(&wal, 1).len() as u64, threads * per * 2);
}

#[test]
fn truncate_through_deletes_only_whole_stored_segments() {
    let dir = temp_dir("truncate");
    let small = WalOptions {
        segment_bytes: 300,
        ..opts(FsyncPolicy::Never)
    };
    let wal = Wal::open(&dir, small.clone()).unwrap();
    for i in 1..=30 {
        wal.append(&[rec(i)]).unwrap();
    }
    let before = segments(&dir).len();
    assert!(before > 3);
    let size_before = wal.size_bytes();
    // Segment names are their first seq; keep every record above 10.
    wal.truncate_through(10).unwrap();
    let after = segments(&dir);
    assert!(after.len() < before);
    assert!(wal.size_bytes() < size_before);
    let oldest = wal.first_seq();
    assert!(oldest <= 11, "record 11 must survive, oldest is {oldest}");
    assert_eq!(read_all(&wal, 11).len(), 20);
    assert!(wal.reader(1).read_batch(1, usize::MAX).is_err());
    // Everything stored: only the active segment is left.
    wal.truncate_through(30).unwrap();
    assert_eq!(segments(&dir).len(), 1);
    assert_eq!(wal.last_seq(), 30);
    drop(wal);
    let wal = Wal::open(&dir, small).unwrap();
    assert_eq!(wal.last_seq(), 30);
    assert_eq!(wal.append(&[rec(31)]).unwrap(), 31);
}

#[test]
fn reader_follows_the_live_tail() {
    let dir = temp_dir("follow");
    let wal = Wal::open(
        &dir,
        WalOptions {
            segment_bytes: 200,
            ..opts(FsyncPolicy::IntervalMs(5))
        },
    )
    .unwrap();
    let writer = {
        let wal = wal.clone();
        std::thread::spawn(move || {
            for i in 1..=50 {
                wal.append(&[rec(i)]).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut r = wal.reader(1);
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 50 && std::time::Instant::now() < deadline {
        for x in r
            .read_batch_wait(10, usize::MAX, Duration::from_millis(50))
            .unwrap()
        {
            got.push(x.seq);
        }
    }
    writer.join().unwrap();
    assert_eq!(got, (1..=50).collect::<Vec<_>>());
}

#[test]
fn oversized_record_is_refused_and_log_stays_usable() {
    let dir = temp_dir("big");
    let wal = Wal::open(
        &dir,
        WalOptions {
            max_record_bytes: 100,
            ..opts(FsyncPolicy::Always)
        },
    )
    .unwrap();
    let mut big = rec(1);
    big.payload = vec![b'x'; 101];
    assert!(matches!(
        wal.append(&[big]),
        Err(koban_wal::WalError::RecordTooLarge { .. })
    ));
    assert_eq!(wal.append(&[rec(2)]).unwrap(), 1);
}

#[test]
fn an_empty_log_can_start_after_a_consumers_position() {
    let dir = temp_dir("start-at");
    let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
    assert!(wal.start_at(501).unwrap());
    assert_eq!(wal.last_seq(), 500);
    assert_eq!(wal.append(&[rec(1)]).unwrap(), 501);
    assert!(!wal.start_at(900).unwrap(), "not once it holds records");
    drop(wal);
    let wal = Wal::open(&dir, opts(FsyncPolicy::Always)).unwrap();
    assert_eq!(wal.last_seq(), 501);
    assert_eq!(read_all(&wal, 501)[0].record, rec(1));
}
