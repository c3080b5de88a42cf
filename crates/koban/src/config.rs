//! `koban.toml`: settings the commands share. Unknown keys are errors, so a typo does
//! not silently fall back to a default.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub hunt: HuntConfig,
    #[serde(default)]
    pub sigma: SigmaConfig,
    // The server's sections, validated by `koban_server::ServerConfig::from_table` so
    // every error is reported with its key at once.
    #[serde(default)]
    pub server: Option<toml::Value>,
    #[serde(default)]
    pub syslog: Option<toml::Value>,
    #[serde(default)]
    pub wal: Option<toml::Value>,
    #[serde(default)]
    pub backpressure: Option<toml::Value>,
    #[serde(default)]
    pub detection: Option<toml::Value>,
    #[serde(default)]
    pub respond: Option<toml::Value>,
    #[serde(default)]
    pub intel: Option<toml::Value>,
    /// The whole file as a table (empty without a file), for `koban serve`.
    #[serde(skip)]
    pub raw: toml::Table,
    /// The file the configuration came from.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuntConfig {
    /// Rule files or folders, used when `--rules` is not given.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    pub min_level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaConfig {
    /// Values for `%name%` placeholders (the `expand` modifier).
    #[serde(default)]
    pub placeholders: HashMap<String, Vec<String>>,
}

impl Config {
    /// Reads `path`, or `koban.toml` in the current folder when it exists, else defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("koban.toml"), false),
        };
        if !required && !path.exists() {
            return Ok(Config::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.raw =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.path = Some(path.clone());
        // Rule folders in the file are relative to the file, not to where koban runs.
        let base = path.parent().unwrap_or(Path::new("."));
        for r in &mut config.hunt.rules {
            if r.is_relative() {
                *r = base.join(&*r);
            }
        }
        Ok(config)
    }
}
