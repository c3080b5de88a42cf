//! MISP warning lists: values known to be benign (public resolvers, cloud ranges,
//! top sites, RFC 1918 space) that must not raise an alert however an indicator feed
//! lists them. Types `cidr`, `string`, `hostname` and `substring` are matched;
//! `regex` lists are reported as not evaluated.

use serde_json::Value;

use crate::indicator::{parse_net, Indicator, Kind};
use crate::set::IndicatorSet;

#[derive(Default)]
pub struct WarningLists {
    /// Networks and exact values and domains, as indicators whose source is the list.
    set: IndicatorSet,
    substrings: Vec<(String, String)>,
    pub names: Vec<String>,
    /// Lists (by name) Koban does not evaluate, with the reason.
    pub not_evaluated: Vec<(String, String)>,
}

impl WarningLists {
    pub fn new() -> WarningLists {
        WarningLists::default()
    }

    /// Adds one warning list document; returns how many entries it took.
    pub fn add(&mut self, doc: &Value) -> Result<usize, String> {
        let name = doc["name"]
            .as_str()
            .ok_or("a warning list without a name")?
            .to_owned();
        let kind = doc["type"].as_str().unwrap_or("string");
        let list = doc["list"]
            .as_array()
            .ok_or_else(|| format!("{name}: no list"))?;
        let mut n = 0;
        for v in list.iter().filter_map(Value::as_str) {
            let v = v.trim();
            match kind {
                "cidr" => {
                    if let Some(net) = parse_net(v) {
                        if let Ok(i) = Indicator::new(Kind::Ip, &net.to_string(), &name) {
                            self.set.insert(i);
                            n += 1;
                        }
                    }
                }
                "hostname" => {
                    if let Ok(i) = Indicator::new(Kind::Domain, v, &name) {
                        self.set.insert(i);
                        n += 1;
                    }
                }
                "string" => {
                    // A string list holds whatever the attributes held: addresses,
                    // hashes, domains, URLs.
                    if let Some(k) = crate::list::guess(v) {
                        if let Ok(i) = Indicator::new(k, v, &name) {
                            self.set.insert(i);
                            n += 1;
                        }
                    }
                }
                "substring" => {
                    self.substrings.push((v.to_ascii_lowercase(), name.clone()));
                    n += 1;
                }
                other => {
                    self.not_evaluated
                        .push((name.clone(), format!("type {other} is not evaluated")));
                    return Ok(0);
                }
            }
        }
        self.names.push(name);
        Ok(n)
    }

    /// The warning list that holds `value`, if one does.
    pub fn benign(&self, kind: Kind, value: &str) -> Option<&str> {
        if let Some(h) = self.set.lookup(kind, value, i64::MIN).into_iter().next() {
            return Some(h.indicator.source.as_str());
        }
        let v = value.to_ascii_lowercase();
        self.substrings
            .iter()
            .find(|(s, _)| v.contains(s.as_str()))
            .map(|(_, n)| n.as_str())
    }
}
