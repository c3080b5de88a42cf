//! The field list a parser fills before it becomes an [`Event`]: small helpers that
//! keep empty values out, type ports and status codes as numbers, and accept an IP
//! field only when it really is an address (a `source.ip` of `-` helps nobody).

use koban_event::{Event, LogSource, Value};

#[derive(Debug, Default)]
pub(crate) struct Out {
    pub fields: Vec<(String, Value)>,
    pub timestamp: Option<i64>,
    pub logsource: LogSource,
}

impl Out {
    pub fn with_capacity(n: usize) -> Out {
        Out {
            fields: Vec::with_capacity(n),
            ..Out::default()
        }
    }

    /// A text field; empty values and the usual "no value" marks (`-`, `N/A`) are left out.
    pub fn str(&mut self, name: &str, value: &str) {
        if !value.is_empty() && value != "-" && !value.eq_ignore_ascii_case("n/a") {
            self.fields.push((name.to_owned(), Value::from(value)));
        }
    }

    /// A text field kept even when empty (source-native names rules may test for "").
    pub fn raw(&mut self, name: &str, value: &str) {
        self.fields.push((name.to_owned(), Value::from(value)));
    }

    pub fn value(&mut self, name: &str, value: Value) {
        self.fields.push((name.to_owned(), value));
    }

    /// A number when the text is one (ports, status codes, pids), else the text.
    pub fn num(&mut self, name: &str, value: &str) {
        if value.is_empty() || value == "-" {
            return;
        }
        let v = match value.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::from(value),
        };
        self.fields.push((name.to_owned(), v));
    }

    /// An address field, only when `value` parses as an IPv4/IPv6 address.
    pub fn ip(&mut self, name: &str, value: &str) -> bool {
        let ok = is_ip(value);
        if ok {
            self.fields.push((name.to_owned(), Value::from(value)));
        }
        ok
    }

    /// A port (or any number) field, only when it is a number.
    pub fn port(&mut self, name: &str, value: &str) {
        if let Ok(p) = value.parse::<i64>() {
            self.fields.push((name.to_owned(), Value::Int(p)));
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == name)
    }

    /// Sets the Sigma log source.
    pub fn source(&mut self, product: Option<&str>, services: &[&str], categories: &[&str]) {
        if let Some(p) = product {
            self.logsource.product = Some(p.into());
        }
        for s in services {
            if !self.logsource.services.iter().any(|x| &**x == *s) {
                self.logsource.services.push((*s).into());
            }
        }
        for c in categories {
            if !self.logsource.categories.iter().any(|x| &**x == *c) {
                self.logsource.categories.push((*c).into());
            }
        }
    }

    pub fn observer(&mut self, vendor: &str, product: &str) {
        self.str("observer.vendor", vendor);
        self.str("observer.product", product);
    }

    pub fn into_event(self) -> Event {
        let mut e = Event::from_fields(self.fields);
        e.timestamp = self.timestamp;
        e.logsource = self.logsource;
        e
    }
}

pub(crate) fn is_ip(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 45 {
        return false;
    }
    // Cheap reject before the std parser: an address starts with a hex digit or ':'.
    if !(b[0].is_ascii_hexdigit() || b[0] == b':') {
        return false;
    }
    s.parse::<std::net::IpAddr>().is_ok()
}

/// `Event.outcome` words ECS uses.
pub(crate) const SUCCESS: &str = "success";
pub(crate) const FAILURE: &str = "failure";

/// Lower-case transport names (`TCP`, `6` → `tcp`) for `network.transport`.
pub(crate) fn transport(proto: &str) -> Option<&'static str> {
    match proto.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Some("tcp"),
        "udp" | "17" => Some("udp"),
        "icmp" | "1" => Some("icmp"),
        "ipv6-icmp" | "icmpv6" | "icmp6" | "58" => Some("ipv6-icmp"),
        "gre" | "47" => Some("gre"),
        "esp" | "50" => Some("esp"),
        "sctp" | "132" => Some("sctp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_ports_and_dashes() {
        let mut o = Out::default();
        assert!(o.ip("source.ip", "10.0.0.1"));
        assert!(o.ip("destination.ip", "fe80::1"));
        assert!(!o.ip("x", "-"));
        assert!(!o.ip("x", "host.example"));
        o.port("source.port", "22");
        o.port("y", "ssh");
        o.str("z", "-");
        let e = o.into_event();
        assert_eq!(e.len(), 3);
        assert_eq!(e.get("source.port"), Some(&Value::Int(22)));
        assert_eq!(transport("TCP"), Some("tcp"));
    }
}
