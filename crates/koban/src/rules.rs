//! Rule loading lives in koban-detect (the server reloads rules too); the commands add
//! how paths are shown.

use std::path::Path;

pub use koban_detect::rules::{load_rules, LoadedRules};

/// Shortens a path for display relative to the current directory when possible.
pub fn display_path(p: &Path) -> String {
    match std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
    {
        Some(rel) => rel.display().to_string(),
        None => p.display().to_string(),
    }
}
