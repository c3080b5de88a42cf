//! The tables of `alerts.db` and their migrations (`PRAGMA user_version` counts them).

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &["
    -- How far detection got in the WAL, and its open correlation windows (JSON).
    CREATE TABLE detection_position (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        windows TEXT NOT NULL
    );
    INSERT INTO detection_position VALUES (1, 0, '[]');
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        title TEXT NOT NULL,
        state TEXT NOT NULL,
        assignee TEXT,
        first_event_ms INTEGER NOT NULL,
        last_event_ms INTEGER NOT NULL,
        first_received_ms INTEGER,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        severity TEXT NOT NULL,
        impact TEXT NOT NULL,
        urgency TEXT NOT NULL,
        assessment TEXT NOT NULL,
        tactics TEXT NOT NULL,
        scope TEXT NOT NULL,
        alert_count INTEGER NOT NULL,
        acknowledged_ms INTEGER,
        contained_ms INTEGER,
        resolved_ms INTEGER
    );
    CREATE INDEX incidents_tenant ON incidents(tenant, state, last_event_ms);
    -- The grouping keys (host, user, ...) of an incident's alerts.
    CREATE TABLE incident_entities (
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (incident_id, kind, value)
    );
    CREATE INDEX incident_entities_lookup ON incident_entities(tenant, kind, value);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        rule_key TEXT NOT NULL,
        title TEXT NOT NULL,
        level TEXT NOT NULL,
        tactics TEXT NOT NULL,
        techniques TEXT NOT NULL,
        entities TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        why TEXT NOT NULL,
        correlation INTEGER NOT NULL,
        source TEXT NOT NULL,
        first_event_ms INTEGER NOT NULL,
        last_event_ms INTEGER NOT NULL,
        first_received_ms INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        incident_id INTEGER REFERENCES incidents(id),
        verdict TEXT,
        verdict_reason TEXT,
        verdict_by TEXT,
        verdict_ms INTEGER,
        retro INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX alerts_dedup ON alerts(tenant, dedup_key, id);
    CREATE INDEX alerts_incident ON alerts(incident_id);
    CREATE INDEX alerts_rule ON alerts(tenant, rule_key);
    -- The matching events of an alert (the first ones; `count` has them all).
    CREATE TABLE alert_events (
        alert_id INTEGER NOT NULL REFERENCES alerts(id),
        source TEXT NOT NULL,
        seq INTEGER NOT NULL,
        sub INTEGER NOT NULL,
        event_ms INTEGER,
        received_ms INTEGER NOT NULL
    );
    CREATE INDEX alert_events_alert ON alert_events(alert_id);
    -- Raw detections per tenant, source and rule, before folding (what the hunt over
    -- the same files reports).
    CREATE TABLE detection_counts (
        tenant TEXT NOT NULL,
        source TEXT NOT NULL,
        rule_key TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (tenant, source, rule_key)
    );
    -- The case record: every state change, assignment, verdict, comment, evidence
    -- link and task, with who and when.
    CREATE TABLE incident_log (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        at_ms INTEGER NOT NULL,
        who TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX incident_log_incident ON incident_log(incident_id, id);
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        title TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        done_ms INTEGER,
        done_by TEXT
    );
    CREATE TABLE rule_overrides (
        tenant TEXT NOT NULL,
        rule_key TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        level TEXT,
        updated_ms INTEGER NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (tenant, rule_key)
    );
    CREATE TABLE rule_exceptions (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        rule_key TEXT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        expires_ms INTEGER,
        reason TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        created_by TEXT NOT NULL
    );
    CREATE TABLE asset_groups (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('host', 'user')),
        pattern TEXT NOT NULL,
        criticality TEXT NOT NULL
    );
    CREATE TABLE sla_targets (
        tenant TEXT NOT NULL,
        severity TEXT NOT NULL,
        detect_s INTEGER NOT NULL,
        acknowledge_s INTEGER NOT NULL,
        contain_s INTEGER NOT NULL,
        resolve_s INTEGER NOT NULL,
        PRIMARY KEY (tenant, severity)
    );
    -- Bumped on every policy change; the detection stage reloads when it moves.
    CREATE TABLE policy_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
    INSERT INTO policy_version VALUES (1, 0);
", "
    -- The dashboard's aggregates, kept up to date in the transaction that records
    -- detections, so the dashboard reads a few rows instead of scanning every alert.
    -- kind: alert_day / incident_day (key = day start ms), rule (label = title), host,
    -- user (label = the first spelling seen), heat (key = tactic TAB technique).
    CREATE TABLE dash_counts (
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        label TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (tenant, kind, key)
    ) WITHOUT ROWID;
    CREATE INDEX dash_counts_kind ON dash_counts(kind, tenant, n);
    INSERT INTO dash_counts
        SELECT tenant, 'alert_day', first_event_ms / 86400000 * 86400000 AS d, '', count(*)
        FROM alerts GROUP BY tenant, d;
    INSERT INTO dash_counts
        SELECT tenant, 'incident_day', first_event_ms / 86400000 * 86400000 AS d, '', count(*)
        FROM incidents GROUP BY tenant, d;
    INSERT INTO dash_counts
        SELECT tenant, 'rule', rule_key, max(title), sum(count) FROM alerts GROUP BY tenant, rule_key;
    INSERT INTO dash_counts
        SELECT tenant, 'host', lower(json_extract(entities, '$.host')) AS h, '', count(*)
        FROM alerts WHERE h IS NOT NULL GROUP BY tenant, h;
    INSERT INTO dash_counts
        SELECT tenant, 'user', lower(json_extract(entities, '$.user')) AS u,
               min(json_extract(entities, '$.user')), count(*)
        FROM alerts WHERE u IS NOT NULL GROUP BY tenant, u;
    INSERT INTO dash_counts
        SELECT alerts.tenant, 'heat', ta.value || char(9) || te.value, '', count(*)
        FROM alerts, json_each(alerts.tactics) AS ta, json_each(alerts.techniques) AS te
        GROUP BY 1, 3;
    CREATE INDEX alerts_tenant_id ON alerts(tenant, id);
", "
    -- Hunting: which events a retro-hunt already reported per rule (so a second run
    -- tells nobody twice), the evidence lookup that check needs, saved searches and
    -- each user's query history. (IF NOT EXISTS: tests re-run earlier migrations.)
    CREATE TABLE IF NOT EXISTS retro_seen (
        tenant TEXT NOT NULL,
        rule_key TEXT NOT NULL,
        source TEXT NOT NULL,
        seq INTEGER NOT NULL,
        sub INTEGER NOT NULL,
        PRIMARY KEY (tenant, rule_key, source, seq, sub)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS alert_events_event ON alert_events(source, seq, sub);
    CREATE TABLE IF NOT EXISTS saved_searches (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        query TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        UNIQUE (tenant, owner, name)
    );
    CREATE TABLE IF NOT EXISTS query_history (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        who TEXT NOT NULL,
        query TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        took_ms INTEGER NOT NULL,
        matched INTEGER,
        error TEXT
    );
    CREATE INDEX IF NOT EXISTS query_history_who ON query_history(who, id);
",
    // How far the response log (response.db) has been copied into incident timelines.
    "CREATE TABLE IF NOT EXISTS response_copied (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_id INTEGER NOT NULL
    );
"];

/// Runs the migrations not yet applied. The pipeline and the HTTP side open the file
/// at about the same time: each step re-reads the version under a write lock.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version as usize > i {
            conn.execute_batch("COMMIT")?;
            continue;
        }
        let step = conn.execute_batch(&format!("{m}; PRAGMA user_version = {};", i + 1));
        match step {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}
