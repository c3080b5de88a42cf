//! Who must say yes before an action runs: the approval gate of a tenant's service.
//!
//! Fully managed: the provider's analysts and playbooks act at once. Semi-managed: a
//! customer admin approves first — unless a customer admin asked, which is the
//! approval. An unanswered request escalates once when its timeout passes and expires
//! after a second timeout; nothing runs without a yes.

use serde::{Deserialize, Serialize};

/// A tenant's service type (the tenant's `service` in the state database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    FullyManaged,
    SemiManaged,
}

impl Service {
    pub fn parse(s: &str) -> Option<Service> {
        match s {
            "fully_managed" => Some(Service::FullyManaged),
            "semi_managed" => Some(Service::SemiManaged),
            _ => None,
        }
    }
}

/// Who asks for or approves an action, as far as the gate cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// A provider admin or analyst.
    Provider,
    /// A playbook step, on the provider's behalf.
    Playbook,
    CustomerAdmin,
    CustomerAnalyst,
    /// Sees, never acts.
    CustomerViewer,
}

/// A tenant's approval settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    pub service: Service,
    /// How long a request waits before it escalates, and again before it expires.
    pub timeout_ms: i64,
    /// Who is told when a request escalates (an on-call contact, a mail address).
    pub escalate_to: Option<String>,
}

/// What happens to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    RunNow,
    AwaitApproval {
        escalate_at_ms: i64,
        expire_at_ms: i64,
    },
    /// This actor may not ask for actions at all.
    Refused(&'static str),
}

impl ApprovalPolicy {
    pub fn new(service: Service) -> ApprovalPolicy {
        ApprovalPolicy {
            service,
            timeout_ms: 30 * 60_000,
            escalate_to: None,
        }
    }

    /// The gate for a request by `by` at `now_ms`.
    pub fn gate(&self, by: Actor, now_ms: i64) -> Gate {
        let wait = Gate::AwaitApproval {
            escalate_at_ms: now_ms + self.timeout_ms,
            expire_at_ms: now_ms + 2 * self.timeout_ms,
        };
        match (self.service, by) {
            (_, Actor::CustomerViewer) => Gate::Refused("a viewer cannot ask for actions"),
            (_, Actor::CustomerAdmin) => Gate::RunNow,
            (Service::FullyManaged, Actor::Provider | Actor::Playbook) => Gate::RunNow,
            (Service::FullyManaged, Actor::CustomerAnalyst) => wait,
            (Service::SemiManaged, _) => wait,
        }
    }

    /// Whether `by` may approve (or reject) a waiting request.
    pub fn may_approve(&self, by: Actor) -> bool {
        match by {
            Actor::CustomerAdmin => true,
            // The provider decides alone only where the customer handed it the service.
            Actor::Provider => self.service == Service::FullyManaged,
            Actor::Playbook | Actor::CustomerAnalyst | Actor::CustomerViewer => false,
        }
    }
}
