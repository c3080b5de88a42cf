//! An indicator: one value of one kind, normalised once so that matching is a lookup.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An address or a network (an address is a /32 or /128).
    Ip,
    /// A domain and every name under it.
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
    Email,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ip => "ip",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
            Kind::Email => "email",
        }
    }
}

/// Traffic Light Protocol marking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

impl Tlp {
    pub fn parse(s: &str) -> Option<Tlp> {
        Some(
            match s.trim().to_ascii_lowercase().trim_start_matches("tlp:") {
                "clear" | "white" => Tlp::Clear,
                "green" => Tlp::Green,
                "amber" => Tlp::Amber,
                "amber+strict" => Tlp::AmberStrict,
                "red" => Tlp::Red,
                _ => return None,
            },
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    pub kind: Kind,
    /// Normalised: lower-case domains/hashes/e-mail without a trailing dot, networks in
    /// canonical form (`10.0.0.0/8`), URLs with a lower-case scheme and host.
    pub value: String,
    /// The feed or file it came from.
    pub source: String,
    /// The source's id for it (a STIX id, a MISP attribute uuid), when it has one.
    pub id: Option<String>,
    /// 0–100.
    pub confidence: Option<u8>,
    pub tlp: Option<Tlp>,
    pub first_seen_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// Not matched after this.
    pub valid_until_ms: Option<i64>,
    /// What it is about (the STIX name, the MISP event's info).
    pub context: String,
}

impl Indicator {
    /// An indicator of `kind` with `value` normalised, or why the value is not one.
    pub fn new(kind: Kind, value: &str, source: &str) -> Result<Indicator, String> {
        Ok(Indicator {
            kind,
            value: normalise(kind, value)?,
            source: source.to_owned(),
            id: None,
            confidence: None,
            tlp: None,
            first_seen_ms: None,
            last_seen_ms: None,
            valid_until_ms: None,
            context: String::new(),
        })
    }

    /// The network of an IP indicator.
    pub fn net(&self) -> Option<IpNet> {
        (self.kind == Kind::Ip)
            .then(|| parse_net(&self.value))
            .flatten()
    }
}

pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// The canonical text of a value of `kind`, as events are looked up by.
pub fn normalise(kind: Kind, value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("an empty value".into());
    }
    match kind {
        Kind::Ip => parse_net(v)
            .map(|n| n.to_string())
            .ok_or_else(|| format!("{v:?} is not an IP address or network")),
        Kind::Domain => {
            let d = v.trim_end_matches('.').to_ascii_lowercase();
            let ok = d.len() <= 253
                && d.contains('.')
                && d.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            if ok {
                Ok(d)
            } else {
                Err(format!("{v:?} is not a domain name"))
            }
        }
        Kind::Url => {
            let Some((scheme, rest)) = v.split_once("://") else {
                return Err(format!("{v:?} is not a URL (no scheme)"));
            };
            let (host, path) = match rest.find(['/', '?', '#']) {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            if host.is_empty() {
                return Err(format!("{v:?} is not a URL (no host)"));
            }
            Ok(format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                if path.is_empty() { "/" } else { path }
            ))
        }
        Kind::Md5 | Kind::Sha1 | Kind::Sha256 => {
            let want = match kind {
                Kind::Md5 => 32,
                Kind::Sha1 => 40,
                _ => 64,
            };
            if v.len() == want && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(v.to_ascii_lowercase())
            } else {
                Err(format!("{v:?} is not a {} hash", kind.as_str()))
            }
        }
        Kind::Email => {
            let e = v.to_ascii_lowercase();
            match e.split_once('@') {
                Some((local, domain)) if !local.is_empty() && domain.contains('.') => Ok(e),
                _ => Err(format!("{v:?} is not an e-mail address")),
            }
        }
    }
}

/// An RFC 3339 time as milliseconds (the subset feeds use: `YYYY-MM-DDTHH:MM:SS[.f]Z`
/// or an offset), or a Unix time in seconds given as digits.
pub fn time_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().map(|secs| secs * 1000);
    }
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        ms = format!("{:0<3}", &digits[..digits.len().min(3)])
            .parse()
            .ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 60 + o[4..6].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms)
}
