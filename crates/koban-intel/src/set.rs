//! The indicator set events are matched against. Each lookup costs about the same
//! with ten indicators or ten million: exact values are hash lookups; a domain is
//! looked up with each of its parent names (a handful of labels); an address is
//! masked once per prefix length that occurs among the loaded networks (at most 33 for
//! IPv4, 129 for IPv6) and looked up.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::indicator::{normalise, Indicator, Kind};

/// One indicator an event value matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    pub indicator: &'a Indicator,
    /// The value as the event had it (normalised).
    pub value: String,
}

#[derive(Default)]
pub struct IndicatorSet {
    indicators: Vec<Indicator>,
    exact: HashMap<(Kind, Box<str>), Vec<u32>>,
    /// (is IPv6, prefix length, masked address) → indicators.
    nets: HashMap<(bool, u8, u128), Vec<u32>>,
    /// The prefix lengths present, per family, longest first.
    v4_lens: Vec<u8>,
    v6_lens: Vec<u8>,
}

impl IndicatorSet {
    pub fn new() -> IndicatorSet {
        IndicatorSet::default()
    }

    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    pub fn insert(&mut self, ind: Indicator) {
        let n = self.indicators.len() as u32;
        match ind.net() {
            Some(net) => {
                let (v6, bits) = bits(net.network());
                let len = net.prefix_len();
                let lens = if v6 {
                    &mut self.v6_lens
                } else {
                    &mut self.v4_lens
                };
                if !lens.contains(&len) {
                    lens.push(len);
                    lens.sort_unstable_by(|a, b| b.cmp(a));
                }
                self.nets
                    .entry((v6, len, mask(bits, len, v6)))
                    .or_default()
                    .push(n);
            }
            None => self
                .exact
                .entry((ind.kind, ind.value.clone().into_boxed_str()))
                .or_default()
                .push(n),
        }
        self.indicators.push(ind);
    }

    /// The indicators `value` (of `kind`, as an event field holds it) matches at
    /// `now_ms`; expired ones are left out.
    pub fn lookup(&self, kind: Kind, value: &str, now_ms: i64) -> Vec<Hit<'_>> {
        let Ok(mut v) = normalise(kind, value) else {
            return Vec::new();
        };
        if kind == Kind::Ip {
            // An event holds an address: show it as one, not as a /32.
            if let Some(host) = v.strip_suffix("/32").or_else(|| v.strip_suffix("/128")) {
                v = host.to_owned();
            }
        }
        let mut ids: Vec<u32> = Vec::new();
        match kind {
            Kind::Ip => {
                if let Ok(addr) = v.split('/').next().unwrap_or(&v).parse::<IpAddr>() {
                    let (v6, b) = bits(addr);
                    for &len in if v6 { &self.v6_lens } else { &self.v4_lens } {
                        if let Some(found) = self.nets.get(&(v6, len, mask(b, len, v6))) {
                            ids.extend(found);
                        }
                    }
                }
            }
            Kind::Domain => {
                // The name and each parent with at least two labels.
                let mut rest = v.as_str();
                loop {
                    if let Some(found) = self.exact.get(&(Kind::Domain, rest.into())) {
                        ids.extend(found);
                    }
                    match rest.split_once('.') {
                        Some((_, parent)) if parent.contains('.') => rest = parent,
                        _ => break,
                    }
                }
            }
            _ => {
                if let Some(found) = self.exact.get(&(kind, v.as_str().into())) {
                    ids.extend(found);
                }
            }
        }
        ids.into_iter()
            .map(|i| &self.indicators[i as usize])
            .filter(|ind| ind.valid_until_ms.map_or(true, |until| until > now_ms))
            .map(|indicator| Hit {
                indicator,
                value: v.clone(),
            })
            .collect()
    }

    /// About how many bytes the set holds (indicators, their text and the tables).
    pub fn memory_bytes(&self) -> usize {
        let text: usize = self
            .indicators
            .iter()
            .map(|i| {
                i.value.len() * 2
                    + i.source.len()
                    + i.context.len()
                    + i.id.as_ref().map_or(0, String::len)
            })
            .sum();
        text + self.indicators.capacity() * std::mem::size_of::<Indicator>()
            + (self.exact.capacity() + self.nets.capacity()) * 48
    }
}

fn bits(a: IpAddr) -> (bool, u128) {
    match a {
        IpAddr::V4(v4) => (false, u32::from(v4) as u128),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

fn mask(bits: u128, len: u8, v6: bool) -> u128 {
    let width = if v6 { 128 } else { 32 };
    if len == 0 {
        return 0;
    }
    let keep = u32::from(len.min(width));
    let shift = u32::from(width) - keep;
    (bits >> shift) << shift
}
