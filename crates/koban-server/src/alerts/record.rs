//! Detections into alerts and incidents, in one transaction with the detection
//! position (the WAL sequence detected up to) and the open correlation windows.
//!
//! - A detection whose rule and entities match an alert of the same tenant whose events
//!   lie within the dedup window of it folds into that alert: its counter goes up, its
//!   time span widens, its first events are kept as evidence.
//! - A new alert joins the most recent open incident of its tenant that shares a
//!   grouping entity (host, else a person's account, else an address) and whose events
//!   lie within the incident window; otherwise it opens a new incident.
//! - Every incident touched is re-assessed (severity, impact, urgency with reasons;
//!   tactics in kill-chain order; scope) from all its alerts.

use std::collections::{BTreeMap, BTreeSet};

use koban_detect::assess::{assess, kill_chain_order, Facts, Grade};
use koban_detect::entities::{user_key, Entities};
use koban_detect::Found;
use koban_sigma::Level;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::json;

use super::policy::glob;
use super::{dashboard, AlertBook, AlertsError, EventRef};

/// The windows of folding and grouping.
#[derive(Debug, Clone, Copy)]
pub struct Grouping {
    /// Repeats of one rule on the same entities within this much event time of an
    /// alert's events fold into it.
    pub dedup_window_ms: i64,
    /// Alerts sharing an entity within this much event time of an open incident's
    /// events join it.
    pub incident_window_ms: i64,
    /// Evidence rows kept per alert (its counter has them all).
    pub max_events_per_alert: i64,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            dedup_window_ms: 3_600_000,
            incident_window_ms: 4 * 3_600_000,
            max_events_per_alert: 100,
        }
    }
}

/// One detection ready to record: the tenant, the level after the tenant's override.
#[derive(Debug, Clone)]
pub struct Detected {
    pub tenant: String,
    pub level: Level,
    pub found: Found<EventRef>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordReport {
    pub detections: u64,
    pub new_alerts: u64,
    pub folded: u64,
    pub new_incidents: u64,
    /// Retro-hunt detections of events an alert of the same rule already held.
    pub already_alerted: u64,
}

/// `rule|source|kind=value|...`: what makes two detections the same alert. The source
/// is part of it: two sensors reporting the same thing are two reports.
fn dedup_key(rule: &str, source: &str, e: &Entities) -> String {
    let mut k = format!("{rule}|{source}");
    for (kind, v) in e.pairs() {
        k.push('|');
        k.push_str(kind);
        k.push('=');
        k.push_str(&v.to_lowercase());
    }
    k
}

/// The keys an alert groups by: host and person, else addresses, else its rule.
fn grouping_keys(rule: &str, e: &Entities) -> Vec<(&'static str, String)> {
    let mut keys = e.grouping_keys();
    if keys.is_empty() {
        for (kind, v) in [("src_ip", &e.src_ip), ("dst_ip", &e.dst_ip)] {
            if let Some(v) = v {
                keys.push((kind, v.to_lowercase()));
            }
        }
    }
    if keys.is_empty() {
        keys.push(("rule", rule.to_owned()));
    }
    keys
}

impl AlertBook {
    /// The WAL sequence number detection has recorded up to, and the saved correlation
    /// windows (JSON) that go with it.
    pub fn detection_position(&self) -> Result<(u64, String), AlertsError> {
        let conn = self.conn();
        Ok(conn.query_row(
            "SELECT seq, windows FROM detection_position WHERE id = 1",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
        )?)
    }

    /// Records the detections of the WAL records up to `seq`, with the correlation
    /// windows open after them. All or nothing.
    pub fn record(
        &self,
        detected: &[Detected],
        seq: u64,
        windows: &str,
        g: &Grouping,
        now_ms: i64,
    ) -> Result<RecordReport, AlertsError> {
        self.record_in(detected, Some((seq, windows)), false, g, now_ms)
    }

    /// Records detections of a retro-hunt: new alerts are marked retroactive, and a
    /// detection of an event some alert of the same rule already holds is skipped
    /// (nobody is told twice about one event). The detection position is untouched.
    pub fn record_retro(
        &self,
        detected: &[Detected],
        g: &Grouping,
        now_ms: i64,
    ) -> Result<RecordReport, AlertsError> {
        self.record_in(detected, None, true, g, now_ms)
    }

    fn record_in(
        &self,
        detected: &[Detected],
        position: Option<(u64, &str)>,
        retro: bool,
        g: &Grouping,
        now_ms: i64,
    ) -> Result<RecordReport, AlertsError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut report = RecordReport::default();
        let mut touched = BTreeSet::new();
        for d in detected {
            report.detections += 1;
            if retro && already_alerted(&tx, d)? {
                report.already_alerted += 1;
                continue;
            }
            record_one(&tx, d, g, now_ms, retro, &mut report, &mut touched)?;
        }
        for id in touched {
            refresh_incident(&tx, id, now_ms)?;
        }
        if let Some((seq, windows)) = position {
            tx.execute(
                "UPDATE detection_position SET seq = ?1, windows = ?2 WHERE id = 1",
                params![seq as i64, windows],
            )?;
        }
        tx.commit()?;
        Ok(report)
    }
}

/// Whether an alert of this tenant and rule already holds one of the detection's
/// events (its evidence rows, or an earlier retro-hunt's record of it). For a
/// correlation any of its signals counts: the live stage may have fired it at another
/// of the same events.
fn already_alerted(tx: &Transaction<'_>, d: &Detected) -> Result<bool, AlertsError> {
    let Some(e) = d.found.evidence.last() else {
        return Ok(false);
    };
    let mut held = tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM alert_events ae JOIN alerts a ON a.id = ae.alert_id
         WHERE ae.source = ?1 AND ae.seq = ?2 AND ae.sub = ?3
           AND a.tenant = ?4 AND a.rule_key = ?5)",
    )?;
    for ev in &d.found.evidence {
        let found: bool = held.query_row(
            params![ev.source, ev.seq as i64, ev.sub, d.tenant, d.found.rule.key],
            |r| r.get(0),
        )?;
        if found {
            return Ok(true);
        }
    }
    drop(held);
    let fresh = tx
        .prepare_cached("INSERT OR IGNORE INTO retro_seen VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![
            d.tenant,
            d.found.rule.key,
            e.source,
            e.seq as i64,
            e.sub
        ])?;
    Ok(fresh == 0)
}

fn record_one(
    tx: &Transaction<'_>,
    d: &Detected,
    g: &Grouping,
    now_ms: i64,
    retro: bool,
    report: &mut RecordReport,
    touched: &mut BTreeSet<i64>,
) -> Result<(), AlertsError> {
    let f = &d.found;
    let received = f
        .evidence
        .iter()
        .map(|e| e.received_ms)
        .min()
        .unwrap_or(now_ms);
    let t = f.time.unwrap_or(received);
    let source = f
        .evidence
        .last()
        .map(|e| e.source.as_str())
        .unwrap_or_default();
    // The live stage's raw detections (what the hunt over the same files reports); a
    // retro-hunt reports its own.
    if !retro {
        tx.execute(
            "INSERT INTO detection_counts VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (tenant, source, rule_key) DO UPDATE SET count = count + 1",
            params![d.tenant, source, f.rule.key],
        )?;
    }
    let key = dedup_key(&f.rule.key, source, &f.entities);
    let existing: Option<(i64, i64, i64, Option<i64>, i64, bool)> = tx
        .query_row(
            "SELECT id, first_event_ms, last_event_ms, incident_id, count, retro FROM alerts
             WHERE tenant = ?1 AND dedup_key = ?2 ORDER BY id DESC LIMIT 1",
            params![d.tenant, key],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?;
    if let Some((id, first, last, incident, count, was_retro)) = existing {
        if t >= first - g.dedup_window_ms && t <= last + g.dedup_window_ms {
            // A live alert of the same rule on the same entities at that time already
            // counted the live stage's detections: a retro-hunt re-finding one of its
            // events (past the evidence kept) adds nothing.
            if retro && !was_retro {
                report.already_alerted += 1;
                return Ok(());
            }
            tx.execute(
                "UPDATE alerts SET count = count + 1, first_event_ms = min(first_event_ms, ?2),
                 last_event_ms = max(last_event_ms, ?2), updated_ms = ?3 WHERE id = ?1",
                params![id, t, now_ms],
            )?;
            let room = (g.max_events_per_alert - count).max(0) as usize;
            insert_events(tx, id, f, room)?;
            if let Some(i) = incident {
                touched.insert(i);
            }
            dashboard::count_fold(tx, &d.tenant, f)?;
            report.folded += 1;
            return Ok(());
        }
    }
    tx.execute(
        "INSERT INTO alerts (tenant, rule_key, title, level, tactics, techniques, entities,
             dedup_key, why, correlation, source, first_event_ms, last_event_ms,
             first_received_ms, created_ms, updated_ms, count, retro)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?14, 1, ?15)",
        params![
            d.tenant,
            f.rule.key,
            f.rule.title,
            d.level.as_str(),
            serde_json::to_string(&f.rule.tactics)?,
            serde_json::to_string(&f.rule.techniques)?,
            serde_json::to_string(&f.entities)?,
            key,
            f.why,
            f.correlation,
            source,
            t,
            received,
            now_ms,
            retro
        ],
    )?;
    let alert = tx.last_insert_rowid();
    insert_events(tx, alert, f, g.max_events_per_alert as usize)?;
    dashboard::count_new_alert(tx, &d.tenant, f, t)?;
    report.new_alerts += 1;
    let keys = grouping_keys(&f.rule.key, &f.entities);
    let incident = match find_incident(tx, &d.tenant, &keys, t, g)? {
        Some(i) => i,
        None => {
            report.new_incidents += 1;
            dashboard::count_new_incident(tx, &d.tenant, t)?;
            open_incident(tx, &d.tenant, t, received, now_ms)?
        }
    };
    tx.execute(
        "UPDATE alerts SET incident_id = ?1 WHERE id = ?2",
        params![incident, alert],
    )?;
    for (kind, value) in &keys {
        tx.execute(
            "INSERT OR IGNORE INTO incident_entities VALUES (?1, ?2, ?3, ?4)",
            params![incident, d.tenant, kind, value],
        )?;
    }
    touched.insert(incident);
    Ok(())
}

fn insert_events(
    tx: &Transaction<'_>,
    alert: i64,
    f: &Found<EventRef>,
    room: usize,
) -> Result<(), AlertsError> {
    let mut st = tx.prepare_cached("INSERT INTO alert_events VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
    for e in f.evidence.iter().take(room) {
        st.execute(params![
            alert,
            e.source,
            e.seq as i64,
            e.sub,
            f.time,
            e.received_ms
        ])?;
    }
    Ok(())
}

fn find_incident(
    tx: &Transaction<'_>,
    tenant: &str,
    keys: &[(&'static str, String)],
    t: i64,
    g: &Grouping,
) -> Result<Option<i64>, AlertsError> {
    let mut st = tx.prepare_cached(
        "SELECT i.id FROM incident_entities e JOIN incidents i ON i.id = e.incident_id
         WHERE e.tenant = ?1 AND e.kind = ?2 AND e.value = ?3 AND i.state != 'closed'
           AND i.last_event_ms >= ?4 AND i.first_event_ms <= ?5
         ORDER BY i.id DESC LIMIT 1",
    )?;
    for (kind, value) in keys {
        let found: Option<i64> = st
            .query_row(
                params![
                    tenant,
                    kind,
                    value,
                    t - g.incident_window_ms,
                    t + g.incident_window_ms
                ],
                |r| r.get(0),
            )
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

fn open_incident(
    tx: &Transaction<'_>,
    tenant: &str,
    t: i64,
    received: i64,
    now_ms: i64,
) -> Result<i64, AlertsError> {
    tx.execute(
        "INSERT INTO incidents (tenant, title, state, first_event_ms, last_event_ms,
             first_received_ms, created_ms, updated_ms, severity, impact, urgency,
             assessment, tactics, scope, alert_count)
         VALUES (?1, '', 'new', ?2, ?2, ?3, ?4, ?4, 'low', 'low', 'low', '{}', '[]', '{}', 0)",
        params![tenant, t, received, now_ms],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO incident_log (incident_id, at_ms, who, kind, detail)
         VALUES (?1, ?2, 'koban', 'created', 'opened by detection')",
        params![id, now_ms],
    )?;
    Ok(id)
}

/// At most this many values per scope list.
const SCOPE_CAP: usize = 100;

/// Recomputes an incident's title, span, tactics, scope and assessment from its alerts.
fn refresh_incident(tx: &Transaction<'_>, id: i64, now_ms: i64) -> Result<(), AlertsError> {
    let tenant: String = tx.query_row("SELECT tenant FROM incidents WHERE id = ?1", [id], |r| {
        r.get(0)
    })?;
    let mut st = tx.prepare_cached(
        "SELECT level, title, tactics, entities, first_event_ms, last_event_ms,
                first_received_ms, rule_key
         FROM alerts WHERE incident_id = ?1",
    )?;
    let mut top: Option<(Level, String)> = None;
    let mut tactics = BTreeSet::new();
    let mut scope: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    let mut first_received = i64::MAX;
    let mut rules = BTreeSet::new();
    let mut n = 0i64;
    let mut rows = st.query([id])?;
    while let Some(r) = rows.next()? {
        n += 1;
        let level = Level::parse(&r.get::<_, String>(0)?).unwrap_or(Level::Medium);
        let title: String = r.get(1)?;
        if top.as_ref().is_none_or(|(l, _)| level > *l) {
            top = Some((level, title));
        }
        let ts: Vec<String> = serde_json::from_str(&r.get::<_, String>(2)?)?;
        tactics.extend(ts);
        let e: Entities = serde_json::from_str(&r.get::<_, String>(3)?)?;
        for (kind, v) in e.pairs() {
            let set = scope.entry(kind).or_default();
            if set.len() < SCOPE_CAP {
                set.insert(if kind == "user" {
                    user_key(v)
                } else if kind == "host" {
                    v.to_lowercase()
                } else {
                    v.to_owned()
                });
            }
        }
        first = first.min(r.get(4)?);
        last = last.max(r.get(5)?);
        first_received = first_received.min(r.get(6)?);
        rules.insert(r.get::<_, String>(7)?);
    }
    drop(rows);
    let Some((top_level, top_title)) = top else {
        return Ok(());
    };
    let hosts: Vec<String> = scope.get("host").into_iter().flatten().cloned().collect();
    let users: Vec<String> = scope.get("user").into_iter().flatten().cloned().collect();
    let chain = kill_chain_order(tactics.iter().map(String::as_str));
    let facts = Facts {
        top_level,
        top_rule: &top_title,
        tactics: &chain,
        hosts: &hosts,
        users: &users,
        critical_asset: critical_asset(tx, &tenant, &hosts, &users)?,
    };
    let a = assess(&facts);
    let on = hosts
        .first()
        .or(users.first())
        .map(|x| format!(" on {x}"))
        .unwrap_or_default();
    let more = if rules.len() > 1 {
        format!(" and {} more rules", rules.len() - 1)
    } else {
        String::new()
    };
    let title = format!("{top_title}{on}{more}");
    let scope_json = json!(scope);
    tx.execute(
        "UPDATE incidents SET title = ?2, first_event_ms = ?3, last_event_ms = ?4,
             first_received_ms = ?5, updated_ms = ?6, severity = ?7, impact = ?8,
             urgency = ?9, assessment = ?10, tactics = ?11, scope = ?12, alert_count = ?13
         WHERE id = ?1",
        params![
            id,
            title,
            first,
            last,
            first_received,
            now_ms,
            a.severity.grade.as_str(),
            a.impact.grade.as_str(),
            a.urgency.grade.as_str(),
            serde_json::to_string(&a)?,
            serde_json::to_string(&chain)?,
            scope_json.to_string(),
            n
        ],
    )?;
    Ok(())
}

/// The most critical configured asset group any of the hosts or users is in.
fn critical_asset(
    tx: &Transaction<'_>,
    tenant: &str,
    hosts: &[String],
    users: &[String],
) -> Result<Option<(Grade, String, String)>, AlertsError> {
    let mut st = tx.prepare_cached(
        "SELECT name, kind, pattern, criticality FROM asset_groups WHERE tenant = ?1",
    )?;
    let groups: Vec<(String, String, String, String)> = st
        .query_map([tenant], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut best: Option<(Grade, String, String)> = None;
    for (name, kind, pattern, crit) in groups {
        let Some(grade) = Grade::parse(&crit) else {
            continue;
        };
        let pattern = pattern.to_lowercase();
        let candidates = if kind == "host" { hosts } else { users };
        if let Some(hit) = candidates.iter().find(|c| glob(&pattern, c)) {
            if best.as_ref().is_none_or(|(g, _, _)| grade > *g) {
                best = Some((grade, name, hit.clone()));
            }
        }
    }
    Ok(best)
}
