//! Alerts, incidents and cases in SQLite (`alerts.db` in the data dir).
//!
//! The pipeline thread writes (`record.rs`: detections become alerts, repeats fold into
//! counters, new alerts join or open incidents, all in one transaction with the
//! detection position and the open correlation windows, so a crash replays exactly what
//! was not recorded). The HTTP side reads and triages (`query.rs`, `triage.rs`).
//! `policy.rs` is the per-tenant rule policy (disabled rules, level changes,
//! exceptions) the detection stage applies.

mod dashboard;
mod feed;
mod policy;
mod query;
mod record;
mod schema;
mod triage;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

pub use feed::{subject_entities, ResponseStep};
pub use policy::{Exception, Override, Policy};
pub use query::{AlertFilter, IncidentFilter, Owner};
pub use record::{Detected, Grouping, RecordReport};
pub use triage::{Annotation, AssetGroup, ExceptionRequest, TriageError};

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("alerts database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("alerts database: a stored value is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// What a detection points back to: the stored event it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    pub source: String,
    pub seq: u64,
    pub sub: u32,
    pub received_ms: i64,
}

/// One connection to `alerts.db`. The pipeline holds one, the HTTP side another.
pub struct AlertBook {
    conn: Mutex<Connection>,
}

impl AlertBook {
    pub fn open(path: &Path) -> Result<AlertBook, AlertsError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Durable at commit: the detection position must not run ahead of the alerts.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&conn)?;
        Ok(AlertBook {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}
