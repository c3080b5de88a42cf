//! The normalised event every Koban stage passes along.
//!
//! An [`Event`] is a flat set of named fields (nested input is flattened by the
//! readers), a timestamp, the log source it came from and, where the reader has it
//! cheaply, the original record. Field names are looked up case-insensitively:
//! Sigma rules, ECS documents and EVTX exports disagree on case, and analysts expect
//! `commandline` to find `CommandLine`.
//!
//! String values carry a lower-cased copy made once when the event is built, because
//! Sigma matching is case-insensitive by default and every rule would otherwise lower
//! the same value again.

mod time;
mod value;

pub use time::{format_rfc3339, parse_timestamp};
pub use value::{Text, Value};

/// One named field of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The name as the source spelled it.
    pub name: Box<str>,
    /// The name lower-cased (the lookup key) when that differs from `name`; most
    /// names are lower case already, and one copy less per field was measurable on
    /// the ingest path.
    lower: Option<Box<str>>,
    /// [`key_hash`] of the key, computed once, for fast membership tests.
    hash: u64,
    pub value: Value,
}

impl Field {
    #[inline]
    pub fn key(&self) -> &str {
        self.lower.as_deref().unwrap_or(&self.name)
    }

    pub fn key_hash(&self) -> u64 {
        self.hash
    }

    fn new(name: Box<str>, value: Value) -> Field {
        let lower = lower_key(&name);
        Field {
            hash: key_hash(lower.as_deref().unwrap_or(&name)),
            name,
            lower,
            value,
        }
    }
}

/// FNV-1a of a lower-cased field name: cheap, and stable within a process, so callers
/// can test "is this one of my fields" by number.
pub fn key_hash(key: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = Fnv::default();
    h.write(key.as_bytes());
    h.finish()
}

/// FNV-1a: a fast, non-keyed hash for short trusted keys (field names, log sources),
/// where std's DoS-resistant SipHash is measurable cost on the matching path.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// `BuildHasher` for [`Fnv`].
pub type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

/// Where an event came from, in Sigma's terms: `product`, and the `service` and
/// `category` values it belongs to (a Sysmon process-creation event is both
/// `service: sysmon` and `category: process_creation`; an sshd line is both
/// `service: sshd` and `service: auth`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LogSource {
    pub product: Option<Box<str>>,
    pub services: Vec<Box<str>>,
    pub categories: Vec<Box<str>>,
}

/// The order fields are kept in: by length, then bytes. Lookups then mostly decide on
/// the length alone instead of comparing bytes (a measured hot spot of rule matching).
#[inline]
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The lookup key of a field name. Names are nearly always ASCII, where the byte-wise
/// lowering is several times cheaper than the Unicode one (measured on the ingest path).
/// `None` when the name is its own key (already lower case).
fn lower_key(name: &str) -> Option<Box<str>> {
    // One pass: upper-case ASCII or any non-ASCII byte needs a look.
    if !name
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        None
    } else if name.is_ascii() {
        Some(name.to_ascii_lowercase().into_boxed_str())
    } else {
        let lower = name.to_lowercase();
        (lower != name).then(|| lower.into_boxed_str())
    }
}

/// A normalised event.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// Sorted by lower-cased name (shorter names first, see `key_order`); duplicates
    /// keep the first value added.
    fields: Vec<Field>,
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp: Option<i64>,
    pub logsource: LogSource,
    /// The original record text when the reader had it (NDJSON line, syslog line).
    pub original: Option<Box<str>>,
}

impl Event {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an event from unsorted fields; the first of duplicate names wins.
    pub fn from_fields(fields: Vec<(String, Value)>) -> Self {
        let mut event = Event {
            fields: Vec::with_capacity(fields.len()),
            ..Event::default()
        };
        for (name, value) in fields {
            event.fields.push(Field::new(name.into_boxed_str(), value));
        }
        // Stable sort keeps the insertion order among equal keys, so dedup keeps the first.
        event.fields.sort_by(|a, b| key_order(a.key(), b.key()));
        event
            .fields
            .dedup_by(|later, first| later.key() == first.key());
        event
    }

    /// Adds a field unless one with the same (case-insensitive) name exists.
    /// Returns whether it was added.
    pub fn insert(&mut self, name: &str, value: Value) -> bool {
        let lower = lower_key(name);
        let key = lower.as_deref().unwrap_or(name);
        match self.fields.binary_search_by(|f| key_order(f.key(), key)) {
            Ok(_) => false,
            Err(at) => {
                let hash = key_hash(key);
                let field = Field {
                    name: name.into(),
                    lower,
                    hash,
                    value,
                };
                self.fields.insert(at, field);
                true
            }
        }
    }

    /// Looks a field up by its lower-cased name (the form compiled rules keep).
    #[inline]
    pub fn get_lower(&self, key: &str) -> Option<&Value> {
        self.fields
            .binary_search_by(|f| key_order(f.key(), key))
            .ok()
            .map(|i| &self.fields[i].value)
    }

    /// Looks a field up by name, ignoring case.
    pub fn get(&self, name: &str) -> Option<&Value> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) || !name.is_ascii() {
            self.get_lower(&name.to_lowercase())
        } else {
            self.get_lower(name)
        }
    }

    /// A string view of a field (numbers and booleans rendered), for display.
    pub fn get_str(&self, name: &str) -> Option<String> {
        self.get(name).and_then(Value::to_display)
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_first_duplicate_wins() {
        let e = Event::from_fields(vec![
            ("CommandLine".into(), Value::from("A")),
            ("commandline".into(), Value::from("B")),
            ("EventID".into(), Value::Int(1)),
        ]);
        assert_eq!(e.len(), 2);
        assert_eq!(e.get_str("COMMANDLINE").as_deref(), Some("A"));
        assert_eq!(e.get("eventid"), Some(&Value::Int(1)));
        assert!(e.get("missing").is_none());
    }

    #[test]
    fn insert_keeps_order_and_refuses_duplicates() {
        let mut e = Event::new();
        assert!(e.insert("b", Value::Int(2)));
        assert!(e.insert("A", Value::Int(1)));
        assert!(!e.insert("a", Value::Int(3)));
        assert_eq!(e.fields()[0].name.as_ref(), "A");
        assert_eq!(e.get("a"), Some(&Value::Int(1)));
    }
}
