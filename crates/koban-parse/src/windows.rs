//! Windows events in their three common JSON shapes, flattened to the field names
//! Sigma rules use (`EventID`, `Channel`, `Computer`, `Provider_Name`, and the
//! EventData/UserData names bare: `Image`, `CommandLine`, ...):
//!
//! - the EVTX layout (`{"Event": {"System": ..., "EventData": ...}}`, as the `evtx`
//!   crate and evtx_dump write it);
//! - Winlogbeat / ECS (`{"winlog": {"channel", "event_id", "event_data": ...}}`);
//! - flat exports (NXLog and similar: `Channel`, `EventID`, `Hostname`, `SourceName`).
//!
//! Then the log source is classified from the channel and event id
//! (`data/windows-logsources.yml`) and that file's aliases are added.

use std::collections::HashMap;

use koban_event::{parse_timestamp, Event, LogSource, Value};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::flatten::flatten_into;

const LOGSOURCES_YAML: &str = include_str!("../data/windows-logsources.yml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSourceFile {
    services: HashMap<String, Vec<String>>,
    categories: HashMap<String, Vec<CategorySource>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategorySource {
    channel: String,
    #[serde(default)]
    event_ids: Option<Vec<i64>>,
    #[serde(default)]
    aliases: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct ChannelInfo {
    service: Option<Box<str>>,
    /// (category, event ids or None for all, aliases new -> existing)
    categories: Vec<(Box<str>, Option<Vec<i64>>, Vec<(String, String)>)>,
}

/// Channel and event id → Sigma service, categories and field aliases.
#[derive(Debug)]
pub struct WindowsMap {
    /// Keyed by lower-cased channel: exports disagree on case (`security`).
    channels: HashMap<String, ChannelInfo>,
}

impl WindowsMap {
    /// The map built from the embedded data file.
    pub fn embedded() -> Result<WindowsMap, serde_yaml::Error> {
        Self::from_yaml(LOGSOURCES_YAML)
    }

    pub fn from_yaml(text: &str) -> Result<WindowsMap, serde_yaml::Error> {
        let file: LogSourceFile = serde_yaml::from_str(text)?;
        let mut channels: HashMap<String, ChannelInfo> = HashMap::new();
        let mut services: Vec<_> = file.services.into_iter().collect();
        services.sort();
        for (service, chans) in services {
            for c in chans {
                let info = channels.entry(c.to_lowercase()).or_default();
                if info.service.is_none() {
                    info.service = Some(service.as_str().into());
                }
            }
        }
        let mut categories: Vec<_> = file.categories.into_iter().collect();
        categories.sort_by(|a, b| a.0.cmp(&b.0));
        for (category, sources) in categories {
            for s in sources {
                let mut aliases: Vec<(String, String)> = s.aliases.into_iter().collect();
                aliases.sort();
                channels.entry(s.channel.to_lowercase()).or_default().categories.push((
                    category.as_str().into(),
                    s.event_ids,
                    aliases,
                ));
            }
        }
        Ok(WindowsMap { channels })
    }

    /// Sets the event's log source from `Channel`/`EventID` and adds category aliases.
    pub fn classify(&self, event: &mut Event) {
        let channel = event.get_str("Channel").unwrap_or_default();
        let event_id = event.get("EventID").and_then(Value::as_f64).map(|f| f as i64);
        let mut ls = LogSource {
            product: Some("windows".into()),
            services: Vec::new(),
            categories: Vec::new(),
        };
        let mut aliases: Vec<(String, String)> = Vec::new();
        if let Some(info) = self.channels.get(&channel.to_lowercase()) {
            ls.services.extend(info.service.clone());
            for (category, ids, al) in &info.categories {
                let applies = match (ids, event_id) {
                    (None, _) => true,
                    (Some(ids), Some(id)) => ids.contains(&id),
                    (Some(_), None) => false,
                };
                if applies && !ls.categories.contains(category) {
                    ls.categories.push(category.clone());
                    aliases.extend(al.iter().cloned());
                }
            }
        }
        for (new, existing) in aliases {
            if let Some(v) = event.get(&existing).cloned() {
                event.insert(&new, v);
            }
        }
        event.logsource = ls;
    }
}

/// Is this JSON object a Windows event in one of the known shapes?
pub fn is_windows(obj: &Map<String, Json>) -> bool {
    obj.get("Event").is_some_and(|e| e.get("System").is_some())
        || obj.get("winlog").is_some_and(Json::is_object)
        || (obj.contains_key("EventID") && (obj.contains_key("Channel") || obj.contains_key("SourceName")))
}

/// Flattens a Windows event in any known shape into Sigma's Windows field names.
pub fn normalise(obj: Map<String, Json>, map: &WindowsMap) -> Event {
    let mut fields: Vec<(String, Value)> = Vec::with_capacity(48);
    let mut timestamp = None;
    let mut obj = obj;
    if let Some(Json::Object(mut event)) = obj.remove("Event") {
        if let Some(Json::Object(system)) = event.remove("System") {
            timestamp = system_fields(system, &mut fields);
        }
        for section in ["EventData", "UserData"] {
            if let Some(data) = event.remove(section) {
                data_fields(data, &mut fields);
            }
        }
        // Anything else under Event (RenderingInfo, ...) keeps its path.
        for (k, v) in event {
            if k != "#attributes" {
                flatten_into(&format!("Event.{k}"), v, &mut fields);
            }
        }
    } else if let Some(Json::Object(mut winlog)) = obj.remove("winlog") {
        timestamp = obj
            .get("@timestamp")
            .and_then(Json::as_str)
            .and_then(parse_timestamp);
        for (from, to) in [
            ("channel", "Channel"),
            ("event_id", "EventID"),
            ("provider_name", "Provider_Name"),
            ("computer_name", "Computer"),
            ("record_id", "EventRecordID"),
            ("task", "Task"),
            ("opcode", "Opcode"),
            ("version", "Version"),
        ] {
            if let Some(v) = winlog.remove(from) {
                let v = match (to, v) {
                    // Winlogbeat 7 writes the event id as text.
                    ("EventID", Json::String(s)) => s.parse::<i64>().map(Value::Int).unwrap_or(Value::from(s)),
                    (_, v) => Value::from_json(v),
                };
                fields.push((to.into(), v));
            }
        }
        for section in ["event_data", "user_data"] {
            if let Some(data) = winlog.remove(section) {
                data_fields(data, &mut fields);
            }
        }
        for (k, v) in winlog {
            flatten_into(&format!("winlog.{k}"), v, &mut fields);
        }
        for (k, v) in obj {
            flatten_into(&k, v, &mut fields);
        }
    } else {
        // Flat export: the event data already sits at the top level.
        timestamp = ["@timestamp", "TimeCreated", "EventTime", "UtcTime"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Json::as_str).and_then(parse_timestamp));
        for (from, to) in [("SourceName", "Provider_Name"), ("Hostname", "Computer")] {
            if let Some(v) = obj.get(from) {
                fields.push((to.into(), Value::from_json(v.clone())));
            }
        }
        for (k, v) in obj {
            flatten_into(&k, v, &mut fields);
        }
    }
    // Names with spaces (Defender's `Threat Name`) are also reachable without them,
    // the way rules spell them.
    let spaced: Vec<(String, Value)> = fields
        .iter()
        .filter(|(k, _)| k.contains(' '))
        .map(|(k, v)| (k.replace(' ', ""), v.clone()))
        .collect();
    fields.extend(spaced);
    let mut event = Event::from_fields(fields);
    event.timestamp = timestamp;
    map.classify(&mut event);
    event
}

/// The `System` block: returns the event time.
fn system_fields(system: Map<String, Json>, out: &mut Vec<(String, Value)>) -> Option<i64> {
    let mut time = None;
    for (k, v) in system {
        match (k.as_str(), v) {
            ("Provider", Json::Object(p)) => {
                if let Some(Json::Object(attrs)) = p.get("#attributes") {
                    for (ak, av) in attrs {
                        out.push((format!("Provider_{ak}"), Value::from_json(av.clone())));
                    }
                }
            }
            ("TimeCreated", Json::Object(t)) => {
                if let Some(st) = t
                    .get("#attributes")
                    .and_then(|a| a.get("SystemTime"))
                    .and_then(Json::as_str)
                {
                    time = parse_timestamp(st);
                    out.push(("TimeCreated".into(), Value::from(st)));
                }
            }
            ("EventID", Json::Object(e)) => {
                // `<EventID Qualifiers="16384">7045</EventID>`
                if let Some(t) = e.get("#text") {
                    out.push(("EventID".into(), Value::from_json(t.clone())));
                }
                if let Some(Json::Object(attrs)) = e.get("#attributes") {
                    for (ak, av) in attrs {
                        out.push((ak.clone(), Value::from_json(av.clone())));
                    }
                }
            }
            (_, Json::Object(o)) => {
                // Execution, Security, Correlation: their attributes, bare
                // (`ProcessID`, `ThreadID`, `UserID`, `ActivityID`).
                if let Some(Json::Object(attrs)) = o.get("#attributes") {
                    for (ak, av) in attrs {
                        out.push((ak.clone(), Value::from_json(av.clone())));
                    }
                }
            }
            (_, v) => out.push((k, Value::from_json(v))),
        }
    }
    time
}

/// EventData / UserData: named values become bare fields; nested elements
/// (UserData's wrapper element, WMI's nested blocks) are descended into.
fn data_fields(data: Json, out: &mut Vec<(String, Value)>) {
    match data {
        Json::Object(map) => {
            for (k, v) in map {
                if k == "#attributes" {
                    continue;
                }
                match v {
                    Json::Object(inner) if inner.contains_key("#text") && inner.len() <= 2 => {
                        let text = inner.get("#text").cloned().unwrap_or(Json::Null);
                        out.push((k, Value::from_json(text)));
                    }
                    Json::Object(inner) => data_fields(Json::Object(inner), out),
                    // Unnamed <Data> elements: a list under `Data`.
                    v => out.push((k, Value::from_json(v))),
                }
            }
        }
        Json::Null => {}
        other => out.push(("Data".into(), Value::from_json(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Map<String, Json> {
        match serde_json::from_str(s) {
            Ok(Json::Object(m)) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn embedded_map_loads() {
        assert!(WindowsMap::embedded().is_ok());
    }

    #[test]
    fn evtx_layout_flattens_to_sigma_names() -> Result<(), serde_yaml::Error> {
        let map = WindowsMap::embedded()?;
        let e = normalise(
            obj(r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},
              "EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"pc1",
              "TimeCreated":{"#attributes":{"SystemTime":"2025-10-24T23:41:00.601559Z"}}},
              "EventData":{"Image":"C:\\x.exe","Threat Name":"Evil"}}}"##),
            &map,
        );
        assert_eq!(e.get_str("Provider_Name").as_deref(), Some("Microsoft-Windows-Sysmon"));
        assert_eq!(e.get_str("image").as_deref(), Some("C:\\x.exe"));
        assert_eq!(e.get_str("ThreatName").as_deref(), Some("Evil"));
        assert_eq!(e.logsource.services, vec!["sysmon".into()]);
        assert!(e.logsource.categories.iter().any(|c| c.as_ref() == "process_creation"));
        assert!(e.timestamp.is_some());
        Ok(())
    }

    #[test]
    fn security_4688_gets_sysmon_names() -> Result<(), serde_yaml::Error> {
        let map = WindowsMap::embedded()?;
        let e = normalise(
            obj(r#"{"Channel":"security","EventID":4688,"Hostname":"dc","NewProcessName":"C:\\a.exe"}"#),
            &map,
        );
        assert_eq!(e.get_str("Image").as_deref(), Some("C:\\a.exe"));
        assert_eq!(e.get_str("Computer").as_deref(), Some("dc"));
        assert_eq!(e.logsource.services, vec!["security".into()]);
        Ok(())
    }

    #[test]
    fn winlogbeat_layout() -> Result<(), serde_yaml::Error> {
        let map = WindowsMap::embedded()?;
        let e = normalise(
            obj(r#"{"@timestamp":"2020-01-01T00:00:00Z","winlog":{"channel":"Microsoft-Windows-Sysmon/Operational",
              "event_id":"3","computer_name":"pc","event_data":{"DestinationIp":"1.2.3.4"}},"host":{"name":"pc"}}"#),
            &map,
        );
        assert_eq!(e.get("EventID"), Some(&Value::Int(3)));
        assert_eq!(e.get_str("DestinationIp").as_deref(), Some("1.2.3.4"));
        assert_eq!(e.get_str("host.name").as_deref(), Some("pc"));
        assert!(e.logsource.categories.iter().any(|c| c.as_ref() == "network_connection"));
        Ok(())
    }
}
