//! Threat intelligence, with no I/O beyond what the caller hands in.
//!
//! - [`indicator`]: what an indicator is (IP or network, domain, URL, hash, e-mail
//!   address) with its source, confidence, TLP and validity, normalised once;
//! - [`stix`]: STIX 2.1 patterns parsed properly, bundles imported — every indicator
//!   either imported or reported unsupported with its reason;
//! - [`misp`]: MISP event JSON (attributes and objects);
//! - [`list`]: CSV and plain lists;
//! - [`set`]: the indicator set events are matched against: hash lookups per kind,
//!   domains by their parent labels, networks by prefix length — the cost per value
//!   stays flat however many indicators are loaded;
//! - [`warninglist`]: MISP warning lists, the known-benign values that must not alert;
//! - [`attack`]: the ATT&CK catalogue (technique names and tactics) from its STIX bundle.

pub mod attack;
pub mod indicator;
pub mod list;
pub mod misp;
pub mod set;
pub mod stix;
pub mod warninglist;

pub use indicator::{Indicator, Kind, Tlp};
pub use set::{Hit, IndicatorSet};

use std::collections::BTreeMap;

/// What an import came to: indicators taken, and those left out with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: usize,
    /// Reason → how many.
    pub unsupported: BTreeMap<String, usize>,
}

impl ImportReport {
    pub fn skip(&mut self, why: impl Into<String>) {
        *self.unsupported.entry(why.into()).or_default() += 1;
    }

    pub fn unsupported_total(&self) -> usize {
        self.unsupported.values().sum()
    }
}
