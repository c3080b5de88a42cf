//! The states an action passes through, and the only steps between them.
//!
//! An action is *done* only when it ran and the state observed afterwards is the one
//! asked for: an agent that reports success but whose firewall shows no rule leaves
//! the action `unverified`, never `verified`.

use serde::{Deserialize, Serialize};

use crate::error::TransitionError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for a customer admin's yes.
    AwaitingApproval,
    /// Still waiting, and the escalation contact has been told.
    Escalated,
    /// Approved (or needing no approval); waiting for its runner to pick it up.
    Queued,
    /// Handed to the agent or connector; no result yet.
    Sent,
    /// Ran, and the observed state is the one asked for.
    Verified,
    /// Ran, but the observed state differs (or could not be observed).
    Unverified,
    Failed,
    Rejected,
    /// Nobody answered in time.
    TimedOut,
    /// Its undo ran (by hand, or because it expired).
    Undone,
}

/// What happens to an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Approve,
    Reject,
    Escalate,
    TimeOut,
    Send,
    /// The runner's result: it ran, and whether the observation matched.
    Ran {
        verified: bool,
    },
    Fail,
    /// The action's undo completed.
    Undo,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::AwaitingApproval => "awaiting_approval",
            State::Escalated => "escalated",
            State::Queued => "queued",
            State::Sent => "sent",
            State::Verified => "verified",
            State::Unverified => "unverified",
            State::Failed => "failed",
            State::Rejected => "rejected",
            State::TimedOut => "timed_out",
            State::Undone => "undone",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No further step is possible but an undo.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Failed | State::Rejected | State::TimedOut | State::Undone
        )
    }

    pub fn next(self, step: Step) -> Result<State, TransitionError> {
        use State as S;
        let to = match (self, step) {
            (S::AwaitingApproval | S::Escalated, Step::Approve) => S::Queued,
            (S::AwaitingApproval | S::Escalated, Step::Reject) => S::Rejected,
            (S::AwaitingApproval, Step::Escalate) => S::Escalated,
            (S::Escalated, Step::TimeOut) => S::TimedOut,
            (S::Queued, Step::Send) => S::Sent,
            // A queued connector action runs in place: no separate send.
            (S::Queued | S::Sent, Step::Ran { verified: true }) => S::Verified,
            (S::Queued | S::Sent, Step::Ran { verified: false }) => S::Unverified,
            (S::Queued | S::Sent, Step::Fail) => S::Failed,
            // An unverified action may still be undone: its effect is unknown.
            (S::Verified | S::Unverified, Step::Undo) => S::Undone,
            _ => {
                return Err(TransitionError {
                    from: self.as_str(),
                    step: step.as_str(),
                })
            }
        };
        Ok(to)
    }
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Approve => "approved",
            Step::Reject => "rejected",
            Step::Escalate => "escalated",
            Step::TimeOut => "timed out",
            Step::Send => "sent",
            Step::Ran { .. } => "reported as run",
            Step::Fail => "failed",
            Step::Undo => "undone",
        }
    }
}

pub const ALL: [State; 10] = [
    State::AwaitingApproval,
    State::Escalated,
    State::Queued,
    State::Sent,
    State::Verified,
    State::Unverified,
    State::Failed,
    State::Rejected,
    State::TimedOut,
    State::Undone,
];
