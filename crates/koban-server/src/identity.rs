//! Users, logins with lockout, sessions, API tokens as principals, and the append-only
//! audit log — the parts of `state.db` that say who someone is and what they did.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::access::{Principal, Role};
use crate::config::valid_name;
use crate::state::{hash_password, hash_token, new_secret, now_ms, State, StateError};

/// Failed logins in a row before an account locks, and for how long.
pub const MAX_FAILED_LOGINS: i64 = 5;
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// A console session lasts this long.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Ok(Principal),
    /// Wrong user or password (the same answer for both).
    Refused,
    /// Too many failures: locked until this time (ms).
    Locked(i64),
}

#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub lang: Option<String>,
    pub locked: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub user: String,
    pub role: String,
    pub tenant: Option<String>,
    pub action: String,
    pub object: String,
    pub detail: String,
    pub remote: Option<String>,
}

/// Service types: fully managed (the provider acts at once) or semi-managed (the
/// customer approves actions).
pub const SERVICES: [&str; 2] = ["fully_managed", "semi_managed"];

fn principal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Principal> {
    let role: String = r.get(1)?;
    Ok(Principal {
        user: r.get(0)?,
        role: Role::parse(&role).unwrap_or(Role::CustomerViewer),
        tenant: r.get(2)?,
        lang: r.get(3)?,
    })
}

impl State {
    pub fn create_user(
        &self,
        name: &str,
        password: &str,
        role: Role,
        tenant: Option<&str>,
    ) -> Result<(), StateError> {
        if !valid_name(name) {
            return Err(StateError::BadName(name.into()));
        }
        if password.chars().count() < 12 {
            return Err(StateError::Invalid(
                "a password has at least 12 characters".into(),
            ));
        }
        let tenant = match (role.is_provider(), tenant) {
            (true, None) => None,
            (true, Some(_)) => {
                return Err(StateError::Invalid(format!(
                    "{role} is a provider role: it has no tenant"
                )))
            }
            (false, None) => return Err(StateError::Invalid(format!("{role} needs a tenant"))),
            (false, Some(t)) => Some(t),
        };
        if let Some(t) = tenant {
            if !self.tenants()?.iter().any(|x| x.name == t) {
                return Err(StateError::NoTenant(t.into()));
            }
        }
        let hash = hash_password(password)?;
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO users (name, password_hash, role, created_ms, tenant)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, hash, role.as_str(), now_ms(), tenant],
        )?;
        if n == 0 {
            return Err(StateError::Invalid(format!("user `{name}` exists already")));
        }
        Ok(())
    }

    /// Users, of one tenant or (None) all.
    pub fn users(&self, tenant: Option<&str>) -> Result<Vec<UserInfo>, StateError> {
        let conn = self.conn();
        let now = now_ms();
        let mut st = conn.prepare(
            "SELECT name, role, tenant, lang, locked_until_ms FROM users
             WHERE ?1 IS NULL OR tenant = ?1 ORDER BY name",
        )?;
        let rows = st.query_map(params![tenant], |r| {
            let p = principal_row(r)?;
            let locked: Option<i64> = r.get(4)?;
            Ok(UserInfo {
                name: p.user,
                role: p.role,
                tenant: p.tenant,
                lang: p.lang,
                locked: locked.is_some_and(|l| l > now),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Checks a password (argon2). Five failures in a row lock the account for 15
    /// minutes; a locked account is refused even with the right password.
    pub fn login(&self, user: &str, password: &str, now: i64) -> Result<Login, StateError> {
        let row: Option<(String, Option<i64>)> = self
            .conn()
            .query_row(
                "SELECT password_hash, locked_until_ms FROM users WHERE name = ?1",
                [user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((stored, locked)) = row else {
            // Spend the same time as a real check, so timing does not tell who exists.
            let _ = hash_password(password);
            return Ok(Login::Refused);
        };
        if let Some(until) = locked.filter(|l| *l > now) {
            return Ok(Login::Locked(until));
        }
        let ok = PasswordHash::new(&stored).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        let conn = self.conn();
        if !ok {
            conn.execute(
                "UPDATE users SET failed_logins = failed_logins + 1,
                     locked_until_ms = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until_ms END
                 WHERE name = ?1",
                params![user, MAX_FAILED_LOGINS, now + LOCKOUT_MS],
            )?;
            return Ok(Login::Refused);
        }
        conn.execute(
            "UPDATE users SET failed_logins = 0, locked_until_ms = NULL WHERE name = ?1",
            [user],
        )?;
        Ok(conn
            .query_row(
                "SELECT name, role, tenant, lang FROM users WHERE name = ?1",
                [user],
                principal_row,
            )
            .optional()?
            .map_or(Login::Refused, Login::Ok))
    }

    /// A new console session: (session token, CSRF token). Only the session token's
    /// hash is kept.
    pub fn create_session(&self, user: &str, now: i64) -> Result<(String, String), StateError> {
        let token = new_secret("kbs_");
        let csrf = new_secret("");
        self.conn().execute(
            "INSERT INTO sessions (hash, user, csrf, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash_token(&token), user, csrf, now, now + SESSION_MS],
        )?;
        Ok((token, csrf))
    }

    /// The session's user and its CSRF token, while it has not expired.
    pub fn session(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<(Principal, String)>, StateError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT u.name, u.role, u.tenant, u.lang, s.csrf FROM sessions s
                 JOIN users u ON u.name = s.user WHERE s.hash = ?1 AND s.expires_ms > ?2",
                params![hash_token(token), now],
                |r| Ok((principal_row(r)?, r.get(4)?)),
            )
            .optional()?)
    }

    pub fn end_session(&self, token: &str) -> Result<(), StateError> {
        self.conn()
            .execute("DELETE FROM sessions WHERE hash = ?1", [hash_token(token)])?;
        Ok(())
    }

    /// The user an API token (`kba_…`) belongs to.
    pub fn token_principal(&self, token: &str) -> Result<Option<Principal>, StateError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT u.name, u.role, u.tenant, u.lang FROM admin_tokens t
                 JOIN users u ON u.name = t.user WHERE t.hash = ?1",
                [hash_token(token)],
                principal_row,
            )
            .optional()?)
    }

    /// A new API token for `user`; returned once, only its hash kept.
    pub fn create_user_token(&self, user: &str) -> Result<String, StateError> {
        let token = new_secret("kba_");
        self.conn().execute(
            "INSERT INTO admin_tokens (hash, user, created_ms) VALUES (?1, ?2, ?3)",
            params![hash_token(&token), user, now_ms()],
        )?;
        Ok(token)
    }

    pub fn set_lang(&self, user: &str, lang: &str) -> Result<(), StateError> {
        self.conn().execute(
            "UPDATE users SET lang = ?2 WHERE name = ?1",
            params![user, lang],
        )?;
        Ok(())
    }

    pub fn set_service(&self, tenant: &str, service: &str) -> Result<(), StateError> {
        if !SERVICES.contains(&service) {
            return Err(StateError::Invalid(format!(
                "service `{service}`: use fully_managed or semi_managed"
            )));
        }
        let n = self.conn().execute(
            "UPDATE tenants SET service = ?2 WHERE name = ?1",
            params![tenant, service],
        )?;
        if n == 0 {
            return Err(StateError::NoTenant(tenant.into()));
        }
        Ok(())
    }

    /// Sets a tenant's approval timeout and escalation contact (None: the default).
    pub fn set_approval(
        &self,
        tenant: &str,
        timeout_ms: Option<i64>,
        escalate_to: Option<&str>,
    ) -> Result<(), StateError> {
        let n = self.conn().execute(
            "UPDATE tenants SET approval_timeout_ms = ?2, escalate_to = ?3 WHERE name = ?1",
            params![tenant, timeout_ms, escalate_to],
        )?;
        if n == 0 {
            return Err(StateError::NoTenant(tenant.into()));
        }
        Ok(())
    }

    /// A tenant's approval timeout and escalation contact, as set.
    pub fn approval(&self, tenant: &str) -> Result<(Option<i64>, Option<String>), StateError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT approval_timeout_ms, escalate_to FROM tenants WHERE name = ?1",
                [tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((None, None)))
    }

    pub fn service(&self, tenant: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT service FROM tenants WHERE name = ?1",
                [tenant],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Appends to the audit log (there is no way to change or delete an entry).
    pub fn audit(
        &self,
        who: &Principal,
        tenant: Option<&str>,
        action: &str,
        object: &str,
        detail: &str,
        remote: Option<&str>,
    ) -> Result<(), StateError> {
        self.conn().execute(
            "INSERT INTO audit (at_ms, user, role, tenant, action, object, detail, remote)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                now_ms(),
                who.user,
                who.role.as_str(),
                tenant,
                action,
                object,
                detail,
                remote
            ],
        )?;
        Ok(())
    }

    /// The last response step copied into the audit log.
    pub fn response_audited(&self) -> Result<i64, StateError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT last_id FROM response_audited WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Audits steps Koban took itself (an agent's report, a playbook, an expiry) as
    /// `(at_ms, who, tenant, action, object, detail)`, and moves the cursor to
    /// `through`, in one transaction: each step is audited once.
    pub fn audit_response(
        &self,
        steps: &[(i64, String, String, String, String, String)],
        through: i64,
    ) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (at, who, tenant, action, object, detail) in steps {
            tx.execute(
                "INSERT INTO audit (at_ms, user, role, tenant, action, object, detail, remote)
                 VALUES (?1, ?2, 'response', ?3, ?4, ?5, ?6, NULL)",
                params![at, who, tenant, action, object, detail],
            )?;
        }
        tx.execute(
            "INSERT INTO response_audited (id, last_id) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET last_id = MAX(last_id, ?1)",
            [through],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Audit entries about one tenant (or all), newest first.
    pub fn audit_log(
        &self,
        tenant: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StateError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, at_ms, user, role, tenant, action, object, detail, remote FROM audit
             WHERE ?1 IS NULL OR tenant = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![tenant, limit as i64], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                user: r.get(2)?,
                role: r.get(3)?,
                tenant: r.get(4)?,
                action: r.get(5)?,
                object: r.get(6)?,
                detail: r.get(7)?,
                remote: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str) -> State {
        let dir =
            std::env::temp_dir().join(format!("koban-identity-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let st = State::open(&dir.join("state.db")).expect("open");
        st.first_start().expect("first start");
        st.add_tenant("acme").expect("tenant");
        st
    }

    #[test]
    fn five_failures_lock_the_account_even_for_the_right_password() {
        let st = state("lockout");
        st.create_user(
            "carol",
            "correct horse battery",
            Role::CustomerAnalyst,
            Some("acme"),
        )
        .expect("user");
        for _ in 0..MAX_FAILED_LOGINS {
            assert_eq!(
                st.login("carol", "wrong", 1000).expect("login"),
                Login::Refused
            );
        }
        assert!(matches!(
            st.login("carol", "correct horse battery", 2000)
                .expect("login"),
            Login::Locked(_)
        ));
        let later = 2000 + LOCKOUT_MS + 1;
        assert!(matches!(
            st.login("carol", "correct horse battery", later).expect("login"),
            Login::Ok(p) if p.tenant.as_deref() == Some("acme")
        ));
    }

    #[test]
    fn the_audit_log_cannot_be_changed() {
        let st = state("audit");
        let who = Principal {
            user: "admin".into(),
            role: Role::ProviderAdmin,
            tenant: None,
            lang: None,
        };
        st.audit(&who, Some("acme"), "read", "alerts", "", None)
            .expect("audit");
        assert_eq!(st.audit_log(Some("acme"), 10).expect("log").len(), 1);
        let conn = st.conn();
        assert!(conn.execute("DELETE FROM audit", []).is_err());
        assert!(conn.execute("UPDATE audit SET user = 'x'", []).is_err());
    }

    #[test]
    fn roles_and_tenants_go_together() {
        let st = state("roles");
        assert!(st
            .create_user(
                "p1",
                "long enough password",
                Role::ProviderAnalyst,
                Some("acme")
            )
            .is_err());
        assert!(st
            .create_user("c1", "long enough password", Role::CustomerViewer, None)
            .is_err());
        assert!(st
            .create_user("c2", "short", Role::CustomerViewer, Some("acme"))
            .is_err());
    }
}
