//! The server's own state in SQLite (`state.db` in the data dir): tenants, ingest and
//! admin tokens, users. Tokens are random (256 bits) and stored only as SHA-256 hashes;
//! passwords are argon2 hashes.

use std::path::Path;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::config::{valid_name, valid_tenant};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("`{0}` is not a valid name (letters, digits, `-`, `_`, `.`; 1-64)")]
    BadName(String),
    #[error("no tenant `{0}`")]
    NoTenant(String),
    #[error("tenant `{0}` exists already")]
    TenantExists(String),
    #[error("cannot hash a password: {0}")]
    Hash(String),
    #[error("{0}")]
    Invalid(String),
}

/// What an ingest token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBinding {
    pub tenant: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub name: String,
    pub created_ms: i64,
}

/// Migrations in order; `PRAGMA user_version` says how many have run.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE tenants (
        name TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE ingest_tokens (
        hash TEXT PRIMARY KEY,
        tenant TEXT NOT NULL REFERENCES tenants(name),
        source TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE admin_tokens (
        hash TEXT PRIMARY KEY,
        user TEXT NOT NULL REFERENCES users(name),
        created_ms INTEGER NOT NULL
    );",
    // Roles, customer users, lockout, sessions, the tenant's service type, the audit log.
    "ALTER TABLE tenants ADD COLUMN service TEXT NOT NULL DEFAULT 'fully_managed';
    ALTER TABLE users ADD COLUMN tenant TEXT REFERENCES tenants(name);
    ALTER TABLE users ADD COLUMN lang TEXT;
    ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN locked_until_ms INTEGER;
    UPDATE users SET role = 'provider_admin' WHERE role = 'admin';
    CREATE TABLE sessions (
        hash TEXT PRIMARY KEY,
        user TEXT NOT NULL REFERENCES users(name),
        csrf TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        user TEXT NOT NULL,
        role TEXT NOT NULL,
        tenant TEXT,
        action TEXT NOT NULL,
        object TEXT NOT NULL,
        detail TEXT NOT NULL,
        remote TEXT
    );
    CREATE INDEX audit_tenant ON audit(tenant, id);
    CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    // How far the response log (response.db) has been copied into the audit log.
    "CREATE TABLE response_audited (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_id INTEGER NOT NULL
    );",
    // A tenant's approval settings: how long a request waits before it escalates (and
    // again before it expires), and who is told when it does.
    "ALTER TABLE tenants ADD COLUMN approval_timeout_ms INTEGER;
    ALTER TABLE tenants ADD COLUMN escalate_to TEXT;",
];

pub struct State {
    conn: Mutex<Connection>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random secret with a recognisable prefix (so leaked ones can be found).
pub(crate) fn new_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!("{prefix}{}", hex(&b))
}

impl State {
    pub fn open(path: &Path) -> Result<State, StateError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(&format!(
                "BEGIN; {m}; PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))?;
        }
        Ok(State {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant `default` (where syslog goes unless routed) and the first admin.
    /// Returns the admin's one-time password when the admin was created just now.
    pub fn first_start(&self) -> Result<Option<String>, StateError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO tenants (name, created_ms) VALUES ('default', ?1)",
            params![now_ms()],
        )?;
        let exists: Option<String> = self
            .conn()
            .query_row("SELECT name FROM users WHERE name = 'admin'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            return Ok(None);
        }
        let password = new_secret("");
        let password = password[..24].to_string();
        let hash = hash_password(&password)?;
        self.conn().execute(
            "INSERT INTO users (name, password_hash, role, created_ms) VALUES ('admin', ?1, 'provider_admin', ?2)",
            params![hash, now_ms()],
        )?;
        Ok(Some(password))
    }

    pub fn add_tenant(&self, name: &str) -> Result<(), StateError> {
        if !valid_tenant(name) {
            return Err(StateError::BadName(name.into()));
        }
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO tenants (name, created_ms) VALUES (?1, ?2)",
            params![name, now_ms()],
        )?;
        if n == 0 {
            return Err(StateError::TenantExists(name.into()));
        }
        Ok(())
    }

    /// Makes sure a tenant named in the configuration exists.
    pub fn ensure_tenant(&self, name: &str) -> Result<(), StateError> {
        match self.add_tenant(name) {
            Err(StateError::TenantExists(_)) => Ok(()),
            other => other,
        }
    }

    pub fn tenants(&self) -> Result<Vec<Tenant>, StateError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT name, created_ms FROM tenants ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(Tenant {
                name: r.get(0)?,
                created_ms: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A new ingest token for `tenant` + `source`. The token itself is returned once and
    /// never stored.
    pub fn create_ingest_token(&self, tenant: &str, source: &str) -> Result<String, StateError> {
        if !valid_name(source) {
            return Err(StateError::BadName(source.into()));
        }
        let known: Option<String> = self
            .conn()
            .query_row("SELECT name FROM tenants WHERE name = ?1", [tenant], |r| {
                r.get(0)
            })
            .optional()?;
        if known.is_none() {
            return Err(StateError::NoTenant(tenant.into()));
        }
        let token = new_secret("kbi_");
        self.conn().execute(
            "INSERT INTO ingest_tokens (hash, tenant, source, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![hash_token(&token), tenant, source, now_ms()],
        )?;
        Ok(token)
    }

    pub fn ingest_token(&self, token: &str) -> Result<Option<TokenBinding>, StateError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT tenant, source FROM ingest_tokens WHERE hash = ?1",
                [hash_token(token)],
                |r| {
                    Ok(TokenBinding {
                        tenant: r.get(0)?,
                        source: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// A new API token for the admin user (`koban token create --admin`).
    pub fn create_admin_token(&self) -> Result<String, StateError> {
        let token = new_secret("kba_");
        self.conn().execute(
            "INSERT INTO admin_tokens (hash, user, created_ms) VALUES (?1, 'admin', ?2)",
            params![hash_token(&token), now_ms()],
        )?;
        Ok(token)
    }
}

pub(crate) fn hash_password(password: &str) -> Result<String, StateError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StateError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StateError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_and_hashed() {
        let dir = std::env::temp_dir().join(format!("koban-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let st = State::open(&dir.join("state.db")).unwrap();
        let pw = st.first_start().unwrap().expect("first admin");
        assert!(st.first_start().unwrap().is_none(), "only once");
        assert!(matches!(
            st.login("admin", &pw, 0).unwrap(),
            crate::identity::Login::Ok(p) if p.role == crate::access::Role::ProviderAdmin
        ));
        assert_eq!(
            st.login("admin", "wrong", 0).unwrap(),
            crate::identity::Login::Refused
        );
        st.add_tenant("acme").unwrap();
        assert!(matches!(
            st.add_tenant("acme"),
            Err(StateError::TenantExists(_))
        ));
        let t = st.create_ingest_token("acme", "fw").unwrap();
        assert_eq!(
            st.ingest_token(&t).unwrap(),
            Some(TokenBinding {
                tenant: "acme".into(),
                source: "fw".into()
            })
        );
        assert_eq!(st.ingest_token("kbi_nope").unwrap(), None);
        assert!(matches!(
            st.create_ingest_token("nobody", "x"),
            Err(StateError::NoTenant(_))
        ));
        let raw = std::fs::read(dir.join("state.db")).unwrap();
        assert!(
            !raw.windows(t.len()).any(|w| w == t.as_bytes()),
            "token not stored in clear"
        );
        drop(st);
        let st = State::open(&dir.join("state.db")).unwrap();
        assert_eq!(st.tenants().unwrap().len(), 2);
    }
}
