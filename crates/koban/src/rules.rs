//! Loading rule folders for the commands: every file in parallel, errors collected,
//! then linked into one [`RuleSet`].

use std::path::{Path, PathBuf};

use koban_sigma::{
    load_file, rule_files, CompileOptions, Document, LoadError, LoadWarning, Routing, RuleSet,
};
use rayon::prelude::*;

/// What loading a set of rule paths produced.
pub struct LoadedRules {
    pub set: RuleSet,
    pub files: usize,
    /// Documents read per kind: (rules, filters, correlations).
    pub kinds: (usize, usize, usize),
    pub errors: Vec<LoadError>,
    pub warnings: Vec<LoadWarning>,
}

/// Reads every rule file under `paths` (files or folders).
pub fn load_rules(
    paths: &[PathBuf],
    options: &CompileOptions,
    routing: Routing,
) -> anyhow::Result<LoadedRules> {
    let mut files = Vec::new();
    for p in paths {
        let found = rule_files(p)
            .map_err(|e| anyhow::anyhow!("cannot read rules at {}: {e}", p.display()))?;
        files.extend(found);
    }
    files.sort();
    files.dedup();
    let loaded: Vec<_> = files.par_iter().map(|f| load_file(f, options)).collect();
    let mut documents: Vec<Document> = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for l in loaded {
        documents.extend(l.documents);
        errors.extend(l.errors);
        warnings.extend(l.warnings);
    }
    let mut kinds = (0, 0, 0);
    for d in &documents {
        match d {
            Document::Rule(_) => kinds.0 += 1,
            Document::Filter(_) => kinds.1 += 1,
            Document::Correlation(_) => kinds.2 += 1,
        }
    }
    let (set, link_errors) = RuleSet::build(documents, routing);
    errors.extend(link_errors);
    Ok(LoadedRules {
        set,
        files: files.len(),
        kinds,
        errors,
        warnings,
    })
}

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
