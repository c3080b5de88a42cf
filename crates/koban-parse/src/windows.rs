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
    categories: Vec<ChannelCategory>,
}

/// (category, event ids or `None` for all, aliases new -> existing)
type ChannelCategory = (Box<str>, Option<Vec<i64>>, Vec<(String, String)>);

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
                channels
                    .entry(s.channel.to_lowercase())
                    .or_default()
                    .categories
                    .push((category.as_str().into(), s.event_ids, aliases));
            }
        }
        Ok(WindowsMap { channels })
    }

    /// Sets the event's log source from `Channel`/`EventID` and adds category aliases.
    pub fn classify(&self, event: &mut Event) {
        let channel = event.get_str("Channel").unwrap_or_default();
        let event_id = event
            .get("EventID")
            .and_then(Value::as_f64)
            .map(|f| f as i64);
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

/// Is this flattened record a Windows event in one of the known shapes?
pub fn is_windows(fields: &[(String, Value)]) -> bool {
    let mut event_id = false;
    let mut channel = false;
    for (k, _) in fields {
        if k.starts_with("Event.System.") || k.starts_with("winlog.") || k == "log_name" {
            return true;
        }
        event_id |= k == "EventID";
        channel |= k == "Channel" || k == "SourceName";
    }
    event_id && channel
}

/// Maps a flattened Windows record in any known shape to Sigma's Windows field names.
pub fn normalise(fields: Vec<(String, Value)>, map: &WindowsMap) -> Event {
    let mut out: Vec<(String, Value)> = Vec::with_capacity(fields.len() + 8);
    let mut system_time: Option<i64> = None;
    let mut flat_time: Option<i64> = None;
    for (k, v) in fields {
        if let Some(rest) = k.strip_prefix("Event.") {
            if let Some(sys) = rest.strip_prefix("System.") {
                let name = match sys {
                    "TimeCreated.#attributes.SystemTime" => {
                        if let Value::Str(t) = &v {
                            system_time = parse_timestamp(t.as_str());
                        }
                        "TimeCreated".to_owned()
                    }
                    "EventID.#text" => "EventID".to_owned(),
                    _ => match sys.split_once(".#attributes.") {
                        // `<Provider Name=..>` -> Provider_Name, Provider_Guid
                        Some(("Provider", attr)) => format!("Provider_{attr}"),
                        // Execution, Security, Correlation, EventID qualifiers: bare
                        Some((_, attr)) => attr.to_owned(),
                        None => sys.rsplit('.').next().unwrap_or(sys).to_owned(),
                    },
                };
                out.push((name, v));
            } else if let Some(data) = rest
                .strip_prefix("EventData.")
                .or_else(|| rest.strip_prefix("UserData."))
            {
                if data.contains("#attributes") {
                    continue;
                }
                let data = data.strip_suffix(".#text").unwrap_or(data);
                // UserData wraps its fields in one element (and WMI nests further):
                // the last segment is the field name rules use.
                let name = data.rsplit('.').next().unwrap_or(data);
                out.push((name.to_owned(), v));
            } else if rest == "EventData" || rest == "UserData" || rest.starts_with("#attributes") {
                continue;
            } else {
                out.push((k, v));
            }
        } else if let Some(w) = k.strip_prefix("winlog.") {
            if let Some(data) = w
                .strip_prefix("event_data.")
                .or_else(|| w.strip_prefix("user_data."))
            {
                let name = data.rsplit('.').next().unwrap_or(data);
                out.push((name.to_owned(), v));
                continue;
            }
            let renamed = match w {
                "channel" => Some("Channel"),
                "event_id" => Some("EventID"),
                "provider_name" => Some("Provider_Name"),
                "computer_name" => Some("Computer"),
                "record_id" => Some("EventRecordID"),
                "task" => Some("Task"),
                "opcode" => Some("Opcode"),
                "version" => Some("Version"),
                _ => None,
            };
            match renamed {
                // Winlogbeat 7 writes the event id as text.
                Some("EventID") => {
                    let v = match v {
                        Value::Str(t) => t
                            .as_str()
                            .parse::<i64>()
                            .map(Value::Int)
                            .unwrap_or(Value::Str(t)),
                        v => v,
                    };
                    out.push(("EventID".to_owned(), v));
                }
                Some(name) => out.push((name.to_owned(), v)),
                None => out.push((k, v)),
            }
        } else if let Some(data) = k
            .strip_prefix("event_data.")
            .or_else(|| k.strip_prefix("user_data."))
        {
            // Winlogbeat 6: event data under `event_data`, system fields at the top.
            let name = data.rsplit('.').next().unwrap_or(data);
            out.push((name.to_owned(), v));
        } else if let Some(name) = match k.as_str() {
            "log_name" => Some("Channel"),
            "event_id" => Some("EventID"),
            "source_name" => Some("Provider_Name"),
            "computer_name" => Some("Computer"),
            "record_number" => Some("EventRecordID"),
            _ => None,
        } {
            let v = match (name, v) {
                ("EventID" | "EventRecordID", Value::Str(t)) => t
                    .as_str()
                    .parse::<i64>()
                    .map(Value::Int)
                    .unwrap_or(Value::Str(t)),
                (_, v) => v,
            };
            out.push((name.to_owned(), v));
        } else {
            // Flat exports (NXLog and similar): the event data sits at the top level.
            match k.as_str() {
                "SourceName" => out.push(("Provider_Name".to_owned(), v.clone())),
                "Hostname" => out.push(("Computer".to_owned(), v.clone())),
                "@timestamp" | "TimeCreated" | "EventTime" | "UtcTime" if flat_time.is_none() => {
                    if let Value::Str(t) = &v {
                        flat_time = parse_timestamp(t.as_str());
                    }
                }
                _ => {}
            }
            out.push((k, v));
        }
    }
    // Names with spaces (Defender's `Threat Name`) are also reachable without them,
    // the way rules spell them.
    let spaced: Vec<(String, Value)> = out
        .iter()
        .filter(|(k, _)| k.contains(' '))
        .map(|(k, v)| (k.replace(' ', ""), v.clone()))
        .collect();
    out.extend(spaced);
    let mut event = Event::from_fields(out);
    event.timestamp = system_time.or(flat_time);
    map.classify(&mut event);
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Vec<(String, Value)> {
        crate::flatten::flat_fields(s.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn embedded_map_loads() {
        assert!(WindowsMap::embedded().is_ok());
    }

    #[test]
    fn evtx_layout_flattens_to_sigma_names() -> Result<(), serde_yaml::Error> {
        let map = WindowsMap::embedded()?;
        let e = normalise(
            obj(
                r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},
              "EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"pc1",
              "TimeCreated":{"#attributes":{"SystemTime":"2025-10-24T23:41:00.601559Z"}}},
              "EventData":{"Image":"C:\\x.exe","Threat Name":"Evil"}}}"##,
            ),
            &map,
        );
        assert_eq!(
            e.get_str("Provider_Name").as_deref(),
            Some("Microsoft-Windows-Sysmon")
        );
        assert_eq!(e.get_str("image").as_deref(), Some("C:\\x.exe"));
        assert_eq!(e.get_str("ThreatName").as_deref(), Some("Evil"));
        assert_eq!(e.logsource.services, vec!["sysmon".into()]);
        assert!(e
            .logsource
            .categories
            .iter()
            .any(|c| c.as_ref() == "process_creation"));
        assert!(e.timestamp.is_some());
        Ok(())
    }

    #[test]
    fn security_4688_gets_sysmon_names() -> Result<(), serde_yaml::Error> {
        let map = WindowsMap::embedded()?;
        let e = normalise(
            obj(
                r#"{"Channel":"security","EventID":4688,"Hostname":"dc","NewProcessName":"C:\\a.exe"}"#,
            ),
            &map,
        );
        assert_eq!(e.get_str("Image").as_deref(), Some("C:\\a.exe"));
        assert_eq!(e.get_str("Computer").as_deref(), Some("dc"));
        assert_eq!(e.logsource.services, vec!["security".into()]);
        Ok(())
    }

    #[test]
    fn winlogbeat6_layout() -> Result<(), serde_yaml::Error> {
        let map = WindowsMap::embedded()?;
        let e = normalise(
            obj(
                r#"{"@timestamp":"2019-05-18T20:36:46.254Z","log_name":"Microsoft-Windows-Sysmon/Operational",
              "event_id":3,"source_name":"Microsoft-Windows-Sysmon","computer_name":"HFDC01",
              "event_data":{"Image":"C:\\svchost.exe","DestinationPort":"5985"}}"#,
            ),
            &map,
        );
        assert!(is_windows(&obj(
            r#"{"log_name":"Security","event_id":4624}"#
        )));
        assert_eq!(e.get("EventID"), Some(&Value::Int(3)));
        assert_eq!(e.get_str("Image").as_deref(), Some("C:\\svchost.exe"));
        assert_eq!(e.get_str("Computer").as_deref(), Some("HFDC01"));
        assert!(e
            .logsource
            .categories
            .iter()
            .any(|c| c.as_ref() == "network_connection"));
        assert!(e.timestamp.is_some());
        Ok(())
    }

    #[test]
    fn winlogbeat_layout() -> Result<(), serde_yaml::Error> {
        let map = WindowsMap::embedded()?;
        let e = normalise(
            obj(
                r#"{"@timestamp":"2020-01-01T00:00:00Z","winlog":{"channel":"Microsoft-Windows-Sysmon/Operational",
              "event_id":"3","computer_name":"pc","event_data":{"DestinationIp":"1.2.3.4"}},"host":{"name":"pc"}}"#,
            ),
            &map,
        );
        assert_eq!(e.get("EventID"), Some(&Value::Int(3)));
        assert_eq!(e.get_str("DestinationIp").as_deref(), Some("1.2.3.4"));
        assert_eq!(e.get_str("host.name").as_deref(), Some("pc"));
        assert!(e
            .logsource
            .categories
            .iter()
            .any(|c| c.as_ref() == "network_connection"));
        Ok(())
    }
}
