//! The store-level `applied_seq` file, replaced atomically.
//!
//! Written only after every partition with new documents has committed: it is the
//! WAL position the caller may resume after. Write to a temporary file, fsync it,
//! rename it over the old one, fsync the directory — so a crash leaves either the
//! old value or the new one, never a torn file.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::StoreError;

pub(crate) const APPLIED_FILE: &str = "applied_seq";

pub(crate) fn read_applied(root: &Path) -> Result<u64, StoreError> {
    let path = root.join(APPLIED_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| StoreError::Corrupt {
            path,
            message: format!("expected a sequence number, found {:?}", text.trim()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

pub(crate) fn write_applied(root: &Path, seq: u64) -> Result<(), StoreError> {
    let tmp = root.join(format!("{APPLIED_FILE}.tmp"));
    let path = root.join(APPLIED_FILE);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| StoreError::io(p, e)
    };
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    writeln!(f, "{seq}").map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(io(root))
}
