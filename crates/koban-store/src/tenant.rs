//! Tenant ids and day names: the two path components of a partition.
//!
//! Both become directory names, so both are validated before they touch the file
//! system: a tenant id of `../x` must never escape the store directory.

use std::fmt;

use crate::StoreError;

const DAY_MS: i64 = 86_400_000;

/// A validated tenant id: 1–64 characters of `[a-z0-9_-]`, not starting with `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(Box<str>);

impl TenantId {
    pub fn new(id: &str) -> Result<TenantId, StoreError> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && !id.starts_with('-')
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(TenantId(id.into()))
        } else {
            Err(StoreError::InvalidTenant(id.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UTC day, as days since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    pub fn of_ms(ms: i64) -> Day {
        Day(ms.div_euclid(DAY_MS))
    }

    pub fn start_ms(self) -> i64 {
        self.0 * DAY_MS
    }

    pub fn end_ms(self) -> i64 {
        self.start_ms() + DAY_MS
    }

    /// `yyyy-mm-dd`, the partition's directory name.
    pub fn name(self) -> String {
        let mut s = koban_event::format_rfc3339(self.start_ms());
        s.truncate(10);
        s
    }

    /// Parses a directory name back; anything that does not round-trip is not ours.
    pub fn parse(name: &str) -> Option<Day> {
        let ms = koban_event::parse_timestamp(&format!("{name}T00:00:00Z"))?;
        let day = Day::of_ms(ms);
        (day.name() == name).then_some(day)
    }
}

/// A partition's identity: one tenant, one receive day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub tenant: TenantId,
    pub day: Day,
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.day.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_path_safe() {
        for good in ["acme", "a", "cust_01", "x-y"] {
            assert!(TenantId::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "Acme",
            "-x",
            ".hidden",
            "a b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(TenantId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn day_names_round_trip() {
        let day = Day::of_ms(1_591_743_054_000); // 2020-06-09T22:50:54Z
        assert_eq!(day.name(), "2020-06-09");
        assert_eq!(Day::parse("2020-06-09"), Some(day));
        assert_eq!(Day::parse("2020-6-9"), None);
        assert_eq!(Day::of_ms(-1).name(), "1969-12-31");
    }
}
