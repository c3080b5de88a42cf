//! Files an agent collected for forensics (`collect_files`): each upload is checked
//! against the action it answers (this agent's, sent, naming that path) and against the
//! hash the agent computed, then kept under `<data>/evidence/<tenant>/<action>/` (mode
//! 0600) with its SHA-256 in `response.db`. Downloads go through the tenant check like
//! any other read.

use std::io::Write;
use std::path::PathBuf;

use koban_respond::Action;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{AgentAuth, RespondError, ResponseBook};

type R<T> = Result<T, RespondError>;

/// The largest file an agent uploads (its base64 stays under the body limit).
pub const MAX_EVIDENCE_BYTES: usize = 16 << 20;

impl ResponseBook {
    /// Keeps one collected file; returns the hash the server computed.
    pub fn store_evidence(
        &self,
        agent: &AgentAuth,
        number: u64,
        path: &str,
        agent_sha256: &str,
        data: &[u8],
        now: i64,
    ) -> R<Value> {
        let (id, state, action): (i64, String, String) = self
            .conn()
            .query_row(
                "SELECT id, state, action FROM actions WHERE agent = ?1 AND number = ?2",
                params![agent.id, number as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or_else(|| RespondError::NotFound("command", number.to_string()))?;
        let paths = match serde_json::from_str::<Action>(&action) {
            Ok(Action::CollectFiles { paths }) => paths,
            _ => {
                return Err(RespondError::Invalid(format!(
                    "action {id} does not collect files"
                )))
            }
        };
        if state != "sent" {
            return Err(RespondError::Invalid(format!(
                "action {id} is {state}, not waiting for its files"
            )));
        }
        let Some(index) = paths.iter().position(|p| p == path) else {
            return Err(RespondError::Invalid(format!(
                "action {id} did not ask for {path}"
            )));
        };
        if data.len() > MAX_EVIDENCE_BYTES {
            return Err(RespondError::Invalid(format!(
                "{path}: {} bytes, over the {MAX_EVIDENCE_BYTES}-byte limit",
                data.len()
            )));
        }
        let sha256: String = Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let matches = sha256.eq_ignore_ascii_case(agent_sha256);
        let dir = self
            .dir()
            .join("evidence")
            .join(&agent.tenant)
            .join(id.to_string());
        let name: String = path
            .rsplit('/')
            .next()
            .unwrap_or("file")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let kept: PathBuf = dir.join(format!("{index}-{name}"));
        write_private(&dir, &kept, data).map_err(|e| RespondError::Key {
            path: kept.display().to_string(),
            message: e.to_string(),
        })?;
        self.conn().execute(
            "INSERT OR REPLACE INTO evidence (action, idx, path, sha256, agent_sha256, bytes, kept, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                index as i64,
                path,
                sha256,
                agent_sha256,
                data.len() as i64,
                kept.display().to_string(),
                now
            ],
        )?;
        Ok(
            json!({ "action": id, "path": path, "sha256": sha256, "matches": matches,
                   "bytes": data.len() }),
        )
    }

    /// The files kept for an action.
    pub fn evidence(&self, action: i64) -> R<Vec<Value>> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT idx, path, sha256, agent_sha256, bytes, at_ms FROM evidence
             WHERE action = ?1 ORDER BY idx",
        )?;
        let rows = q.query_map([action], |r| {
            Ok(json!({
                "index": r.get::<_, i64>(0)?, "path": r.get::<_, String>(1)?,
                "sha256": r.get::<_, String>(2)?, "agent_sha256": r.get::<_, String>(3)?,
                "bytes": r.get::<_, i64>(4)?, "at_ms": r.get::<_, i64>(5)?,
            }))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One kept file's bytes and name.
    pub fn evidence_file(&self, action: i64, index: i64) -> R<(String, Vec<u8>)> {
        let (path, kept): (String, String) = self
            .conn()
            .query_row(
                "SELECT path, kept FROM evidence WHERE action = ?1 AND idx = ?2",
                params![action, index],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| RespondError::NotFound("evidence file", index.to_string()))?;
        let data = std::fs::read(&kept).map_err(|e| RespondError::Key {
            path: kept.clone(),
            message: e.to_string(),
        })?;
        Ok((path, data))
    }
}

fn write_private(
    dir: &std::path::Path,
    path: &std::path::Path,
    data: &[u8],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}
