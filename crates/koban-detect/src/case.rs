//! The case an incident becomes: its lifecycle, the verdicts an analyst gives, and the
//! SLA clocks measured against per-severity targets.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::assess::Grade;

/// new → triage → contained → eradicated → recovered → closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseState {
    New,
    Triage,
    Contained,
    Eradicated,
    Recovered,
    Closed,
}

pub const STATES: [CaseState; 6] = [
    CaseState::New,
    CaseState::Triage,
    CaseState::Contained,
    CaseState::Eradicated,
    CaseState::Recovered,
    CaseState::Closed,
];

impl CaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::New => "new",
            CaseState::Triage => "triage",
            CaseState::Contained => "contained",
            CaseState::Eradicated => "eradicated",
            CaseState::Recovered => "recovered",
            CaseState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<CaseState> {
        STATES.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether `self → to` is a step the lifecycle allows: forward through the
    /// response phases (a phase may be skipped — an alert triaged as false positive is
    /// closed straight away), and a closed case may be reopened into triage.
    pub fn can_go_to(self, to: CaseState) -> Result<(), String> {
        if self == to {
            return Err(format!("the case is already {self}"));
        }
        if self == CaseState::Closed {
            return if to == CaseState::Triage {
                Ok(())
            } else {
                Err(format!(
                    "a closed case can only be reopened into triage, not moved to {to}"
                ))
            };
        }
        if to < self {
            return Err(format!(
                "{self} → {to} goes backwards; the lifecycle is new → triage → contained → eradicated → recovered → closed"
            ));
        }
        if self == CaseState::New && to > CaseState::Triage && to != CaseState::Closed {
            return Err(format!("a new case is triaged before it is {to}"));
        }
        Ok(())
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    TruePositive,
    FalsePositive,
    Benign,
    Duplicate,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::TruePositive => "true_positive",
            Verdict::FalsePositive => "false_positive",
            Verdict::Benign => "benign",
            Verdict::Duplicate => "duplicate",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        [
            Verdict::TruePositive,
            Verdict::FalsePositive,
            Verdict::Benign,
            Verdict::Duplicate,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// SLA targets for one severity, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTargets {
    pub detect_s: i64,
    pub acknowledge_s: i64,
    pub contain_s: i64,
    pub resolve_s: i64,
}

/// Defaults an MDR contract commonly names, tightest for critical.
pub fn default_targets(g: Grade) -> SlaTargets {
    const M: i64 = 60;
    const H: i64 = 3600;
    match g {
        Grade::Critical => SlaTargets {
            detect_s: 5 * M,
            acknowledge_s: 15 * M,
            contain_s: H,
            resolve_s: 24 * H,
        },
        Grade::High => SlaTargets {
            detect_s: 15 * M,
            acknowledge_s: 30 * M,
            contain_s: 4 * H,
            resolve_s: 72 * H,
        },
        Grade::Medium => SlaTargets {
            detect_s: H,
            acknowledge_s: 4 * H,
            contain_s: 24 * H,
            resolve_s: 7 * 24 * H,
        },
        Grade::Low => SlaTargets {
            detect_s: 4 * H,
            acknowledge_s: 24 * H,
            contain_s: 72 * H,
            resolve_s: 30 * 24 * H,
        },
    }
}

/// One SLA clock: how long it took (or has been running), its target, and whether it
/// is breached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clock {
    pub name: &'static str,
    pub target_s: i64,
    /// Seconds taken, when the clock stopped.
    pub took_s: Option<i64>,
    /// Seconds running so far, while it has not stopped.
    pub running_s: Option<i64>,
    pub breached: bool,
}

/// When an incident reached each point, in ms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Milestones {
    /// The first event was received by Koban.
    pub first_received: Option<i64>,
    pub created: i64,
    pub acknowledged: Option<i64>,
    pub contained: Option<i64>,
    pub resolved: Option<i64>,
}

pub fn clocks(m: &Milestones, t: &SlaTargets, now_ms: i64) -> Vec<Clock> {
    let clock = |name, from: Option<i64>, to: Option<i64>, target_s: i64| {
        let Some(from) = from else {
            return Clock {
                name,
                target_s,
                took_s: None,
                running_s: None,
                breached: false,
            };
        };
        match to {
            Some(to) => {
                let took = (to - from).max(0) / 1000;
                Clock {
                    name,
                    target_s,
                    took_s: Some(took),
                    running_s: None,
                    breached: took > target_s,
                }
            }
            None => {
                let running = (now_ms - from).max(0) / 1000;
                Clock {
                    name,
                    target_s,
                    took_s: None,
                    running_s: Some(running),
                    breached: running > target_s,
                }
            }
        }
    };
    vec![
        clock("detect", m.first_received, Some(m.created), t.detect_s),
        clock(
            "acknowledge",
            Some(m.created),
            m.acknowledged,
            t.acknowledge_s,
        ),
        clock(
            "contain",
            Some(m.created),
            m.contained.or(m.resolved),
            t.contain_s,
        ),
        clock("resolve", Some(m.created), m.resolved, t.resolve_s),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_goes_forward_closes_from_anywhere_and_reopens_into_triage() {
        use CaseState::*;
        assert!(New.can_go_to(Triage).is_ok());
        assert!(Triage.can_go_to(Contained).is_ok());
        assert!(Contained.can_go_to(Recovered).is_ok());
        assert!(New.can_go_to(Closed).is_ok());
        assert!(Closed.can_go_to(Triage).is_ok());
        assert!(New.can_go_to(Contained).is_err());
        assert!(Contained.can_go_to(Triage).is_err());
        assert!(Closed.can_go_to(New).is_err());
        assert!(Triage.can_go_to(Triage).is_err());
    }

    #[test]
    fn a_running_clock_breaches_when_it_passes_its_target() {
        let t = default_targets(Grade::Critical);
        let m = Milestones {
            first_received: Some(0),
            created: 60_000,
            ..Default::default()
        };
        let c = clocks(&m, &t, 60_000 + 16 * 60_000);
        assert_eq!(c[0].took_s, Some(60));
        assert!(!c[0].breached);
        assert_eq!(c[1].running_s, Some(16 * 60));
        assert!(
            c[1].breached,
            "15 minutes to acknowledge a critical incident"
        );
        assert!(!c[2].breached);
    }
}
