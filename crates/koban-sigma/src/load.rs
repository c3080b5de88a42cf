//! Reading rule files: multi-document YAML, Sigma 1 collections (`action: global`,
//! `reset`, `repeat`), and errors that point at the file, document and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_yaml::{Mapping, Value as Yaml};

use crate::error::{LoadError, RuleError};
use crate::rule::{Document, Origin};
use crate::transform::Unresolved;

/// Settings that affect compilation.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Values for `%name%` placeholders used with the `expand` modifier.
    pub placeholders: HashMap<String, Vec<String>>,
}

/// Something worth telling the user that did not stop a rule from loading.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadWarning {
    pub file: PathBuf,
    pub rule: String,
    pub message: String,
}

/// The result of loading one file.
#[derive(Debug, Default)]
pub struct FileRules {
    pub documents: Vec<Document>,
    pub errors: Vec<LoadError>,
    pub warnings: Vec<LoadWarning>,
}

/// Every `.yml`/`.yaml` file under `path` (or `path` itself), sorted so runs agree.
pub fn rule_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(out);
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let p = entry.path();
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and compiles one rule file.
pub fn load_file(path: &Path, options: &CompileOptions) -> FileRules {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => load_str(&text, path, options),
            Err(e) => FileRules {
                errors: vec![LoadError {
                    file: path.into(),
                    document: 1,
                    line: None,
                    rule: None,
                    error: RuleError::Yaml(format!(
                        "the file is not UTF-8 (byte {})",
                        e.utf8_error().valid_up_to()
                    )),
                }],
                ..FileRules::default()
            },
        },
        Err(e) => FileRules {
            errors: vec![LoadError {
                file: path.into(),
                document: 1,
                line: None,
                rule: None,
                error: RuleError::Yaml(format!("cannot read: {e}")),
            }],
            ..FileRules::default()
        },
    }
}

/// One YAML document of a file with the line it starts on.
struct Chunk<'a> {
    text: &'a str,
    first_line: usize,
}

/// Splits a multi-document stream on `---` lines, keeping line numbers.
fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "..." {
            chunks.push(Chunk {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    chunks.push(Chunk {
        text: &text[start..],
        first_line: start_line,
    });
    chunks
        .into_iter()
        .filter(|c| {
            c.text
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// Reads and compiles rules from YAML text; `path` names it in errors.
pub fn load_str(text: &str, path: &Path, options: &CompileOptions) -> FileRules {
    let file: Arc<Path> = Arc::from(path);
    let mut out = FileRules::default();
    let mut global: Option<Mapping> = None;
    let mut previous: Option<Mapping> = None;
    for (n, chunk) in split_documents(text).into_iter().enumerate() {
        let document = n + 1;
        let error = |line: Option<usize>, rule: Option<String>, error: RuleError| LoadError {
            file: path.into(),
            document,
            line,
            rule,
            error,
        };
        let value: Yaml = match serde_yaml::from_str(chunk.text) {
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map(|l| l.line() + chunk.first_line - 1);
                out.errors.push(error(
                    line,
                    None,
                    RuleError::Yaml(strip_location(&e.to_string())),
                ));
                continue;
            }
        };
        let Yaml::Mapping(mut map) = value else {
            out.errors
                .push(error(Some(chunk.first_line), None, RuleError::NotAMapping));
            continue;
        };
        match map.remove("action") {
            None => {}
            Some(Yaml::String(a)) if a == "global" => {
                global = Some(map);
                continue;
            }
            Some(Yaml::String(a)) if a == "reset" => {
                global = None;
                continue;
            }
            Some(Yaml::String(a)) if a == "repeat" => {
                if let Some(prev) = &previous {
                    let mut merged = prev.clone();
                    merge(&mut merged, map);
                    map = merged;
                }
            }
            Some(other) => {
                let a = crate::field::yaml_text(&other).unwrap_or_default();
                out.errors.push(error(
                    locate(chunk.text, "action:", chunk.first_line),
                    None,
                    RuleError::UnknownAction(a),
                ));
                continue;
            }
        }
        if let Some(g) = &global {
            let mut merged = g.clone();
            merge(&mut merged, map);
            map = merged;
        }
        previous = Some(map.clone());
        let origin = Origin {
            file: file.clone(),
            document,
            line: chunk.first_line,
        };
        let mut unresolved = Unresolved::default();
        match Document::from_yaml(&map, origin, &options.placeholders, &mut unresolved) {
            Ok(doc) => {
                for name in unresolved.0 {
                    out.warnings.push(LoadWarning {
                        file: path.into(),
                        rule: doc.meta().key().to_owned(),
                        message: format!(
                            "placeholder %{name}% has no configured values; the values using it never match"
                        ),
                    });
                }
                out.documents.push(doc);
            }
            Err(e) => {
                let rule = map
                    .get("title")
                    .or_else(|| map.get("id"))
                    .and_then(crate::field::yaml_text);
                let line = line_of(&e, chunk.text, chunk.first_line);
                out.errors.push(error(line, rule, e));
            }
        }
    }
    out
}

/// serde_yaml appends "at line X column Y" which we report in our own way.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Deep merge: mappings merge key by key, anything else is replaced by `overlay`.
fn merge(base: &mut Mapping, overlay: Mapping) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(Yaml::Mapping(b)), Yaml::Mapping(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The line of the document an error is about, found by searching for its subject.
fn line_of(e: &RuleError, text: &str, first_line: usize) -> Option<usize> {
    let needle = match e {
        RuleError::UnknownModifier { field, .. } => format!("{field}|"),
        RuleError::ConflictingModifiers { field, .. }
        | RuleError::BadModifierValue { field, .. }
        | RuleError::BadRegex { field, .. } => field.clone(),
        RuleError::BadSelection { selection, .. } => format!("{selection}:"),
        RuleError::Condition { .. }
        | RuleError::UnknownSelection(_)
        | RuleError::EmptyQuantifier { .. }
        | RuleError::Aggregation => "condition:".into(),
        RuleError::Correlation(_) => "correlation:".into(),
        RuleError::Filter(_) => "filter:".into(),
        RuleError::WrongType { key, .. } => format!("{}:", key.rsplit('.').next().unwrap_or(key)),
        RuleError::Missing(_) | RuleError::NotAMapping | RuleError::Yaml(_) => {
            return Some(first_line)
        }
        RuleError::UnknownAction(_) => "action:".into(),
        RuleError::UnknownPlaceholder(p) => format!("%{p}%"),
    };
    locate(text, &needle, first_line).or(Some(first_line))
}

fn locate(text: &str, needle: &str, first_line: usize) -> Option<usize> {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + first_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> FileRules {
        load_str(text, Path::new("t.yml"), &CompileOptions::default())
    }

    #[test]
    fn collections_merge_global_parts() {
        let text = "\
action: global
title: Shared
logsource:
    product: windows
detection:
    condition: selection
---
logsource:
    service: sysmon
detection:
    selection:
        EventID: 1
---
action: repeat
detection:
    selection:
        EventID: 2
";
        let r = load(text);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.documents.len(), 2);
        let ls = &r.documents[1].meta().logsource;
        assert_eq!(ls.product.as_deref(), Some("windows"));
        assert_eq!(ls.service.as_deref(), Some("sysmon"));
    }

    #[test]
    fn errors_point_at_the_line() {
        let text = "title: a\nlogsource: {product: x}\ndetection:\n    sel:\n        Image|endwith: x\n    condition: sel\n";
        let r = load(text);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].line, Some(5));
        assert!(
            r.errors[0]
                .to_string()
                .contains("unknown modifier `endwith`"),
            "{}",
            r.errors[0]
        );
        let r = load("title: b\n---\ntitle: [unclosed\n");
        assert_eq!(r.errors.len(), 2);
        assert!(matches!(r.errors[1].line, Some(3..=4)), "{:?}", r.errors[1]);
        assert_eq!(r.errors[1].document, 2);
    }
}
