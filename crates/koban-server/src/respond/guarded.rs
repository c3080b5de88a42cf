//! Response actions as a user reaches them: the access check, the tenant's approval
//! policy and the audit, in one place for the API and the console.

use koban_respond::ApprovalPolicy;
use serde_json::Value;

use super::{RespondError, ResponseBook};
use crate::access::{Action as Access, Denied};
use crate::alerts::TriageError;
use crate::guard::{Guard, GuardError};
use crate::state::{now_ms, State};

pub fn respond_error(e: RespondError) -> GuardError {
    match e {
        // Actions have numbers ("no action 7"); an agent id that is not there (or is
        // another tenant's) is answered as plainly not found.
        RespondError::NotFound(what, id) => match id.parse() {
            Ok(n) => GuardError::Triage(TriageError::NotFound(what, n)),
            Err(_) => GuardError::Denied(Denied::OtherTenant),
        },
        RespondError::Invalid(m) => GuardError::Triage(TriageError::Invalid(m)),
        RespondError::Unauthorized(m) => GuardError::Triage(TriageError::Invalid(m.to_owned())),
        e @ (RespondError::Db(_) | RespondError::Key { .. }) => {
            tracing::error!(error = %e, "response database");
            GuardError::Triage(TriageError::Invalid("the response database failed".into()))
        }
    }
}

pub fn approval_policy(state: &State, tenant: &str) -> Result<ApprovalPolicy, GuardError> {
    let service = state
        .service(tenant)
        .map_err(|e| TriageError::Invalid(e.to_string()))?
        .ok_or(Denied::OtherTenant)?;
    let service = koban_respond::Service::parse(&service)
        .ok_or_else(|| TriageError::Invalid(format!("tenant {tenant}: service {service:?}")))?;
    let mut policy = ApprovalPolicy::new(service);
    let (timeout, escalate_to) = state
        .approval(tenant)
        .map_err(|e| TriageError::Invalid(e.to_string()))?;
    if let Some(t) = timeout {
        policy.timeout_ms = t;
    }
    policy.escalate_to = escalate_to;
    Ok(policy)
}

/// Whether the caller may approve or reject `tenant`'s waiting actions.
pub fn may_decide(g: &Guard, state: &State, tenant: &str) -> bool {
    g.who.allow(Some(tenant), Access::Approve).is_ok()
        && approval_policy(state, tenant).is_ok_and(|p| p.may_approve(g.who.role.actor()))
}

/// `approve`, `reject` or `undo` action `id`, as the caller.
pub fn decide_as(
    g: &Guard,
    state: &State,
    book: &ResponseBook,
    id: i64,
    decision: &str,
) -> Result<Value, GuardError> {
    let (tenant, _) = book.action(id).map_err(respond_error)?;
    let object = format!("action {id}");
    match decision {
        "approve" | "reject" => {
            g.who.allow(Some(&tenant), Access::Approve)?;
            if !may_decide(g, state, &tenant) {
                return Err(Denied::Role {
                    role: g.who.role,
                    action: "approve actions of this tenant (its service needs a customer admin)",
                }
                .into());
            }
            g.allow(Some(&tenant), Access::Approve, &object, decision)?;
            book.decide(id, decision == "approve", &g.who.user, now_ms())
                .map_err(respond_error)
        }
        "undo" => {
            g.allow(Some(&tenant), Access::Respond, &object, "undo")?;
            book.undo(id, &g.who.user, now_ms()).map_err(respond_error)
        }
        other => {
            Err(TriageError::Invalid(format!("{other:?}: use approve, reject or undo")).into())
        }
    }
}
