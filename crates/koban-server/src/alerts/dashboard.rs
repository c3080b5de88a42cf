//! Aggregates for the console's dashboard, over one tenant or all: alerts and incidents
//! per day (event time), open incidents by severity, top rules, hosts and users, and
//! ATT&CK tactic × technique counts.

use rusqlite::params;
use serde_json::{json, Value};

use super::{AlertBook, AlertsError};

const DAY_MS: i64 = 86_400_000;

impl AlertBook {
    /// How many alerts one tenant (or all) has: the console's live notice.
    pub fn alert_count(&self, tenant: Option<&str>) -> Result<i64, AlertsError> {
        Ok(self.conn().query_row(
            "SELECT count(*) FROM alerts WHERE ?1 IS NULL OR tenant = ?1",
            params![tenant],
            |r| r.get(0),
        )?)
    }

    pub fn dashboard(&self, tenant: Option<&str>) -> Result<Value, AlertsError> {
        let conn = self.conn();
        let pairs = |sql: &str| -> Result<Vec<(String, i64)>, AlertsError> {
            let mut st = conn.prepare_cached(sql)?;
            let rows = st.query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let days = |sql: &str| -> Result<Vec<(i64, i64)>, AlertsError> {
            let mut st = conn.prepare_cached(sql)?;
            let rows = st.query_map(params![tenant, DAY_MS], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut v: Vec<(i64, i64)> = rows.collect::<Result<_, _>>()?;
            v.reverse();
            Ok(v)
        };
        let alerts_per_day = days(
            "SELECT first_event_ms / ?2 * ?2 AS d, count(*) FROM alerts
             WHERE ?1 IS NULL OR tenant = ?1 GROUP BY d ORDER BY d DESC LIMIT 30",
        )?;
        let incidents_per_day = days(
            "SELECT first_event_ms / ?2 * ?2 AS d, count(*) FROM incidents
             WHERE ?1 IS NULL OR tenant = ?1 GROUP BY d ORDER BY d DESC LIMIT 30",
        )?;
        let by_severity = pairs(
            "SELECT severity, count(*) FROM incidents
             WHERE (?1 IS NULL OR tenant = ?1) AND state != 'closed' GROUP BY severity",
        )?;
        let top_rules = pairs(
            "SELECT title, sum(count) AS n FROM alerts WHERE ?1 IS NULL OR tenant = ?1
             GROUP BY rule_key ORDER BY n DESC LIMIT 10",
        )?;
        let top_hosts = pairs(
            "SELECT lower(json_extract(entities, '$.host')) AS h, count(*) AS n FROM alerts
             WHERE (?1 IS NULL OR tenant = ?1) AND h IS NOT NULL GROUP BY h ORDER BY n DESC LIMIT 10",
        )?;
        let top_users = pairs(
            "SELECT json_extract(entities, '$.user') AS u, count(*) AS n FROM alerts
             WHERE (?1 IS NULL OR tenant = ?1) AND u IS NOT NULL GROUP BY lower(u) ORDER BY n DESC LIMIT 10",
        )?;
        let mut st = conn.prepare_cached(
            "SELECT ta.value, te.value, count(*) FROM alerts,
                 json_each(alerts.tactics) AS ta, json_each(alerts.techniques) AS te
             WHERE ?1 IS NULL OR alerts.tenant = ?1 GROUP BY 1, 2",
        )?;
        let heat: Vec<Value> = st
            .query_map(params![tenant], |r| {
                Ok(json!([
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?
                ]))
            })?
            .collect::<Result<_, _>>()?;
        Ok(json!({
            "alerts_per_day": alerts_per_day,
            "incidents_per_day": incidents_per_day,
            "open_by_severity": by_severity,
            "top_rules": top_rules,
            "top_hosts": top_hosts,
            "top_users": top_users,
            "heat": heat,
        }))
    }
}
