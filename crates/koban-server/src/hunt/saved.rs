//! Saved searches (named queries of one user in one tenant) and query history (every
//! query a user ran, with how long it took and what it found), in `alerts.db`.

use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

use crate::alerts::{AlertBook, AlertsError};

/// History rows kept per user; older ones are deleted as new ones arrive.
const HISTORY_KEPT: i64 = 500;

/// One query run, for the history.
pub struct Ran<'a> {
    pub tenant: &'a str,
    pub who: &'a str,
    pub query: &'a str,
    pub at_ms: i64,
    pub took_ms: i64,
    pub matched: Option<u64>,
    pub error: Option<&'a str>,
}

impl AlertBook {
    /// Saves (or replaces) a named search; returns its id.
    pub fn save_search(
        &self,
        tenant: &str,
        owner: &str,
        name: &str,
        query: &str,
        now_ms: i64,
    ) -> Result<i64, AlertsError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO saved_searches (tenant, owner, name, query, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant, owner, name) DO UPDATE SET query = excluded.query,
                 created_ms = excluded.created_ms",
            params![tenant, owner, name, query, now_ms],
        )?;
        Ok(conn.query_row(
            "SELECT id FROM saved_searches WHERE tenant = ?1 AND owner = ?2 AND name = ?3",
            params![tenant, owner, name],
            |r| r.get(0),
        )?)
    }

    /// The saved searches of one owner, in the tenants given (all when `None`).
    pub fn saved_searches(
        &self,
        owner: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<Value>, AlertsError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, tenant, name, query, created_ms FROM saved_searches
             WHERE owner = ?1 AND (?2 IS NULL OR tenant = ?2) ORDER BY name, id",
        )?;
        let rows = st.query_map(params![owner, tenant], |r| {
            Ok(json!({
                "id": r.get::<_, i64>(0)?, "tenant": r.get::<_, String>(1)?,
                "name": r.get::<_, String>(2)?, "query": r.get::<_, String>(3)?,
                "created_ms": r.get::<_, i64>(4)?,
            }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes one of the owner's saved searches; false when there was none.
    pub fn delete_search(&self, owner: &str, id: i64) -> Result<bool, AlertsError> {
        Ok(self.conn().execute(
            "DELETE FROM saved_searches WHERE id = ?1 AND owner = ?2",
            params![id, owner],
        )? > 0)
    }

    /// The tenant a saved search belongs to, if it is the owner's.
    pub fn saved_search_tenant(&self, owner: &str, id: i64) -> Result<Option<String>, AlertsError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT tenant FROM saved_searches WHERE id = ?1 AND owner = ?2",
                params![id, owner],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn log_query(&self, ran: &Ran<'_>) -> Result<(), AlertsError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO query_history (tenant, who, query, at_ms, took_ms, matched, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                ran.tenant,
                ran.who,
                ran.query,
                ran.at_ms,
                ran.took_ms,
                ran.matched.map(|m| m as i64),
                ran.error
            ],
        )?;
        conn.execute(
            "DELETE FROM query_history WHERE who = ?1 AND id <= (
                 SELECT id FROM query_history WHERE who = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            params![ran.who, HISTORY_KEPT],
        )?;
        Ok(())
    }

    /// A user's latest queries, newest first, in one tenant or all.
    pub fn query_history(
        &self,
        who: &str,
        tenant: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Value>, AlertsError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT tenant, query, at_ms, took_ms, matched, error FROM query_history
             WHERE who = ?1 AND (?2 IS NULL OR tenant = ?2) ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = st.query_map(params![who, tenant, limit as i64], |r| {
            Ok(json!({
                "tenant": r.get::<_, String>(0)?, "query": r.get::<_, String>(1)?,
                "at_ms": r.get::<_, i64>(2)?, "took_ms": r.get::<_, i64>(3)?,
                "matched": r.get::<_, Option<i64>>(4)?, "error": r.get::<_, Option<String>>(5)?,
            }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
