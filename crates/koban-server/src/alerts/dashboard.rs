//! Aggregates for the console's dashboard, over one tenant or all: alerts and incidents
//! per day (event time), open incidents by severity, top rules, hosts and users, and
//! ATT&CK tactic × technique counts — read from counters that recording keeps
//! (`dash_counts`), so the page costs the same with 100 or 100,000 alerts.

use koban_detect::Found;
use rusqlite::{params, Transaction};
use serde_json::{json, Value};

use super::{AlertBook, AlertsError, EventRef};

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
        // The largest counters of one kind, summed over the tenants in scope.
        let top = |kind: &str, limit: i64| -> Result<Vec<(String, String, i64)>, AlertsError> {
            let mut st = conn.prepare_cached(
                "SELECT key, max(label), sum(n) AS total FROM dash_counts
                 WHERE kind = ?2 AND (?1 IS NULL OR tenant = ?1)
                 GROUP BY key ORDER BY total DESC, key LIMIT ?3",
            )?;
            let rows = st.query_map(params![tenant, kind, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let days = |kind: &str| -> Result<Vec<(i64, i64)>, AlertsError> {
            let mut st = conn.prepare_cached(
                "SELECT CAST(key AS INTEGER) AS d, sum(n) FROM dash_counts
                 WHERE kind = ?2 AND (?1 IS NULL OR tenant = ?1)
                 GROUP BY d ORDER BY d DESC LIMIT 30",
            )?;
            let rows = st.query_map(params![tenant, kind], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut v: Vec<(i64, i64)> = rows.collect::<Result<_, _>>()?;
            v.reverse();
            Ok(v)
        };
        let labelled = |rows: Vec<(String, String, i64)>| -> Vec<(String, i64)> {
            rows.into_iter()
                .map(|(k, label, n)| (if label.is_empty() { k } else { label }, n))
                .collect()
        };
        let alerts_per_day = days("alert_day")?;
        let incidents_per_day = days("incident_day")?;
        let mut st = conn.prepare_cached(
            "SELECT severity, count(*) FROM incidents
             WHERE (?1 IS NULL OR tenant = ?1) AND state != 'closed' GROUP BY severity",
        )?;
        let by_severity: Vec<(String, i64)> = st
            .query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let top_rules = labelled(top("rule", 10)?);
        let top_hosts = labelled(top("host", 10)?);
        let top_users = labelled(top("user", 10)?);
        let heat: Vec<Value> = top("heat", 10_000)?
            .into_iter()
            .filter_map(|(k, _, n)| {
                let (tactic, technique) = k.split_once('\t')?;
                Some(json!([tactic, technique, n]))
            })
            .collect();
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

/// Adds `by` to one dashboard counter, inside the recording transaction.
fn bump(
    tx: &Transaction<'_>,
    tenant: &str,
    kind: &str,
    key: &str,
    label: &str,
    by: i64,
) -> Result<(), AlertsError> {
    tx.prepare_cached(
        "INSERT INTO dash_counts VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant, kind, key) DO UPDATE SET n = n + excluded.n",
    )?
    .execute(params![tenant, kind, key, label, by])?;
    Ok(())
}

fn day(t_ms: i64) -> String {
    (t_ms.div_euclid(DAY_MS) * DAY_MS).to_string()
}

/// A new alert at event time `t`: its day, rule, host, user and ATT&CK cells.
pub(super) fn count_new_alert(
    tx: &Transaction<'_>,
    tenant: &str,
    f: &Found<EventRef>,
    t: i64,
) -> Result<(), AlertsError> {
    bump(tx, tenant, "alert_day", &day(t), "", 1)?;
    count_fold(tx, tenant, f)?;
    if let Some(h) = &f.entities.host {
        bump(tx, tenant, "host", &h.to_lowercase(), "", 1)?;
    }
    if let Some(u) = &f.entities.user {
        bump(tx, tenant, "user", &u.to_lowercase(), u, 1)?;
    }
    for ta in &f.rule.tactics {
        for te in &f.rule.techniques {
            bump(tx, tenant, "heat", &format!("{ta}\t{te}"), "", 1)?;
        }
    }
    Ok(())
}

/// A detection folded into an alert: the top rules count detections, not alerts.
pub(super) fn count_fold(
    tx: &Transaction<'_>,
    tenant: &str,
    f: &Found<EventRef>,
) -> Result<(), AlertsError> {
    bump(tx, tenant, "rule", &f.rule.key, &f.rule.title, 1)
}

pub(super) fn count_new_incident(
    tx: &Transaction<'_>,
    tenant: &str,
    t: i64,
) -> Result<(), AlertsError> {
    bump(tx, tenant, "incident_day", &day(t), "", 1)
}

#[cfg(test)]
mod tests {
    use koban_detect::entities::Entities;
    use koban_detect::stream::RuleRef;
    use koban_sigma::Level;

    use super::super::{AlertBook, Detected, EventRef, Grouping};
    use super::*;

    fn detection(tenant: &str, rule: &str, host: &str, user: &str, t: i64, seq: u64) -> Detected {
        let tactics = vec!["execution".to_owned(), "discovery".to_owned()];
        Detected {
            tenant: tenant.into(),
            level: Level::High,
            found: Found {
                rule: RuleRef {
                    key: rule.into(),
                    title: format!("Title of {rule}"),
                    level: Level::High,
                    tactics,
                    techniques: vec!["T1059".into()],
                },
                time: Some(t),
                entities: Entities {
                    host: Some(host.into()),
                    user: Some(user.into()),
                    ..Entities::default()
                },
                why: "test".into(),
                correlation: false,
                count: 1,
                evidence: vec![EventRef {
                    source: "s".into(),
                    seq,
                    sub: 0,
                    received_ms: t,
                }],
            },
        }
    }

    /// What the counters must say, computed by scanning every alert.
    fn scanned(book: &AlertBook, tenant: Option<&str>) -> Value {
        let conn = book.conn();
        let q = |sql: &str| -> Vec<(String, i64)> {
            let mut st = conn.prepare(sql).unwrap();
            st.query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        json!({
            "rules": q("SELECT title, sum(count) AS n FROM alerts WHERE ?1 IS NULL OR tenant = ?1
                        GROUP BY rule_key ORDER BY n DESC, rule_key LIMIT 10"),
            "hosts": q("SELECT lower(json_extract(entities, '$.host')) AS h, count(*) AS n FROM alerts
                        WHERE ?1 IS NULL OR tenant = ?1 GROUP BY h ORDER BY n DESC, h LIMIT 10"),
            "days": q("SELECT CAST(first_event_ms / 86400000 * 86400000 AS TEXT) AS d, count(*) FROM alerts
                       WHERE ?1 IS NULL OR tenant = ?1 GROUP BY d ORDER BY d"),
            "incident_days": q("SELECT CAST(first_event_ms / 86400000 * 86400000 AS TEXT) AS d, count(*)
                       FROM incidents WHERE ?1 IS NULL OR tenant = ?1 GROUP BY d ORDER BY d"),
        })
    }

    fn counted(book: &AlertBook, tenant: Option<&str>) -> Value {
        let d = book.dashboard(tenant).unwrap();
        let days = |k: &str| -> Vec<(String, i64)> {
            d[k].as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_i64().unwrap().to_string(), p[1].as_i64().unwrap()))
                .collect()
        };
        json!({
            "rules": d["top_rules"], "hosts": d["top_hosts"],
            "days": days("alerts_per_day"), "incident_days": days("incidents_per_day"),
        })
    }

    #[test]
    fn counters_agree_with_a_scan_of_every_alert_and_survive_the_backfill() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.db");
        let book = AlertBook::open(&path).unwrap();
        let g = Grouping::default();
        let day = 86_400_000;
        let mut batch = Vec::new();
        for i in 0..300u64 {
            let tenant = ["a", "b"][(i % 2) as usize];
            let rule = format!("r{}", i % 7);
            let host = format!("WS{}", i % 13);
            let user = format!("u{}", i % 5);
            // Repeats within the dedup window fold; days apart they open new alerts.
            let t = 1_700_000_000_000 + (i as i64 % 4) * day + (i as i64 / 40) * 3 * day;
            batch.push(detection(tenant, &rule, &host, &user, t, 2 * i));
            if i % 3 == 0 {
                batch.push(detection(
                    tenant,
                    &rule,
                    &host,
                    &user,
                    t + 60_000,
                    2 * i + 1,
                ));
            }
        }
        let report = book.record(&batch, 600, "[]", &g, 0).unwrap();
        assert!(report.folded >= 100, "{report:?}");
        for tenant in [None, Some("a"), Some("b")] {
            assert_eq!(counted(&book, tenant), scanned(&book, tenant), "{tenant:?}");
        }
        let heat = book.dashboard(None).unwrap()["heat"].clone();
        let cells: i64 = heat
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[2].as_i64().unwrap())
            .sum();
        let alerts: i64 = book.alert_count(None).unwrap();
        assert_eq!(cells, alerts * 2, "two tactics × one technique per alert");

        // A database from before the counters: drop them and migrate again.
        let before = counted(&book, None);
        drop(book);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE dash_counts; DROP INDEX alerts_tenant_id; PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);
        let book = AlertBook::open(&path).unwrap();
        assert_eq!(counted(&book, None), before);
    }
}
