//! Response on the server: enrolled agents, the actions asked of them, approvals, and
//! the signed commands that carry approved actions to the agents.
//!
//! `book.rs` keeps it all in `response.db` in the data dir, with the server's command
//! key beside it (`command.key`, Ed25519 PKCS#8, mode 0600). An action moves through
//! [`koban_respond::State`]; the agent's report of what it observed decides whether it
//! ends `verified` or `unverified`. `tick` runs escalations, time-outs and expiries.
//!
//! `playbooks.rs` keeps playbooks and their runs; `driver.rs` starts runs on new alerts
//! and incidents and walks them step by step; `mirror.rs` copies every step of an
//! action or a run into the incident's timeline and the audit log; `connectors.rs`
//! runs webhook (HMAC-signed) and command actions on the server.

mod book;
mod connectors;
mod driver;
mod evidence;
mod guarded;
mod mirror;
mod playbooks;

pub use book::{
    ActionRequest, AgentAuth, Enrolled, Outcome, RespondError, ResponseBook, ENROL_TOKEN_TTL_MS,
};
pub use connectors::{
    run_connectors, signature, ConnectorConfig, ConnectorKind, WebhookUrl, CONNECTOR_KEYS,
};
pub use driver::{drive, subject};
pub use evidence::MAX_EVIDENCE_BYTES;
pub use guarded::{approval_policy, decide_as, may_decide, respond_error};
pub use mirror::mirror;
pub use playbooks::{LogEntry, OpenRun, ALL_TENANTS};
