//! The server's sections of `koban.toml`: `[server]`, `[syslog]` (with `[syslog.udp]`,
//! `[syslog.tcp]`, `[syslog.tls]`, `[[syslog.routes]]`), `[wal]`, `[backpressure]` and
//! `[detection]`.
//!
//! Parsed in two steps: the TOML table is walked key by key, so every unknown key and
//! every wrong value is reported at once with its path; only then are the values turned
//! into types that cannot be wrong. No file at all gives working loopback defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use koban_wal::FsyncPolicy;
use toml::{Table, Value};

/// One syslog listener: where it listens and whose records arrive there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogListener {
    /// `None`: the listener is off.
    pub listen: Option<SocketAddr>,
    pub tenant: String,
    pub source: String,
}

/// Records from senders in `cidr` belong to `tenant` (and `source`, when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogRoute {
    pub cidr: IpNet,
    pub tenant: String,
    pub source: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// HTTPS for every HTTP endpoint; `None` turns it off.
    pub https: Option<SocketAddr>,
    /// PEM files; when both are absent a self-signed pair is made in the data dir.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub max_body_bytes: usize,
    pub max_evtx_bytes: usize,
    pub syslog_udp: SyslogListener,
    pub syslog_tcp: SyslogListener,
    pub syslog_tls: SyslogListener,
    pub syslog_routes: Vec<SyslogRoute>,
    pub max_frame_bytes: usize,
    pub max_connections: usize,
    /// HTTP requests with bodies handled at once (memory: this × `max_body_bytes`).
    pub max_inflight_requests: usize,
    pub fsync: FsyncPolicy,
    pub segment_bytes: u64,
    pub max_backlog_records: u64,
    pub max_backlog_bytes: u64,
    pub retry_after_secs: u64,
    pub detection: DetectionConfig,
    /// `[[respond.connectors]]`: where webhook and command actions go.
    pub connectors: Vec<crate::respond::ConnectorConfig>,
    /// `[intel] files`: indicator files or folders (STIX, MISP, CSV, lists).
    pub intel_files: Vec<PathBuf>,
    /// `[intel] warninglists`: MISP warning list files or folders.
    pub intel_warninglists: Vec<PathBuf>,
}

/// `[detection]`: the global rule set and how alerts fold and group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionConfig {
    /// Streaming detection on (Koban's own rules run even with no folder named).
    pub enabled: bool,
    /// Sigma rule files or folders every tenant inherits.
    pub rules: Vec<PathBuf>,
    pub dedup_window_ms: i64,
    pub incident_window_ms: i64,
    /// How often rule files are checked for changes (0: never; reload by API).
    pub rules_poll_secs: u64,
}

impl DetectionConfig {
    /// How alerts fold and group under this configuration.
    pub fn grouping(&self) -> crate::alerts::Grouping {
        crate::alerts::Grouping {
            dedup_window_ms: self.dedup_window_ms,
            incident_window_ms: self.incident_window_ms,
            ..crate::alerts::Grouping::default()
        }
    }
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            enabled: true,
            rules: Vec::new(),
            dedup_window_ms: 3_600_000,
            incident_window_ms: 4 * 3_600_000,
            rules_poll_secs: 30,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let listener = |addr: &str, source: &str| SyslogListener {
            listen: Some(addr.parse().expect("valid default address")),
            tenant: "default".into(),
            source: source.into(),
        };
        ServerConfig {
            data_dir: PathBuf::from("./koban-data"),
            https: Some("127.0.0.1:8443".parse().expect("valid default address")),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: 32 << 20,
            max_evtx_bytes: 256 << 20,
            syslog_udp: listener("127.0.0.1:5514", "syslog-udp"),
            syslog_tcp: listener("127.0.0.1:5514", "syslog-tcp"),
            syslog_tls: listener("127.0.0.1:6514", "syslog-tls"),
            syslog_routes: Vec::new(),
            max_frame_bytes: 1 << 20,
            max_connections: 4096,
            max_inflight_requests: crate::http::DEFAULT_INFLIGHT,
            fsync: FsyncPolicy::Always,
            segment_bytes: 64 << 20,
            max_backlog_records: 2_000_000,
            max_backlog_bytes: 1 << 30,
            retry_after_secs: 1,
            detection: DetectionConfig::default(),
            connectors: Vec::new(),
            intel_files: Vec::new(),
            intel_warninglists: Vec::new(),
        }
    }
}

/// One problem in the configuration, at a dotted key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// Every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| format!("{}: {}", e.key, e.message)).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Walks one table, collecting errors under a path prefix.
struct Walk<'e, 't> {
    errors: &'e mut Vec<ConfigError>,
    prefix: String,
    table: &'t Table,
}

impl<'e, 't> Walk<'e, 't> {
    fn new(
        errors: &'e mut Vec<ConfigError>,
        prefix: &str,
        table: &'t Table,
        known: &[&str],
    ) -> Self {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                errors.push(ConfigError {
                    key: format!("{prefix}{key}"),
                    message: format!("unknown key (known: {})", known.join(", ")),
                });
            }
        }
        Walk {
            errors,
            prefix: prefix.to_owned(),
            table,
        }
    }

    fn err(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            key: format!("{}{key}", self.prefix),
            message: message.into(),
        });
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.table.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.err(
                    key,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn uint(&mut self, key: &str, min: u64) -> Option<u64> {
        match self.table.get(key)? {
            Value::Integer(i) if *i >= min as i64 => Some(*i as u64),
            Value::Integer(i) => {
                self.err(key, format!("{i} is below the minimum of {min}"));
                None
            }
            other => {
                self.err(
                    key,
                    format!("expected an integer, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// An address, or "" / "off" for none.
    fn addr(&mut self, key: &str) -> Option<Option<SocketAddr>> {
        let s = self.string(key)?;
        if s.is_empty() || s == "off" {
            return Some(None);
        }
        match s.parse() {
            Ok(a) => Some(Some(a)),
            Err(_) => {
                self.err(
                    key,
                    format!("`{s}` is not an address like 127.0.0.1:8443 (or \"off\")"),
                );
                None
            }
        }
    }

    fn name(&mut self, key: &str) -> Option<String> {
        let s = self.string(key)?;
        if valid_name(&s) {
            Some(s)
        } else {
            self.err(
                key,
                format!("`{s}` is not a name (letters, digits, `-`, `_`, `.`; 1-64)"),
            );
            None
        }
    }

    fn tenant(&mut self, key: &str) -> Option<String> {
        let s = self.name(key)?;
        if valid_tenant(&s) {
            Some(s)
        } else {
            self.err(
                key,
                format!("`{s}` is not a tenant id (lower-case letters, digits, `-`, `_`)"),
            );
            None
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.table.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.err(
                    key,
                    format!("expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A timespan like `30s`, `5m`, `4h`, `1d`.
    fn timespan(&mut self, key: &str) -> Option<i64> {
        let s = self.string(key)?;
        match koban_sigma::parse_timespan(&s) {
            Some(ms) if ms > 0 => Some(ms),
            _ => {
                self.err(
                    key,
                    format!("`{s}` is not a timespan like 30s, 5m, 4h or 1d"),
                );
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        match self.table.get(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        other => self.err(
                            &format!("{key}[{i}]"),
                            format!("expected a string, found {}", other.type_str()),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                self.err(
                    key,
                    format!("expected an array of strings, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn table(&mut self, key: &str) -> Option<&'t Table> {
        match self.table.get(key)? {
            Value::Table(t) => Some(t),
            other => {
                self.err(key, format!("expected a table, found {}", other.type_str()));
                None
            }
        }
    }
}

/// Tenant names: they name the event store's directories, so its rule applies
/// (lower-case letters, digits, `-`, `_`; 1-64; not starting with `-`).
pub fn valid_tenant(s: &str) -> bool {
    koban_store::TenantId::new(s).is_ok()
}

/// Tenant and source names: short, printable, safe in paths and metric labels.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl ServerConfig {
    /// Reads the server sections of a whole `koban.toml` table; other sections are left
    /// to their owners.
    pub fn from_table(root: &Table) -> Result<ServerConfig, ConfigErrors> {
        let mut c = ServerConfig::default();
        let mut errors = Vec::new();
        if let Some(Value::Table(t)) = root.get("server") {
            let mut w = Walk::new(
                &mut errors,
                "server.",
                t,
                &[
                    "data_dir",
                    "https",
                    "tls_cert",
                    "tls_key",
                    "max_body_bytes",
                    "max_evtx_bytes",
                    "max_connections",
                    "max_inflight_requests",
                ],
            );
            if let Some(s) = w.string("data_dir") {
                c.data_dir = s.into();
            }
            if let Some(a) = w.addr("https") {
                c.https = a;
            }
            c.tls_cert = w.string("tls_cert").map(PathBuf::from);
            c.tls_key = w.string("tls_key").map(PathBuf::from);
            if c.tls_cert.is_some() != c.tls_key.is_some() {
                w.err(
                    "tls_cert",
                    "tls_cert and tls_key go together: set both or neither",
                );
            }
            if let Some(n) = w.uint("max_body_bytes", 1024) {
                c.max_body_bytes = n as usize;
            }
            if let Some(n) = w.uint("max_evtx_bytes", 1024) {
                c.max_evtx_bytes = n as usize;
            }
            if let Some(n) = w.uint("max_connections", 1) {
                c.max_connections = n as usize;
            }
            if let Some(n) = w.uint("max_inflight_requests", 1) {
                c.max_inflight_requests = n as usize;
            }
        }
        if let Some(Value::Table(t)) = root.get("syslog") {
            let mut w = Walk::new(
                &mut errors,
                "syslog.",
                t,
                &["udp", "tcp", "tls", "routes", "max_frame_bytes"],
            );
            if let Some(n) = w.uint("max_frame_bytes", 256) {
                c.max_frame_bytes = n as usize;
            }
            let mut listeners = Vec::new();
            for key in ["udp", "tcp", "tls"] {
                listeners.push((key, w.table(key)));
            }
            let routes = t.get("routes").cloned();
            drop(w);
            for (key, table) in listeners {
                let Some(table) = table else { continue };
                let target = match key {
                    "udp" => &mut c.syslog_udp,
                    "tcp" => &mut c.syslog_tcp,
                    _ => &mut c.syslog_tls,
                };
                let mut w = Walk::new(
                    &mut errors,
                    &format!("syslog.{key}."),
                    table,
                    &["listen", "tenant", "source"],
                );
                if let Some(a) = w.addr("listen") {
                    target.listen = a;
                }
                if let Some(s) = w.tenant("tenant") {
                    target.tenant = s;
                }
                if let Some(s) = w.name("source") {
                    target.source = s;
                }
            }
            match routes {
                None => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let prefix = format!("syslog.routes[{i}].");
                        let Value::Table(rt) = item else {
                            errors.push(ConfigError {
                                key: prefix.trim_end_matches('.').to_owned(),
                                message: "expected a table with cidr and tenant".into(),
                            });
                            continue;
                        };
                        let mut w =
                            Walk::new(&mut errors, &prefix, rt, &["cidr", "tenant", "source"]);
                        let cidr = w.string("cidr").and_then(|s| match s.parse::<IpNet>() {
                            Ok(n) => Some(n),
                            Err(_) => {
                                w.err("cidr", format!("`{s}` is not a CIDR like 10.0.0.0/8"));
                                None
                            }
                        });
                        let tenant = w.tenant("tenant");
                        let source = w.name("source");
                        if !rt.contains_key("cidr") {
                            w.err("cidr", "missing");
                        }
                        if !rt.contains_key("tenant") {
                            w.err("tenant", "missing");
                        }
                        if let (Some(cidr), Some(tenant)) = (cidr, tenant) {
                            c.syslog_routes.push(SyslogRoute {
                                cidr,
                                tenant,
                                source,
                            });
                        }
                    }
                }
                Some(other) => errors.push(ConfigError {
                    key: "syslog.routes".into(),
                    message: format!(
                        "expected an array of tables ([[syslog.routes]]), found {}",
                        other.type_str()
                    ),
                }),
            }
        }
        if let Some(Value::Table(t)) = root.get("wal") {
            let mut w = Walk::new(
                &mut errors,
                "wal.",
                t,
                &["fsync", "interval_ms", "segment_mb"],
            );
            let interval = w.uint("interval_ms", 1);
            match w.string("fsync").as_deref() {
                None if interval.is_some() => {
                    c.fsync = FsyncPolicy::IntervalMs(interval.unwrap_or(100))
                }
                None | Some("always") => {}
                Some("interval") => c.fsync = FsyncPolicy::IntervalMs(interval.unwrap_or(100)),
                Some("never") => c.fsync = FsyncPolicy::Never,
                Some(other) => w.err(
                    "fsync",
                    format!("`{other}` is not one of always, interval, never"),
                ),
            }
            if let Some(n) = w.uint("segment_mb", 1) {
                c.segment_bytes = n << 20;
            }
        }
        if let Some(Value::Table(t)) = root.get("backpressure") {
            let mut w = Walk::new(
                &mut errors,
                "backpressure.",
                t,
                &[
                    "max_backlog_records",
                    "max_backlog_bytes",
                    "retry_after_secs",
                ],
            );
            if let Some(n) = w.uint("max_backlog_records", 1) {
                c.max_backlog_records = n;
            }
            if let Some(n) = w.uint("max_backlog_bytes", 1) {
                c.max_backlog_bytes = n;
            }
            if let Some(n) = w.uint("retry_after_secs", 1) {
                c.retry_after_secs = n;
            }
        }
        if let Some(Value::Table(t)) = root.get("detection") {
            let mut w = Walk::new(
                &mut errors,
                "detection.",
                t,
                &[
                    "enabled",
                    "rules",
                    "dedup_window",
                    "incident_window",
                    "rules_poll_secs",
                ],
            );
            let d = &mut c.detection;
            if let Some(b) = w.boolean("enabled") {
                d.enabled = b;
            }
            if let Some(r) = w.strings("rules") {
                d.rules = r.into_iter().map(PathBuf::from).collect();
            }
            if let Some(ms) = w.timespan("dedup_window") {
                d.dedup_window_ms = ms;
            }
            if let Some(ms) = w.timespan("incident_window") {
                d.incident_window_ms = ms;
            }
            if let Some(n) = w.uint("rules_poll_secs", 0) {
                d.rules_poll_secs = n;
            }
        }
        if let Some(Value::Table(t)) = root.get("respond") {
            let w = Walk::new(&mut errors, "respond.", t, &["connectors"]);
            drop(w);
            match t.get("connectors") {
                None => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let key = format!("respond.connectors[{i}]");
                        match item {
                            Value::Table(ct) => {
                                let mut w = Walk::new(
                                    &mut errors,
                                    &format!("{key}."),
                                    ct,
                                    crate::respond::CONNECTOR_KEYS,
                                );
                                if let Some(cc) = connector(&mut w, ct) {
                                    if c.connectors.iter().any(|o| o.name == cc.name) {
                                        w.err("name", format!("{:?} is named twice", cc.name));
                                    }
                                    c.connectors.push(cc);
                                }
                            }
                            other => errors.push(ConfigError {
                                key,
                                message: format!("expected a table, found {}", other.type_str()),
                            }),
                        }
                    }
                }
                Some(other) => errors.push(ConfigError {
                    key: "respond.connectors".into(),
                    message: format!(
                        "expected [[respond.connectors]] tables, found {}",
                        other.type_str()
                    ),
                }),
            }
        }
        if let Some(Value::Table(t)) = root.get("intel") {
            let mut w = Walk::new(&mut errors, "intel.", t, &["files", "warninglists"]);
            for (key, dest) in [
                ("files", &mut c.intel_files),
                ("warninglists", &mut c.intel_warninglists),
            ] {
                if let Some(paths) = w.strings(key) {
                    for p in paths {
                        if Path::new(&p).exists() {
                            dest.push(PathBuf::from(p));
                        } else {
                            w.err(key, format!("{p}: no such file or folder"));
                        }
                    }
                }
            }
        }
        for section in [
            "intel",
            "server",
            "syslog",
            "wal",
            "backpressure",
            "detection",
            "respond",
        ] {
            if let Some(v) = root.get(section) {
                if !v.is_table() {
                    errors.push(ConfigError {
                        key: section.into(),
                        message: format!("expected a table ([{section}]), found {}", v.type_str()),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Every address a test can set to port 0, on loopback.
    pub fn for_tests(data_dir: PathBuf) -> ServerConfig {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        let mut c = ServerConfig {
            data_dir,
            https: Some(any),
            fsync: FsyncPolicy::Always,
            ..ServerConfig::default()
        };
        c.syslog_udp.listen = Some(any);
        c.syslog_tcp.listen = Some(any);
        c.syslog_tls.listen = Some(any);
        c
    }
}

/// One `[[respond.connectors]]` table.
fn connector(w: &mut Walk<'_, '_>, t: &Table) -> Option<crate::respond::ConnectorConfig> {
    use crate::respond::{ConnectorConfig, ConnectorKind, WebhookUrl};
    let name = w.name("name");
    if name.is_none() && !t.contains_key("name") {
        w.err("name", "missing");
    }
    let timeout_ms = w.uint("timeout_secs", 1).unwrap_or(15) * 1000;
    let kind = match w.string("kind").as_deref() {
        Some("webhook") => {
            let url = match w.string("url") {
                Some(u) => match WebhookUrl::parse(&u) {
                    Ok(url) => Some(url),
                    Err(e) => {
                        w.err("url", e);
                        None
                    }
                },
                None => {
                    w.err("url", "missing (a webhook posts to a URL)");
                    None
                }
            };
            // The HMAC key comes from the environment, never from this file.
            let secret = match w.string("secret_env") {
                Some(var) => match std::env::var(&var) {
                    Ok(v) if v.len() >= 16 => Some(v),
                    Ok(_) => {
                        w.err("secret_env", format!("${var} is shorter than 16 bytes"));
                        None
                    }
                    Err(_) => {
                        w.err("secret_env", format!("${var} is not set"));
                        None
                    }
                },
                None => {
                    w.err(
                        "secret_env",
                        "missing (the environment variable holding the HMAC key)",
                    );
                    None
                }
            };
            let ca = w.string("ca_file").map(PathBuf::from);
            ConnectorKind::Webhook {
                url: url?,
                secret: secret?,
                ca_file: ca,
            }
        }
        Some("command") => {
            let program = match w.string("program") {
                Some(p) if Path::new(&p).is_absolute() => Some(PathBuf::from(p)),
                Some(p) => {
                    w.err(
                        "program",
                        format!("{p:?}: give an absolute path (no shell, no PATH search)"),
                    );
                    None
                }
                None => {
                    w.err("program", "missing");
                    None
                }
            };
            let args = w.strings("args").unwrap_or_default();
            ConnectorKind::Command {
                program: program?,
                args,
            }
        }
        Some(other) => {
            w.err("kind", format!("{other:?}: use webhook or command"));
            return None;
        }
        None => {
            if !t.contains_key("kind") {
                w.err("kind", "missing (webhook or command)");
            }
            return None;
        }
    };
    Some(ConnectorConfig {
        name: name?,
        kind,
        timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_gives_loopback_defaults() {
        let c = ServerConfig::from_table(&Table::new()).unwrap();
        assert_eq!(c.https, Some("127.0.0.1:8443".parse().unwrap()));
        assert_eq!(c.syslog_tcp.listen, Some("127.0.0.1:5514".parse().unwrap()));
        assert_eq!(c.syslog_tls.listen, Some("127.0.0.1:6514".parse().unwrap()));
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let t: Table = toml::from_str(
            r#"
            [server]
            https = "nowhere"
            colour = "blue"
            [syslog.tcp]
            listen = "127.0.0.1:0"
            tenant = "bad tenant"
            [[syslog.routes]]
            cidr = "10.0.0.0/33"
            tenant = "acme"
            [wal]
            fsync = "sometimes"
            [backpressure]
            max_backlog_records = "many"
            "#,
        )
        .unwrap();
        let errs = ServerConfig::from_table(&t).unwrap_err().0;
        let keys: Vec<_> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.colour",
                "server.https",
                "syslog.tcp.tenant",
                "syslog.routes[0].cidr",
                "wal.fsync",
                "backpressure.max_backlog_records"
            ]
        );
    }

    #[test]
    fn listeners_routes_and_policy() {
        let t: Table = toml::from_str(
            r#"
            [syslog.udp]
            listen = "off"
            [syslog.tls]
            tenant = "acme"
            source = "fw"
            [[syslog.routes]]
            cidr = "10.1.0.0/16"
            tenant = "branch"
            [wal]
            interval_ms = 50
            "#,
        )
        .unwrap();
        let c = ServerConfig::from_table(&t).unwrap();
        assert_eq!(c.syslog_udp.listen, None);
        assert_eq!(c.syslog_tls.tenant, "acme");
        assert_eq!(c.syslog_routes[0].tenant, "branch");
        assert_eq!(c.fsync, FsyncPolicy::IntervalMs(50));
    }
}
