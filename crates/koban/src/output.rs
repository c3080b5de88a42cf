//! Writing detections: a table for people, CSV and JSON lines for tools, and the
//! line format of `shared/tools/score.py`.

use std::io::Write;

use koban_event::format_rfc3339;
use serde_json::json;

use crate::hunt::Detection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Jsonl,
    /// `{"file", "techniques", "line", "rule"}` per detection, for score.py.
    Score,
}

fn time_text(d: &Detection) -> String {
    d.time.map(format_rfc3339).unwrap_or_else(|| "-".into())
}

fn location(d: &Detection) -> String {
    match &d.entry {
        Some(e) => format!("{}!{}#{}", d.file.display(), e, d.record),
        None => format!("{}#{}", d.file.display(), d.record),
    }
}

pub fn write(format: Format, detections: &[Detection], out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Table => table(detections, out),
        Format::Csv => csv(detections, out),
        Format::Jsonl => {
            for d in detections {
                let v = json!({
                    "time": d.time.map(format_rfc3339),
                    "host": d.host,
                    "rule_id": d.rule_id,
                    "title": d.title,
                    "level": d.level.as_str(),
                    "tactics": d.tactics,
                    "techniques": d.techniques,
                    "file": d.file.display().to_string(),
                    "entry": d.entry,
                    "record": d.record,
                    "correlation": d.correlation,
                    "count": d.count,
                    "why": d.why,
                });
                writeln!(out, "{v}")?;
            }
            Ok(())
        }
        Format::Score => {
            for d in detections {
                let v = json!({
                    "file": d.file.display().to_string(),
                    "techniques": d.techniques,
                    "line": d.record,
                    "rule": d.rule_id,
                });
                writeln!(out, "{v}")?;
            }
            Ok(())
        }
    }
}

fn table(detections: &[Detection], out: &mut dyn Write) -> std::io::Result<()> {
    for d in detections {
        let attack = if d.techniques.is_empty() {
            d.tactics.join(",")
        } else {
            d.techniques.join(",")
        };
        writeln!(
            out,
            "{}  {:<13} {:<24} {}  [{}]{}",
            time_text(d),
            d.level.as_str(),
            d.host.as_deref().unwrap_or("-"),
            d.title,
            d.rule_id,
            if d.count > 1 {
                format!("  x{}", d.count)
            } else {
                String::new()
            }
        )?;
        writeln!(
            out,
            "    attack: {}  source: {}",
            if attack.is_empty() { "-" } else { &attack },
            location(d)
        )?;
        writeln!(out, "    why: {}", d.why)?;
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(detections: &[Detection], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "time,level,host,rule_id,title,tactics,techniques,file,entry,record,count,why"
    )?;
    for d in detections {
        let row = [
            time_text(d),
            d.level.as_str().to_owned(),
            d.host.clone().unwrap_or_default(),
            d.rule_id.clone(),
            d.title.clone(),
            d.tactics.join(" "),
            d.techniques.join(" "),
            d.file.display().to_string(),
            d.entry.clone().unwrap_or_default(),
            d.record.to_string(),
            d.count.to_string(),
            d.why.clone(),
        ];
        let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        writeln!(out, "{}", row.join(","))?;
    }
    Ok(())
}
