//! The one place tenant data is reached from a request. Every API route and console
//! page that reads or changes alerts, incidents, rules, exceptions, assets, SLA targets
//! goes through a [`Guard`]: it narrows list queries to the caller's tenant, looks up
//! the tenant of the object asked for, asks [`Principal::allow`], and writes the audit
//! log (every change by anyone, every read of customer data by a provider user).
//! Handlers never hold an `AlertBook` of their own.

use std::sync::Arc;

use koban_detect::case::{SlaTargets, Verdict};
use koban_detect::{CaseState, Grade};
use serde_json::{json, Value};

use crate::access::{Action, Denied, Principal, Role};
use crate::alerts::{
    AlertBook, AlertFilter, Annotation, AssetGroup, Exception, ExceptionRequest, IncidentFilter,
    Owner, Policy, TriageError,
};
use crate::state::{now_ms, State};

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error(transparent)]
    Triage(#[from] TriageError),
}

impl From<crate::alerts::AlertsError> for GuardError {
    fn from(e: crate::alerts::AlertsError) -> Self {
        GuardError::Triage(TriageError::Db(e))
    }
}

pub struct Guard {
    /// Absent when detection is off: then only event search and administration work.
    book: Option<Arc<AlertBook>>,
    state: Arc<State>,
    pub who: Principal,
    remote: Option<String>,
}

type R<T> = Result<T, GuardError>;

impl Guard {
    pub fn new(
        book: Option<Arc<AlertBook>>,
        state: Arc<State>,
        who: Principal,
        remote: Option<String>,
    ) -> Guard {
        Guard {
            book,
            state,
            who,
            remote,
        }
    }

    fn book(&self) -> R<&AlertBook> {
        self.book.as_deref().ok_or_else(|| {
            TriageError::Invalid("detection is off on this server: no alerts or incidents".into())
                .into()
        })
    }

    /// Checks and audits one access. `object` names what (e.g. `incident 12`).
    pub fn allow(&self, tenant: Option<&str>, action: Action, object: &str, detail: &str) -> R<()> {
        self.who.allow(tenant, action)?;
        let is_read = action == Action::Read;
        if !is_read || self.who.role.is_provider() {
            let logged = self.state.audit(
                &self.who,
                tenant,
                action.as_str(),
                object,
                detail,
                self.remote.as_deref(),
            );
            if let Err(e) = logged {
                // No unaudited access: refuse rather than act without a record.
                tracing::error!(error = %e, "audit log write failed");
                return Err(TriageError::Invalid("the audit log cannot be written".into()).into());
            }
        }
        Ok(())
    }

    /// The tenant a list is about: the caller's own for customers (asking for another
    /// is refused), the one asked for (or all) for provider users.
    pub fn narrow(&self, asked: Option<String>) -> R<Option<String>> {
        match self.who.scope() {
            None => Ok(asked),
            Some(own) => match asked {
                Some(t) if t != own => Err(Denied::OtherTenant.into()),
                _ => Ok(Some(own.to_owned())),
            },
        }
    }

    /// Administration of one tenant (its admin) or, without one, of the whole service
    /// (provider admin). Returns the tenant the caller ends up scoped to.
    pub fn administer(
        &self,
        asked: Option<String>,
        object: &str,
        detail: &str,
    ) -> R<Option<String>> {
        let tenant = self.narrow(asked)?;
        let action = if tenant.is_some() {
            Action::Administer
        } else {
            Action::Operate
        };
        self.allow(tenant.as_deref(), action, object, detail)?;
        Ok(tenant)
    }

    /// Customer accounts are made by their tenant's admin; provider accounts, the
    /// service's own, only by a provider admin.
    pub fn allow_new_user(&self, name: &str, role: Role, tenant: Option<&str>) -> R<()> {
        let (scope, action) = if role.is_provider() {
            (None, Action::Operate)
        } else {
            (tenant, Action::Administer)
        };
        self.allow(scope, action, &format!("user {name}"), role.as_str())
    }

    fn owner(&self, kind: Owner, id: i64) -> R<String> {
        let what = match kind {
            Owner::Alert => "alert",
            Owner::Incident => "incident",
        };
        match self.book()?.tenant_of(kind, id)? {
            Some(t) => Ok(t),
            None => Err(TriageError::NotFound(what, id).into()),
        }
    }

    /// An object of another tenant is reported exactly like a missing one.
    fn owned(&self, kind: Owner, id: i64, action: Action, detail: &str) -> R<String> {
        let what = match kind {
            Owner::Alert => "alert",
            Owner::Incident => "incident",
        };
        let tenant = self.owner(kind, id)?;
        match self.allow(Some(&tenant), action, &format!("{what} {id}"), detail) {
            Err(GuardError::Denied(Denied::OtherTenant)) => {
                Err(TriageError::NotFound(what, id).into())
            }
            other => other.map(|()| tenant),
        }
    }

    pub fn alerts(&self, mut f: AlertFilter) -> R<Vec<Value>> {
        f.tenant = self.narrow(f.tenant)?;
        self.allow(f.tenant.as_deref(), Action::Read, "alerts", "")?;
        Ok(self.book()?.alerts(&f)?)
    }

    pub fn alert(&self, id: i64) -> R<Value> {
        self.owned(Owner::Alert, id, Action::Read, "")?;
        self.book()?
            .alert(id)?
            .ok_or_else(|| TriageError::NotFound("alert", id).into())
    }

    pub fn incidents(&self, mut f: IncidentFilter) -> R<Vec<Value>> {
        f.tenant = self.narrow(f.tenant)?;
        self.allow(f.tenant.as_deref(), Action::Read, "incidents", "")?;
        Ok(self.book()?.incidents(&f)?)
    }

    pub fn incident(&self, id: i64) -> R<Value> {
        self.owned(Owner::Incident, id, Action::Read, "")?;
        self.book()?
            .incident(id, now_ms())?
            .ok_or_else(|| TriageError::NotFound("incident", id).into())
    }

    /// The dashboard's aggregates over the caller's tenants (or one of them).
    pub fn dashboard(&self, tenant: Option<String>) -> R<Value> {
        let t = self.narrow(tenant)?;
        self.allow(t.as_deref(), Action::Read, "dashboard", "")?;
        Ok(self.book()?.dashboard(t.as_deref())?)
    }

    // ---- hunting -------------------------------------------------------------

    /// A hunt, timeline or search over one tenant's stored events.
    pub fn hunt(&self, tenant: &str, detail: &str) -> R<()> {
        self.allow(Some(tenant), Action::Read, "events", detail)
    }

    /// A retro-hunt writes alerts: rule work, like tuning. Hands out the book the
    /// run records into and the tenant policy it applies.
    pub fn retro_hunt(&self, tenant: &str, detail: &str) -> R<(Arc<AlertBook>, Policy)> {
        self.allow(Some(tenant), Action::Tune, "retro-hunt", detail)?;
        let book = self.book.clone().ok_or_else(|| {
            TriageError::Invalid("detection is off on this server: no alerts or incidents".into())
        })?;
        let policy = book.policy(now_ms())?;
        Ok((book, policy))
    }

    /// A timeline's alerts: those of one tenant naming the entity.
    pub fn entity_alerts(
        &self,
        tenant: &str,
        kinds: &[&str],
        value: &str,
        range: (Option<i64>, Option<i64>),
        limit: usize,
    ) -> R<Vec<Value>> {
        self.allow(Some(tenant), Action::Read, "timeline", value)?;
        Ok(self
            .book()?
            .alerts_for_entity(tenant, kinds, value, range.0, range.1, limit)?)
    }

    /// Records a query the caller ran (their history; never fails the query).
    pub fn log_query(&self, ran: crate::hunt::saved::Ran<'_>) {
        if let Ok(book) = self.book() {
            if let Err(e) = book.log_query(&crate::hunt::saved::Ran {
                who: &self.who.user,
                ..ran
            }) {
                tracing::warn!(error = %e, "query history not written");
            }
        }
    }

    pub fn query_history(&self, tenant: Option<String>, limit: usize) -> R<Vec<Value>> {
        let t = self.narrow(tenant)?;
        Ok(self
            .book()?
            .query_history(&self.who.user, t.as_deref(), limit)?)
    }

    pub fn save_search(&self, tenant: &str, name: &str, query: &str) -> R<i64> {
        self.allow(Some(tenant), Action::Read, "saved search", name)?;
        if name.trim().is_empty() || name.len() > 200 {
            return Err(TriageError::Invalid(
                "a saved search needs a name of 1 to 200 bytes".into(),
            )
            .into());
        }
        Ok(self
            .book()?
            .save_search(tenant, &self.who.user, name.trim(), query, now_ms())?)
    }

    pub fn saved_searches(&self, tenant: Option<String>) -> R<Vec<Value>> {
        let t = self.narrow(tenant)?;
        Ok(self.book()?.saved_searches(&self.who.user, t.as_deref())?)
    }

    pub fn delete_search(&self, id: i64) -> R<()> {
        let book = self.book()?;
        let tenant = book
            .saved_search_tenant(&self.who.user, id)?
            .ok_or(TriageError::NotFound("saved search", id))?;
        self.allow(Some(&tenant), Action::Read, "saved search", "delete")?;
        book.delete_search(&self.who.user, id)?;
        Ok(())
    }

    pub fn summary(&self, tenant: &str) -> R<Value> {
        self.allow(Some(tenant), Action::Read, "detection summary", "")?;
        Ok(self.book()?.detection_summary(tenant)?)
    }

    /// A verdict, and with `exception` a scoped exception of the alert's rule.
    pub fn verdict(
        &self,
        id: i64,
        v: Verdict,
        reason: &str,
        exception: Option<(String, String, Option<i64>)>,
    ) -> R<Value> {
        let tenant = self.owned(Owner::Alert, id, Action::Triage, v.as_str())?;
        let alert = self
            .book()?
            .alert(id)?
            .ok_or(TriageError::NotFound("alert", id))?;
        let now = now_ms();
        let incident = self
            .book()?
            .set_verdict(id, v, reason, &self.who.user, now)?;
        let mut out = json!({"alert": id, "verdict": v.as_str(), "incident": incident});
        if let Some((field, value, expires_ms)) = exception {
            let req = ExceptionRequest {
                tenant: tenant.clone(),
                rule: alert["rule"].as_str().unwrap_or_default().to_owned(),
                field,
                value,
                expires_ms,
                reason: if reason.is_empty() {
                    format!("verdict {} on alert {id}", v.as_str())
                } else {
                    reason.to_owned()
                },
            };
            self.allow(Some(&tenant), Action::Tune, "exception", &req.rule)?;
            let would = self.book()?.exception_preview(&req)?;
            out["exception"] = json!(self.book()?.add_exception(&req, &self.who.user, now)?);
            out["would_have_suppressed"] = json!(would);
        }
        Ok(out)
    }

    pub fn transition(&self, id: i64, to: CaseState, note: &str) -> R<()> {
        self.owned(Owner::Incident, id, Action::Triage, to.as_str())?;
        Ok(self
            .book()?
            .transition(id, to, &self.who.user, note, now_ms())?)
    }

    pub fn assign(&self, id: i64, assignee: &str) -> R<()> {
        self.owned(Owner::Incident, id, Action::Triage, assignee)?;
        Ok(self
            .book()?
            .assign(id, assignee, &self.who.user, now_ms())?)
    }

    /// Comments need `Comment`; evidence and tasks are triage work.
    pub fn annotate(&self, id: i64, a: Annotation<'_>) -> R<Option<i64>> {
        let action = match a {
            Annotation::Comment { .. } => Action::Comment,
            _ => Action::Triage,
        };
        self.owned(Owner::Incident, id, action, "")?;
        Ok(self.book()?.annotate(id, a, &self.who.user, now_ms())?)
    }

    /// The side a comment is from follows the author's role.
    pub fn side(&self) -> &'static str {
        if self.who.role.is_provider() {
            "provider"
        } else {
            "customer"
        }
    }

    pub fn finish_task(&self, id: i64, task: i64) -> R<()> {
        self.owned(Owner::Incident, id, Action::Triage, "")?;
        Ok(self
            .book()?
            .finish_task(id, task, &self.who.user, now_ms())?)
    }

    pub fn policy(&self, tenant: Option<&str>) -> R<Policy> {
        if let Some(t) = tenant {
            self.allow(Some(t), Action::Read, "rules", "")?;
        }
        Ok(self.book()?.policy(now_ms())?)
    }

    pub fn set_override(
        &self,
        tenant: &str,
        rule: &str,
        enabled: bool,
        level: Option<&str>,
    ) -> R<()> {
        let detail = format!("enabled={enabled} level={}", level.unwrap_or("-"));
        self.allow(Some(tenant), Action::Tune, &format!("rule {rule}"), &detail)?;
        Ok(self
            .book()?
            .set_override(tenant, rule, enabled, level, &self.who.user, now_ms())?)
    }

    pub fn exceptions(&self, tenant: &str) -> R<Vec<Exception>> {
        self.allow(Some(tenant), Action::Read, "exceptions", "")?;
        Ok(self.book()?.exceptions(tenant)?)
    }

    pub fn preview(&self, x: &ExceptionRequest) -> R<Option<i64>> {
        self.allow(Some(&x.tenant), Action::Read, "exception preview", &x.rule)?;
        Ok(self.book()?.exception_preview(x)?)
    }

    pub fn add_exception(&self, x: &ExceptionRequest) -> R<(Exception, Option<i64>)> {
        let detail = format!("{}={}", x.field, x.value);
        self.allow(
            Some(&x.tenant),
            Action::Tune,
            &format!("exception of {}", x.rule),
            &detail,
        )?;
        let would = self.book()?.exception_preview(x)?;
        Ok((
            self.book()?.add_exception(x, &self.who.user, now_ms())?,
            would,
        ))
    }

    pub fn delete_exception(&self, tenant: &str, id: i64) -> R<()> {
        self.allow(
            Some(tenant),
            Action::Tune,
            &format!("exception {id}"),
            "delete",
        )?;
        Ok(self.book()?.delete_exception(tenant, id)?)
    }

    pub fn set_assets(&self, tenant: &str, groups: &[AssetGroup]) -> R<()> {
        self.allow(
            Some(tenant),
            Action::Administer,
            "asset groups",
            &groups.len().to_string(),
        )?;
        Ok(self.book()?.set_assets(tenant, groups)?)
    }

    pub fn sla(&self, tenant: &str) -> R<Value> {
        self.allow(Some(tenant), Action::Read, "sla targets", "")?;
        Ok(self.book()?.sla(tenant)?)
    }

    pub fn set_sla(&self, tenant: &str, g: Grade, t: &SlaTargets) -> R<()> {
        self.allow(Some(tenant), Action::Administer, "sla targets", g.as_str())?;
        Ok(self.book()?.set_sla(tenant, g, t)?)
    }
}
