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
    /// Per kind: normalised value → indicators (looked up by `&str`, no allocation).
    exact: HashMap<Kind, HashMap<Box<str>, Vec<u32>>>,
    /// (is IPv6, prefix length, masked address) → indicators.
    nets: HashMap<(bool, u8, u128), Vec<u32>>,
    /// The prefix lengths present, per family, longest first.
    v4_lens: Vec<u8>,
    v6_lens: Vec<u8>,
    /// A Bloom filter over every key above (16 bits per key, 3 probes): most event
    /// values are in no feed, and this answers "no" from a few cache lines instead of
    /// a miss in tables of millions of entries.
    bloom: Vec<u64>,
}

/// FNV-1a, 64 bits: short keys, no allocation.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn exact_key(kind: Kind, v: &str) -> u64 {
    fnv(&[&[kind as u8], v.as_bytes()])
}

fn net_key(v6: bool, len: u8, masked: u128) -> u64 {
    fnv(&[&[u8::from(v6), len], &masked.to_le_bytes()])
}

impl IndicatorSet {
    fn bloom_bits(&self) -> u64 {
        self.bloom.len() as u64 * 64
    }

    fn bloom_set(&mut self, h: u64) {
        let bits = self.bloom_bits();
        let (h1, h2) = (h, h.rotate_left(32) | 1);
        for i in 0..3u64 {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) & (bits - 1);
            self.bloom[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    fn maybe(&self, h: u64) -> bool {
        let bits = self.bloom_bits();
        if bits == 0 {
            return false;
        }
        let (h1, h2) = (h, h.rotate_left(32) | 1);
        (0..3u64).all(|i| {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) & (bits - 1);
            self.bloom[(bit / 64) as usize] & (1 << (bit % 64)) != 0
        })
    }

    /// Grows the filter (and sets every key again) when the set outgrew it.
    fn grow_bloom(&mut self) {
        let want = (self.indicators.len() as u64 * 16)
            .next_power_of_two()
            .max(1 << 12);
        if self.bloom_bits() >= want {
            return;
        }
        self.bloom = vec![0; (want / 64) as usize];
        let keys: Vec<u64> = self
            .exact
            .iter()
            .flat_map(|(k, m)| m.keys().map(move |v| exact_key(*k, v)))
            .chain(self.nets.keys().map(|(v6, len, m)| net_key(*v6, *len, *m)))
            .collect();
        for h in keys {
            self.bloom_set(h);
        }
    }
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
        let key = match ind.net() {
            Some(net) => {
                let (v6, bits) = bits(net.network());
                net_key(v6, net.prefix_len(), mask(bits, net.prefix_len(), v6))
            }
            None => exact_key(ind.kind, &ind.value),
        };
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
                .entry(ind.kind)
                .or_default()
                .entry(ind.value.clone().into_boxed_str())
                .or_default()
                .push(n),
        }
        self.indicators.push(ind);
        if self.bloom_bits() < self.indicators.len() as u64 * 16 {
            self.grow_bloom();
        } else {
            self.bloom_set(key);
        }
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
                    self.ip_ids(addr, &mut ids);
                }
            }
            _ => self.exact_ids(kind, &v, &mut ids),
        }
        self.hits(ids, &v, now_ms)
    }

    /// [`lookup`](Self::lookup) for a value already in normal form — an address, or
    /// lower-case text as an event's pre-lowered copy holds it: nothing is allocated
    /// unless something matches. The hot path of matching in the stream.
    pub fn lookup_normal(&self, kind: Kind, v: &str, now_ms: i64) -> Vec<Hit<'_>> {
        let mut ids: Vec<u32> = Vec::new();
        match kind {
            Kind::Ip => {
                if self.nets.is_empty() {
                    return Vec::new();
                }
                match v.parse::<IpAddr>() {
                    Ok(addr) => self.ip_ids(addr, &mut ids),
                    Err(_) => return Vec::new(),
                }
            }
            _ => self.exact_ids(kind, v.trim_end_matches('.'), &mut ids),
        }
        if ids.is_empty() {
            return Vec::new();
        }
        self.hits(ids, v, now_ms)
    }

    fn ip_ids(&self, addr: IpAddr, ids: &mut Vec<u32>) {
        let (v6, b) = bits(addr);
        for &len in if v6 { &self.v6_lens } else { &self.v4_lens } {
            let masked = mask(b, len, v6);
            if !self.maybe(net_key(v6, len, masked)) {
                continue;
            }
            if let Some(found) = self.nets.get(&(v6, len, masked)) {
                ids.extend(found);
            }
        }
    }

    fn exact_ids(&self, kind: Kind, v: &str, ids: &mut Vec<u32>) {
        let Some(map) = self.exact.get(&kind) else {
            return;
        };
        if kind != Kind::Domain {
            if self.maybe(exact_key(kind, v)) {
                if let Some(found) = map.get(v) {
                    ids.extend(found);
                }
            }
            return;
        }
        // The name and each parent with at least two labels.
        let mut rest = v;
        loop {
            if self.maybe(exact_key(Kind::Domain, rest)) {
                if let Some(found) = map.get(rest) {
                    ids.extend(found);
                }
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => break,
            }
        }
    }

    fn hits(&self, ids: Vec<u32>, v: &str, now_ms: i64) -> Vec<Hit<'_>> {
        ids.into_iter()
            .map(|i| &self.indicators[i as usize])
            .filter(|ind| ind.valid_until_ms.map_or(true, |until| until > now_ms))
            .map(|indicator| Hit {
                indicator,
                value: v.to_owned(),
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
            + (self.exact.values().map(HashMap::capacity).sum::<usize>() + self.nets.capacity())
                * 48
            + self.bloom.len() * 8
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
