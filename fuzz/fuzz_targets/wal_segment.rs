//! Arbitrary bytes as the last WAL segment. Scanning them, recovering the log from them
//! (open truncates a torn or corrupt tail) and reading every record back must never
//! panic; the first byte chooses whether a valid header is put in front, so the frame
//! scanner is reached far more often than the header check.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use koban_wal::{segment, FsyncPolicy, Wal, WalOptions};
use libfuzzer_sys::fuzz_target;

fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| std::env::temp_dir().join(format!("koban-fuzz-wal-{}", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let mut bytes = Vec::with_capacity(body.len() + 16);
    if selector & 1 == 1 {
        bytes.extend_from_slice(b"KOBANWAL\x01\x00\x00\x00\x00\x00\x00\x00");
    }
    bytes.extend_from_slice(body);
    let first_seq = 1 + u64::from(selector >> 4);
    let _ = segment::scan(&bytes, first_seq, 1 << 20);
    let _ = segment::records(&bytes, first_seq, 1 << 20);

    let dir = scratch_dir();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("scratch dir");
    std::fs::write(dir.join(format!("{first_seq:020}.wal")), &bytes).expect("write segment");
    let opts = WalOptions { fsync: FsyncPolicy::Never, max_record_bytes: 1 << 20, ..WalOptions::default() };
    if let Ok(wal) = Wal::open(dir, opts) {
        let mut reader = wal.reader(1);
        while let Ok(batch) = reader.read_batch(256, usize::MAX) {
            if batch.is_empty() {
                break;
            }
        }
        assert!(wal.last_seq() + 1 >= first_seq);
    }
});
