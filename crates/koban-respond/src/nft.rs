//! The nftables rules an agent loads for isolation and IP blocks, and the reading of
//! what the kernel actually holds, for verification.
//!
//! Both tables are declarative: each change rebuilds the whole table from the agent's
//! wanted state (`add table` + `delete table` + the definition, in one `nft -f`
//! transaction), so loading twice changes nothing and a half-applied state cannot
//! remain. The tables hook in before most distribution firewalls (priority −200) so
//! their accept rules cannot reopen an isolated host.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

pub const ISOLATE_TABLE: &str = "koban_isolate";
pub const BLOCK_TABLE: &str = "koban_block";

/// The isolation table: only loopback, IPv6 neighbour discovery, and TCP to and from
/// the Koban server's addresses pass.
pub fn isolation_script(servers: &[SocketAddr]) -> String {
    let mut out = String::new();
    replace_table(&mut out, ISOLATE_TABLE);
    let _ = writeln!(out, "table inet {ISOLATE_TABLE} {{");
    for (chain, hook, iface, dir) in [
        ("output", "output", "oifname", "d"),
        ("input", "input", "iifname", "s"),
    ] {
        let _ = writeln!(out, "  chain {chain} {{");
        let _ = writeln!(
            out,
            "    type filter hook {hook} priority -200; policy drop;"
        );
        let _ = writeln!(out, "    {iface} \"lo\" accept");
        let _ = writeln!(
            out,
            "    icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert }} accept"
        );
        for s in servers {
            let family = if s.is_ipv4() { "ip" } else { "ip6" };
            // Out: to the server's port; in: from it.
            let port = if dir == "d" { "dport" } else { "sport" };
            let _ = writeln!(
                out,
                "    {family} {dir}addr {} tcp {port} {} accept",
                s.ip(),
                s.port()
            );
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

/// Lifting isolation: the table goes.
pub fn release_script() -> String {
    let mut out = String::new();
    replace_table(&mut out, ISOLATE_TABLE);
    out
}

/// The block table holding exactly `nets`, both directions. The server's own
/// addresses are never blocked (the caller filters them out first: see
/// [`blockable`]).
pub fn block_script(nets: &[IpNet]) -> String {
    let mut out = String::new();
    replace_table(&mut out, BLOCK_TABLE);
    let _ = writeln!(out, "table inet {BLOCK_TABLE} {{");
    for (set, ty, members) in [
        (
            "v4",
            "ipv4_addr",
            nets.iter()
                .filter(|n| matches!(n, IpNet::V4(_)))
                .collect::<Vec<_>>(),
        ),
        (
            "v6",
            "ipv6_addr",
            nets.iter()
                .filter(|n| matches!(n, IpNet::V6(_)))
                .collect::<Vec<_>>(),
        ),
    ] {
        let _ = writeln!(out, "  set {set} {{");
        let _ = writeln!(out, "    type {ty}; flags interval;");
        if !members.is_empty() {
            let list: Vec<String> = members.iter().map(|n| n.trunc().to_string()).collect();
            let _ = writeln!(out, "    elements = {{ {} }}", list.join(", "));
        }
        out.push_str("  }\n");
    }
    for (chain, dir) in [("input", "s"), ("output", "d")] {
        let _ = writeln!(out, "  chain {chain} {{");
        let _ = writeln!(
            out,
            "    type filter hook {chain} priority -190; policy accept;"
        );
        let _ = writeln!(out, "    ip {dir}addr @v4 drop");
        let _ = writeln!(out, "    ip6 {dir}addr @v6 drop");
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

/// Whether blocking `net` would cut the agent off from one of its servers.
pub fn blockable(net: &IpNet, servers: &[SocketAddr]) -> Result<(), IpAddr> {
    match servers.iter().find(|s| net.contains(&s.ip())) {
        Some(s) => Err(s.ip()),
        None => Ok(()),
    }
}

/// `add` makes the table exist so that `delete` cannot fail; the definition after
/// them (if any) starts from nothing.
fn replace_table(out: &mut String, table: &str) {
    let _ = writeln!(out, "add table inet {table}");
    let _ = writeln!(out, "delete table inet {table}");
}

/// What `nft -j list table inet <table>` shows: whether the table is there, the
/// chains' policies, and every set's elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub present: bool,
    /// (chain, policy) for each base chain.
    pub policies: Vec<(String, String)>,
    /// Set elements as networks (single addresses as /32 or /128).
    pub elements: Vec<IpNet>,
    /// Elements in a form this reader does not understand (ranges, concatenations),
    /// shown rather than dropped.
    pub unreadable: Vec<String>,
}

/// Reads nft's JSON listing. An empty or absent listing means no table.
pub fn read_listing(json: &str) -> Result<Listing, String> {
    let mut listing = Listing::default();
    if json.trim().is_empty() {
        return Ok(listing);
    }
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("nft's JSON listing: {e}"))?;
    let items = v["nftables"]
        .as_array()
        .ok_or_else(|| "nft's JSON listing has no \"nftables\" array".to_string())?;
    for item in items {
        if item.get("table").is_some() {
            listing.present = true;
        }
        if let Some(chain) = item.get("chain") {
            if let (Some(name), Some(policy)) = (chain["name"].as_str(), chain["policy"].as_str()) {
                listing.policies.push((name.to_owned(), policy.to_owned()));
            }
        }
        if let Some(elems) = item.get("set").and_then(|s| s["elem"].as_array()) {
            for e in elems {
                match element(e) {
                    Some(n) => listing.elements.push(n),
                    None => listing.unreadable.push(e.to_string()),
                }
            }
        }
    }
    Ok(listing)
}

fn element(e: &serde_json::Value) -> Option<IpNet> {
    if let Some(a) = e.as_str() {
        return a.parse::<IpAddr>().ok().map(IpNet::from);
    }
    if let Some(p) = e.get("prefix") {
        let addr: IpAddr = p["addr"].as_str()?.parse().ok()?;
        let len = u8::try_from(p["len"].as_u64()?).ok()?;
        return IpNet::new(addr, len).ok();
    }
    // {"elem": {"val": …, "timeout": …}} wraps a value with options.
    e.get("elem").and_then(|inner| element(&inner["val"]))
}
