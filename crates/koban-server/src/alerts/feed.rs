//! What response reads of `alerts.db`: new alerts and incidents in id order (playbook
//! triggers), a host's recent history (enrichment), and the copy of response steps
//! into incident timelines.

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::{AlertBook, AlertsError};

/// One response step to land in an incident's timeline.
#[derive(Debug, Clone)]
pub struct ResponseStep {
    /// Its id in `response_log` (the copy's cursor).
    pub id: i64,
    pub tenant: String,
    pub incident: i64,
    pub at_ms: i64,
    pub who: String,
    pub detail: Value,
}

impl AlertBook {
    /// The highest alert (or incident) id so far; 0 when there is none.
    pub fn max_id(&self, incidents: bool) -> Result<i64, AlertsError> {
        let sql = if incidents {
            "SELECT COALESCE(MAX(id), 0) FROM incidents"
        } else {
            "SELECT COALESCE(MAX(id), 0) FROM alerts"
        };
        Ok(self.conn().query_row(sql, [], |r| r.get(0))?)
    }

    /// Alerts with ids above `after`, oldest first, each as the API shows it.
    pub fn alerts_after(&self, after: i64, limit: usize) -> Result<Vec<Value>, AlertsError> {
        let ids = self.ids_after("alerts", after, limit)?;
        ids.into_iter()
            .filter_map(|id| self.alert(id).transpose())
            .collect()
    }

    /// Incidents with ids above `after`, oldest first.
    pub fn incidents_after(&self, after: i64, limit: usize) -> Result<Vec<Value>, AlertsError> {
        let ids = self.ids_after("incidents", after, limit)?;
        let now = crate::state::now_ms();
        ids.into_iter()
            .filter_map(|id| self.incident(id, now).transpose())
            .collect()
    }

    fn ids_after(&self, table: &str, after: i64, limit: usize) -> Result<Vec<i64>, AlertsError> {
        let conn = self.conn();
        let mut q = conn.prepare(&format!(
            "SELECT id FROM {table} WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = q.query_map(params![after, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A host's alerts since `since_ms` and its incidents not closed.
    pub fn host_history(
        &self,
        tenant: &str,
        host: &str,
        since_ms: i64,
    ) -> Result<(i64, i64), AlertsError> {
        let conn = self.conn();
        let alerts: i64 = conn.query_row(
            "SELECT COUNT(*) FROM alerts WHERE tenant = ?1 AND last_event_ms >= ?3
               AND lower(json_extract(entities, '$.host')) = lower(?2)",
            params![tenant, host, since_ms],
            |r| r.get(0),
        )?;
        let open: i64 = conn.query_row(
            "SELECT COUNT(DISTINCT e.incident_id) FROM incident_entities e
               JOIN incidents i ON i.id = e.incident_id
             WHERE e.tenant = ?1 AND e.kind = 'host' AND e.value = lower(?2)
               AND i.state != 'closed'",
            params![tenant, host],
            |r| r.get(0),
        )?;
        Ok((alerts, open))
    }

    /// The last response step copied into a timeline.
    pub fn response_cursor(&self) -> Result<i64, AlertsError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT last_id FROM response_copied WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Writes the steps into their incidents' logs (an incident of another tenant, or
    /// none, is skipped) and moves the cursor to `through`, in one transaction: each
    /// step lands once.
    pub fn copy_response_steps(
        &self,
        steps: &[ResponseStep],
        through: i64,
    ) -> Result<usize, AlertsError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut n = 0;
        for s in steps {
            let owner: Option<String> = tx
                .query_row(
                    "SELECT tenant FROM incidents WHERE id = ?1",
                    [s.incident],
                    |r| r.get(0),
                )
                .optional()?;
            if owner.as_deref() != Some(s.tenant.as_str()) {
                continue;
            }
            tx.execute(
                "INSERT INTO incident_log (incident_id, at_ms, who, kind, detail)
                 VALUES (?1, ?2, ?3, 'response', ?4)",
                params![s.incident, s.at_ms, s.who, s.detail.to_string()],
            )?;
            tx.execute(
                "UPDATE incidents SET updated_ms = MAX(updated_ms, ?2) WHERE id = ?1",
                params![s.incident, s.at_ms],
            )?;
            n += 1;
        }
        tx.execute(
            "INSERT INTO response_copied (id, last_id) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET last_id = MAX(last_id, ?1)",
            [through],
        )?;
        tx.commit()?;
        Ok(n)
    }
}

/// The entities of an alert (`entities`) or an incident (the first of each `scope`).
pub fn subject_entities(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(m) = v["entities"].as_object() {
        for (k, e) in m {
            if let Some(s) = e.as_str() {
                out.push((k.clone(), s.to_owned()));
            }
        }
    } else if let Some(m) = v["scope"].as_object() {
        for (k, list) in m {
            if let Some(s) = list.get(0).and_then(Value::as_str) {
                out.push((k.clone(), s.to_owned()));
            }
        }
    }
    out
}
