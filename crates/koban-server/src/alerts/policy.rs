//! A tenant's changes to the global rule set, without copying a rule: disabled rules,
//! changed levels, and exceptions (this rule, this host/user/field value, until a
//! date). Loaded whole by the detection stage and reloaded when the version moves.

use std::collections::HashMap;

use koban_detect::entities::user_key;
use koban_detect::Entities;
use koban_event::{Event, Value};
use koban_sigma::Level;
use rusqlite::{params, Connection};
use serde::Serialize;

use super::{AlertBook, AlertsError};

#[derive(Debug, Clone, Serialize)]
pub struct Override {
    pub rule: String,
    pub enabled: bool,
    pub level: Option<String>,
    pub updated_ms: i64,
    pub updated_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exception {
    pub id: i64,
    pub tenant: String,
    pub rule: String,
    /// An entity kind (`host`, `user`, `src_ip`, `dst_ip`, `process`, `hash`,
    /// `domain`) or any event field name.
    pub field: String,
    /// Compared case-insensitively; `*` matches any run of characters.
    pub value: String,
    pub expires_ms: Option<i64>,
    pub reason: String,
    pub created_ms: i64,
    pub created_by: String,
}

pub const ENTITY_FIELDS: [&str; 7] = [
    "host", "user", "src_ip", "dst_ip", "process", "hash", "domain",
];

impl Exception {
    /// Whether the exception covers this event at `at_ms`.
    pub fn covers(&self, entities: &Entities, event: Option<&Event>, at_ms: i64) -> bool {
        if self.expires_ms.is_some_and(|e| e <= at_ms) {
            return false;
        }
        match entity_value(entities, &self.field) {
            Some(v) => self.value_matches(&v),
            None if ENTITY_FIELDS.contains(&self.field.as_str()) => false,
            None => event
                .and_then(|e| e.get(&self.field))
                .is_some_and(|v| match v {
                    Value::Str(s) => self.value_matches(s.as_str()),
                    Value::Int(i) => self.value_matches(&i.to_string()),
                    _ => false,
                }),
        }
    }

    fn value_matches(&self, v: &str) -> bool {
        let mut want = self.value.to_lowercase();
        let mut got = v.to_lowercase();
        if self.field == "user" {
            want = user_key(&want);
            got = user_key(&got);
        }
        glob(&want, &got)
    }
}

/// The entity of that kind, if the field names one.
pub fn entity_value(e: &Entities, field: &str) -> Option<String> {
    match field {
        "host" => e.host.clone(),
        "user" => e.user.clone(),
        "src_ip" => e.src_ip.clone(),
        "dst_ip" => e.dst_ip.clone(),
        "process" => e.process.clone(),
        "hash" => e.hash.clone(),
        "domain" => e.domain.clone(),
        _ => None,
    }
}

/// `*` as any run of characters, everything else literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Everything the detection stage needs, for every tenant.
#[derive(Debug, Default, Clone)]
pub struct Policy {
    pub version: i64,
    overrides: HashMap<(String, String), Override>,
    exceptions: HashMap<(String, String), Vec<Exception>>,
}

impl Policy {
    pub fn enabled(&self, tenant: &str, rule: &str) -> bool {
        self.overrides
            .get(&(tenant.to_owned(), rule.to_owned()))
            .is_none_or(|o| o.enabled)
    }

    pub fn level(&self, tenant: &str, rule: &str, default: Level) -> Level {
        self.overrides
            .get(&(tenant.to_owned(), rule.to_owned()))
            .and_then(|o| o.level.as_deref())
            .and_then(Level::parse)
            .unwrap_or(default)
    }

    /// The exception that suppresses this detection, if any.
    pub fn suppressed_by(
        &self,
        tenant: &str,
        rule: &str,
        entities: &Entities,
        event: Option<&Event>,
        at_ms: i64,
    ) -> Option<i64> {
        self.exceptions
            .get(&(tenant.to_owned(), rule.to_owned()))?
            .iter()
            .find(|x| x.covers(entities, event, at_ms))
            .map(|x| x.id)
    }

    pub fn has_exceptions(&self) -> bool {
        !self.exceptions.is_empty()
    }
}

pub(super) fn version(conn: &Connection) -> Result<i64, AlertsError> {
    Ok(conn.query_row("SELECT version FROM policy_version", [], |r| r.get(0))?)
}

pub(super) fn bump(conn: &Connection) -> Result<(), AlertsError> {
    conn.execute("UPDATE policy_version SET version = version + 1", [])?;
    Ok(())
}

pub(super) fn exception_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Exception> {
    Ok(Exception {
        id: r.get(0)?,
        tenant: r.get(1)?,
        rule: r.get(2)?,
        field: r.get(3)?,
        value: r.get(4)?,
        expires_ms: r.get(5)?,
        reason: r.get(6)?,
        created_ms: r.get(7)?,
        created_by: r.get(8)?,
    })
}

pub(super) const EXCEPTION_COLUMNS: &str =
    "id, tenant, rule_key, field, value, expires_ms, reason, created_ms, created_by";

impl AlertBook {
    pub fn policy_version(&self) -> Result<i64, AlertsError> {
        version(&self.conn())
    }

    /// The whole policy (exceptions that expired are left out).
    pub fn policy(&self, now_ms: i64) -> Result<Policy, AlertsError> {
        let conn = self.conn();
        let mut p = Policy {
            version: version(&conn)?,
            ..Policy::default()
        };
        let mut st = conn.prepare(
            "SELECT tenant, rule_key, enabled, level, updated_ms, updated_by FROM rule_overrides",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Override {
                    rule: r.get(1)?,
                    enabled: r.get::<_, i64>(2)? != 0,
                    level: r.get(3)?,
                    updated_ms: r.get(4)?,
                    updated_by: r.get(5)?,
                },
            ))
        })?;
        for row in rows {
            let (tenant, o) = row?;
            p.overrides.insert((tenant, o.rule.clone()), o);
        }
        let mut st = conn.prepare(&format!(
            "SELECT {EXCEPTION_COLUMNS} FROM rule_exceptions
             WHERE expires_ms IS NULL OR expires_ms > ?1"
        ))?;
        for x in st.query_map(params![now_ms], exception_row)? {
            let x = x?;
            p.exceptions
                .entry((x.tenant.clone(), x.rule.clone()))
                .or_default()
                .push(x);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_values() {
        assert!(glob("ws*", "ws01"));
        assert!(glob("*\\temp\\*", "c:\\users\\x\\temp\\a.exe"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("ws*", "dc01"));
        assert!(!glob("ws01", "ws011"));
    }

    #[test]
    fn an_exception_on_a_user_ignores_the_domain_and_expires() {
        let x = Exception {
            id: 1,
            tenant: "t".into(),
            rule: "r".into(),
            field: "user".into(),
            value: "svc_backup".into(),
            expires_ms: Some(1000),
            reason: "backup job".into(),
            created_ms: 0,
            created_by: "admin".into(),
        };
        let e = Entities {
            user: Some("CORP\\SVC_Backup".into()),
            ..Entities::default()
        };
        assert!(x.covers(&e, None, 999));
        assert!(!x.covers(&e, None, 1000));
    }
}
