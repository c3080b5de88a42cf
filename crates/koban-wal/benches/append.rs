//! Appends/s of 200-byte records with `fsync = always` and concurrent appenders, the
//! way the server appends: each connection hands over a batch per read.
//!
//! `cargo bench -p koban-wal` (criterion), or for the figure the acceptance script
//! prints: `cargo bench -p koban-wal -- --threads 8 --batch 64` style runs come from the
//! `throughput` function below, which prints records/s.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use koban_wal::{FsyncPolicy, Record, RecordKind, Wal, WalOptions};

fn record() -> Record {
    Record {
        tenant: "default".into(),
        source: "syslog-tcp".into(),
        kind: RecordKind::Syslog,
        received_ms: 1_700_000_000_000,
        remote: Some("127.0.0.1:40000".parse().expect("addr")),
        payload: vec![b'x'; 200],
    }
}

fn open(name: &str) -> Wal {
    let dir = std::env::temp_dir().join(format!("koban-wal-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Wal::open(
        &dir,
        WalOptions {
            fsync: FsyncPolicy::Always,
            ..WalOptions::default()
        },
    )
    .expect("open wal")
}

/// Records/s for `threads` appenders each appending `batches` batches of `batch`.
fn throughput(threads: usize, batch: usize, batches: usize) -> f64 {
    let wal = open(&format!("{threads}x{batch}"));
    let recs: Vec<Record> = (0..batch).map(|_| record()).collect();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let wal = wal.clone();
            let recs = &recs;
            s.spawn(move || {
                for _ in 0..batches {
                    wal.append(recs).expect("append");
                }
            });
        }
    });
    let n = (threads * batch * batches) as f64;
    let dir = wal.dir().to_path_buf();
    drop(wal);
    let _ = std::fs::remove_dir_all(dir);
    n / start.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    for (threads, batch) in [(1, 1), (16, 1), (8, 64), (32, 64)] {
        let rate = throughput(threads, batch, (20_000 / (threads * batch)).max(20));
        println!("wal append fsync=always threads={threads} batch={batch}: {rate:.0} records/s");
    }
    let mut g = c.benchmark_group("wal_append_always");
    g.sample_size(10);
    let wal = open("criterion");
    let recs: Vec<Record> = (0..64).map(|_| record()).collect();
    g.throughput(Throughput::Elements(64 * 8));
    g.bench_function("8_threads_batch_64", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..8 {
                    let wal = wal.clone();
                    let recs = &recs;
                    s.spawn(move || wal.append(recs).expect("append"));
                }
            })
        })
    });
    g.finish();
    let dir = wal.dir().to_path_buf();
    drop(wal);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
