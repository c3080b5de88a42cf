//! Who may do what, for whom: the five roles, and the one check every request that
//! touches tenant data passes (`Principal::allow`). Provider users (of the MDR service)
//! work across tenants; customer users see and act only inside their own tenant.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    ProviderAdmin,
    ProviderAnalyst,
    CustomerAdmin,
    CustomerAnalyst,
    CustomerViewer,
}

pub const ROLES: [Role; 5] = [
    Role::ProviderAdmin,
    Role::ProviderAnalyst,
    Role::CustomerAdmin,
    Role::CustomerAnalyst,
    Role::CustomerViewer,
];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ProviderAdmin => "provider_admin",
            Role::ProviderAnalyst => "provider_analyst",
            Role::CustomerAdmin => "customer_admin",
            Role::CustomerAnalyst => "customer_analyst",
            Role::CustomerViewer => "customer_viewer",
        }
    }

    /// `admin` is the first user's role from before roles existed.
    pub fn parse(s: &str) -> Option<Role> {
        if s == "admin" {
            return Some(Role::ProviderAdmin);
        }
        ROLES.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_provider(self) -> bool {
        matches!(self, Role::ProviderAdmin | Role::ProviderAnalyst)
    }

    /// Who this role is to the approval gate.
    pub fn actor(self) -> koban_respond::Actor {
        use koban_respond::Actor;
        match self {
            Role::ProviderAdmin | Role::ProviderAnalyst => Actor::Provider,
            Role::CustomerAdmin => Actor::CustomerAdmin,
            Role::CustomerAnalyst => Actor::CustomerAnalyst,
            Role::CustomerViewer => Actor::CustomerViewer,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request wants to do with a tenant's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See events, alerts, incidents, rules, sources.
    Read,
    /// Comment on a case.
    Comment,
    /// Verdicts, state changes, assignment, evidence, tasks.
    Triage,
    /// Rule overrides and exceptions.
    Tune,
    /// Ingest tokens, users, asset groups, SLA targets of the tenant; its audit log.
    Administer,
    /// Ask for a response action (isolate, block, ...), or undo one.
    Respond,
    /// Approve or reject a waiting action (the tenant's service decides who in the end).
    Approve,
    /// Across tenants: create tenants, reload the global rules.
    Operate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Comment => "comment",
            Action::Triage => "triage",
            Action::Tune => "tune rules",
            Action::Administer => "administer",
            Action::Respond => "ask for response actions",
            Action::Approve => "approve response actions",
            Action::Operate => "operate the service",
        }
    }
}

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    /// The customer's tenant; `None` for provider users.
    pub tenant: Option<String>,
    /// `en` or `ja`, when the user chose one.
    pub lang: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Another tenant's data: answered as if it did not exist.
    #[error("not found")]
    OtherTenant,
    #[error("the role {role} may not {action}")]
    Role { role: Role, action: &'static str },
}

impl Principal {
    /// The tenants whose data this user reads: `None` means all of them.
    pub fn scope(&self) -> Option<&str> {
        if self.role.is_provider() {
            None
        } else {
            self.tenant.as_deref()
        }
    }

    /// The one check: may this user do `action` on `tenant`'s data (`None`: across
    /// tenants)?
    pub fn allow(&self, tenant: Option<&str>, action: Action) -> Result<(), Denied> {
        if !self.role.is_provider() {
            match (tenant, self.tenant.as_deref()) {
                (Some(t), Some(own)) if t == own => {}
                _ => return Err(Denied::OtherTenant),
            }
        }
        let ok = match self.role {
            Role::ProviderAdmin => true,
            Role::ProviderAnalyst => !matches!(action, Action::Administer | Action::Operate),
            Role::CustomerAdmin => action != Action::Operate,
            Role::CustomerAnalyst => matches!(
                action,
                Action::Read | Action::Comment | Action::Triage | Action::Respond
            ),
            Role::CustomerViewer => action == Action::Read,
        };
        if ok {
            Ok(())
        } else {
            Err(Denied::Role {
                role: self.role,
                action: action.as_str(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, tenant: Option<&str>) -> Principal {
        Principal {
            user: "u".into(),
            role,
            tenant: tenant.map(str::to_owned),
            lang: None,
        }
    }

    #[test]
    fn customers_never_reach_another_tenant_whatever_their_role() {
        for role in [
            Role::CustomerAdmin,
            Role::CustomerAnalyst,
            Role::CustomerViewer,
        ] {
            let p = who(role, Some("acme"));
            assert_eq!(
                p.allow(Some("globex"), Action::Read),
                Err(Denied::OtherTenant)
            );
            assert_eq!(p.allow(None, Action::Read), Err(Denied::OtherTenant));
            assert!(p.allow(Some("acme"), Action::Read).is_ok());
            assert_eq!(p.scope(), Some("acme"));
        }
    }

    #[test]
    fn each_role_gets_its_actions() {
        let viewer = who(Role::CustomerViewer, Some("acme"));
        assert!(viewer.allow(Some("acme"), Action::Comment).is_err());
        let analyst = who(Role::CustomerAnalyst, Some("acme"));
        assert!(analyst.allow(Some("acme"), Action::Triage).is_ok());
        assert!(analyst.allow(Some("acme"), Action::Tune).is_err());
        let padm = who(Role::ProviderAnalyst, None);
        assert!(padm.allow(Some("acme"), Action::Tune).is_ok());
        assert!(padm.allow(None, Action::Operate).is_err());
        assert!(who(Role::ProviderAdmin, None)
            .allow(None, Action::Operate)
            .is_ok());
        assert!(who(Role::CustomerAdmin, Some("acme"))
            .allow(Some("acme"), Action::Administer)
            .is_ok());
    }
}
