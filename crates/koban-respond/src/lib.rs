//! Response: what Koban may do about an attack, and the proof that it did.
//!
//! - [`action`]: the actions (isolate, block, disable, kill, quarantine, collect,
//!   connectors) with typed, validated parameters and their undo;
//! - [`command`]: the signed, numbered commands that make an agent act — forged,
//!   replayed, stale or misaddressed ones are refused;
//! - [`approval`]: the per-tenant gate (fully or semi-managed), timeouts, escalation;
//! - [`lifecycle`]: an action's states, from the request to `verified` and its undo;
//! - [`playbook`]: YAML playbooks checked whole when loaded, compiled into steps a
//!   server carries out one by one (enrich, notify, run, branch);
//! - [`nft`]: the nftables tables an agent loads, and the reading of what the kernel
//!   holds, for verification.
//!
//! Nothing here touches a host or the network: the agent and the server do, with these
//! as their rules.

pub mod action;
pub mod approval;
pub mod command;
mod error;
pub mod lifecycle;
pub mod nft;
pub mod playbook;

pub use action::{Action, Runner};
pub use approval::{Actor, ApprovalPolicy, Gate, Service};
pub use command::{Command, CommandSigner, CommandVerifier, SignedCommand};
pub use error::{ActionError, KeyError, Refused, TransitionError};
pub use lifecycle::{State, Step};
pub use playbook::{Playbook, PlaybookError};
