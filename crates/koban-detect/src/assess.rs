//! An incident's severity, impact and urgency, each with the reason an analyst reads.
//!
//! - **Severity** — how bad the activity is: the highest rule level, raised one grade
//!   when the alerts span three or more ATT&CK tactics (a multi-stage attack).
//! - **Impact** — how much it touches: the criticality of the hosts and users involved
//!   (configured per asset group), raised for spread across hosts and for privileged
//!   accounts.
//! - **Urgency** — how soon someone must act: the higher of severity and impact, raised
//!   when the attack reached a late stage (credential access, lateral movement,
//!   command and control, exfiltration, impact).

use std::fmt;

use koban_sigma::Level;
use serde::{Deserialize, Serialize};

use crate::entities::is_privileged_account;

/// A four-step grade, low to critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    Low,
    Medium,
    High,
    Critical,
}

impl Grade {
    pub fn from_level(l: Level) -> Grade {
        match l {
            Level::Informational | Level::Low => Grade::Low,
            Level::Medium => Grade::Medium,
            Level::High => Grade::High,
            Level::Critical => Grade::Critical,
        }
    }

    pub fn raised(self, steps: u8) -> Grade {
        let n = (self as u8).saturating_add(steps).min(3);
        [Grade::Low, Grade::Medium, Grade::High, Grade::Critical][n as usize]
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Low => "low",
            Grade::Medium => "medium",
            Grade::High => "high",
            Grade::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Grade> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Some(Grade::Low),
            "medium" | "normal" => Some(Grade::Medium),
            "high" => Some(Grade::High),
            "critical" => Some(Grade::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ATT&CK tactics in kill-chain order.
pub const KILL_CHAIN: [&str; 14] = koban_sigma::TACTICS;

const LATE_STAGE: [&str; 5] = [
    "credential-access",
    "lateral-movement",
    "command-and-control",
    "exfiltration",
    "impact",
];

/// Tactics sorted into kill-chain order, unknown names last, no repeats.
pub fn kill_chain_order<'a>(tactics: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = tactics.into_iter().map(str::to_owned).collect();
    v.sort_by_key(|t| {
        (
            KILL_CHAIN
                .iter()
                .position(|k| k == t)
                .unwrap_or(KILL_CHAIN.len()),
            t.clone(),
        )
    });
    v.dedup();
    v
}

/// What the assessment looks at.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The highest rule level among the alerts, and that rule's title.
    pub top_level: Level,
    pub top_rule: &'a str,
    pub tactics: &'a [String],
    pub hosts: &'a [String],
    pub users: &'a [String],
    /// The most critical configured asset group the hosts/users fall in, if any:
    /// (grade, group name, the asset).
    pub critical_asset: Option<(Grade, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rated {
    pub grade: Grade,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub severity: Rated,
    pub impact: Rated,
    pub urgency: Rated,
}

pub fn assess(f: &Facts<'_>) -> Assessment {
    let chain = kill_chain_order(f.tactics.iter().map(String::as_str));
    let base = Grade::from_level(f.top_level);
    let mut why = format!(
        "highest rule level {} ({})",
        f.top_level.as_str(),
        f.top_rule
    );
    let severity = if chain.len() >= 3 {
        why.push_str(&format!(
            "; {} ATT&CK tactics from {} to {}: a multi-stage attack, raised one grade",
            chain.len(),
            chain[0],
            chain[chain.len() - 1]
        ));
        base.raised(1)
    } else {
        base
    };
    let severity = Rated {
        grade: severity,
        reason: why,
    };

    let (mut impact, mut why) = match &f.critical_asset {
        Some((g, group, asset)) => (*g, format!("{asset} is in asset group `{group}` ({g})")),
        None => (
            Grade::Medium,
            "no configured asset group: normal criticality".to_owned(),
        ),
    };
    let n_hosts = f.hosts.len();
    if n_hosts >= 10 {
        impact = impact.raised(2);
        why.push_str(&format!(
            "; spread across {n_hosts} hosts, raised two grades"
        ));
    } else if n_hosts >= 3 {
        impact = impact.raised(1);
        why.push_str(&format!(
            "; spread across {n_hosts} hosts, raised one grade"
        ));
    }
    let privileged: Vec<&str> = f
        .users
        .iter()
        .map(String::as_str)
        .filter(|u| is_privileged_account(u))
        .collect();
    if !privileged.is_empty() {
        impact = impact.raised(1);
        why.push_str(&format!(
            "; privileged account{} involved ({}), raised one grade",
            if privileged.len() > 1 { "s" } else { "" },
            privileged.join(", ")
        ));
    }
    let impact = Rated {
        grade: impact,
        reason: why,
    };

    let mut urgency = severity.grade.max(impact.grade);
    let mut why = format!(
        "the higher of severity ({}) and impact ({})",
        severity.grade, impact.grade
    );
    let late: Vec<&str> = chain
        .iter()
        .map(String::as_str)
        .filter(|t| LATE_STAGE.contains(t))
        .collect();
    if !late.is_empty() {
        urgency = urgency.raised(1);
        why.push_str(&format!(
            "; the attack reached {}, raised one grade",
            late.join(", ")
        ));
    }
    Assessment {
        severity,
        impact,
        urgency: Rated {
            grade: urgency,
            reason: why,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_medium_rule_on_one_host_is_medium_all_round() {
        let a = assess(&Facts {
            top_level: Level::Medium,
            top_rule: "Suspicious Thing",
            tactics: &["execution".into()],
            hosts: &["ws1".into()],
            users: &["alice".into()],
            critical_asset: None,
        });
        assert_eq!(a.severity.grade, Grade::Medium);
        assert_eq!(a.impact.grade, Grade::Medium);
        assert_eq!(a.urgency.grade, Grade::Medium);
        assert!(a.severity.reason.contains("Suspicious Thing"));
    }

    #[test]
    fn a_multi_stage_attack_on_a_critical_asset_with_an_admin_is_raised_with_reasons() {
        let tactics: Vec<String> = ["credential-access", "execution", "lateral-movement"]
            .map(String::from)
            .to_vec();
        let a = assess(&Facts {
            top_level: Level::High,
            top_rule: "LSASS Access",
            tactics: &tactics,
            hosts: &["dc01".into(), "ws1".into(), "ws2".into()],
            users: &["CORP\\Administrator".into()],
            critical_asset: Some((Grade::High, "domain controllers".into(), "dc01".into())),
        });
        assert_eq!(a.severity.grade, Grade::Critical, "{}", a.severity.reason);
        assert!(a
            .severity
            .reason
            .contains("from execution to lateral-movement"));
        assert_eq!(a.impact.grade, Grade::Critical, "{}", a.impact.reason);
        assert!(a.impact.reason.contains("domain controllers"));
        assert!(a.impact.reason.contains("Administrator"));
        assert_eq!(a.urgency.grade, Grade::Critical);
        assert!(a.urgency.reason.contains("lateral-movement"));
    }

    #[test]
    fn tactics_sort_in_kill_chain_order() {
        assert_eq!(
            kill_chain_order(["impact", "execution", "weird", "execution"]),
            vec!["execution", "impact", "weird"]
        );
    }
}
