//! The ways an action, a key or a command can be wrong.

use thiserror::Error;

/// A parameter that does not hold, by field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct ActionError {
    pub field: String,
    pub message: String,
}

impl ActionError {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> ActionError {
        ActionError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("command key: {0}")]
pub struct KeyError(pub String);

/// Why an agent refused a command.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refused {
    #[error("the signature does not verify with the server's key")]
    BadSignature,
    #[error("the signed command is not a command: {0}")]
    Malformed(String),
    #[error("the command is for agent {named:?}, not this one")]
    OtherAgent { named: String },
    #[error("command number {number} was already used (last accepted: {last}): a replay")]
    Replayed { number: u64, last: u64 },
    #[error("the command expired at {expired_ms} (now {now_ms})")]
    Expired { expired_ms: i64, now_ms: i64 },
    #[error("the command is dated {issued_ms}, after this host's clock ({now_ms}) allows")]
    FromTheFuture { issued_ms: i64, now_ms: i64 },
}

/// A step the action's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("an action that is {from} cannot be {step}")]
pub struct TransitionError {
    pub from: &'static str,
    pub step: &'static str,
}
