//! The MITRE ATT&CK catalogue, read from its STIX bundle: every technique id with its
//! name, tactics (kill-chain phase names), whether it is a sub-technique and whether
//! it is revoked or deprecated; the tactics with their names in matrix order.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technique {
    pub id: String,
    pub name: String,
    /// Tactic short names (`credential-access`).
    pub tactics: Vec<String>,
    pub subtechnique: bool,
    /// Revoked or deprecated: kept so old rules still get a name.
    pub retired: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub techniques: BTreeMap<String, Technique>,
    /// Short name → display name (`credential-access` → `Credential Access`).
    pub tactics: BTreeMap<String, String>,
}

impl Catalogue {
    /// Reads an ATT&CK STIX bundle.
    pub fn from_stix(doc: &Value) -> Result<Catalogue, String> {
        let objects = doc["objects"]
            .as_array()
            .ok_or("not a STIX bundle: no objects")?;
        let mut c = Catalogue::default();
        for o in objects {
            match o["type"].as_str() {
                Some("attack-pattern") => {
                    let Some(id) = attack_id(o) else { continue };
                    let tactics = o["kill_chain_phases"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["kill_chain_name"] == "mitre-attack")
                        .filter_map(|p| p["phase_name"].as_str().map(str::to_owned))
                        .collect();
                    c.techniques.insert(
                        id.clone(),
                        Technique {
                            name: o["name"].as_str().unwrap_or_default().to_owned(),
                            tactics,
                            subtechnique: o["x_mitre_is_subtechnique"]
                                .as_bool()
                                .unwrap_or(id.contains('.')),
                            retired: o["revoked"].as_bool() == Some(true)
                                || o["x_mitre_deprecated"].as_bool() == Some(true),
                            id,
                        },
                    );
                }
                Some("x-mitre-tactic") => {
                    if let (Some(short), Some(name)) =
                        (o["x_mitre_shortname"].as_str(), o["name"].as_str())
                    {
                        c.tactics.insert(short.to_owned(), name.to_owned());
                    }
                }
                _ => {}
            }
        }
        if c.techniques.is_empty() {
            return Err("no ATT&CK techniques in the bundle".into());
        }
        Ok(c)
    }

    /// A technique by id, any case (`t1003.001`).
    pub fn technique(&self, id: &str) -> Option<&Technique> {
        self.techniques.get(&id.trim().to_ascii_uppercase())
    }
}

fn attack_id(o: &Value) -> Option<String> {
    o["external_references"]
        .as_array()?
        .iter()
        .find(|r| r["source_name"] == "mitre-attack")?["external_id"]
        .as_str()
        .map(str::to_owned)
}
