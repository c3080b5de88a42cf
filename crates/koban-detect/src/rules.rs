//! Loading rule folders for the commands: every file in parallel, errors collected,
//! then linked into one [`RuleSet`].

use std::path::PathBuf;

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
    load(paths, &[], options, routing)
}

/// The rule folders plus Koban's own rules: what the server runs.
pub fn load_with_builtin(
    paths: &[PathBuf],
    options: &CompileOptions,
) -> anyhow::Result<LoadedRules> {
    load(paths, BUILTIN, options, Routing::LogSource)
}

/// Files in parallel, then the in-memory `(name, text)` rule files, linked together.
fn load(
    paths: &[PathBuf],
    builtin: &[(&str, &str)],
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
    let mut loaded: Vec<_> = files.par_iter().map(|f| load_file(f, options)).collect();
    for (name, text) in builtin {
        loaded.push(koban_sigma::load_str(
            text,
            std::path::Path::new(name),
            options,
        ));
    }
    let mut documents: Vec<Document> = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for l in loaded {
        documents.extend(l.documents);
        errors.extend(l.errors);
        warnings.extend(l.warnings);
    }
    Ok(link(
        documents,
        files.len() + builtin.len(),
        errors,
        warnings,
        routing,
    ))
}

fn link(
    documents: Vec<Document>,
    files: usize,
    mut errors: Vec<LoadError>,
    warnings: Vec<LoadWarning>,
    routing: Routing,
) -> LoadedRules {
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
    LoadedRules {
        set,
        files,
        kinds,
        errors,
        warnings,
    }
}

/// Koban's own rules, compiled into the binary and inherited by every tenant.
pub const BUILTIN: &[(&str, &str)] = &[(
    "koban-rules/brute_force.yml",
    include_str!("../rules/brute_force.yml"),
)];
