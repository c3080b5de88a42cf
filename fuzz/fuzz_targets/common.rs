//! Shared by the fuzz targets: fixed events to match rules against, and a driver
//! that runs every public matching path of a loaded rule set on them.

use std::sync::OnceLock;

use koban_event::Event;
use koban_parse::{Reader, SourceHint};
use koban_sigma::{CorrelationEngine, Document, MatchScratch, RuleSet, Routing};

/// A few events of different shapes: a flat Sysmon process creation (Windows
/// routing), a generic JSON record, and a parsed syslog line.
pub fn events() -> &'static [Event] {
    static EVENTS: OnceLock<Vec<Event>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let reader = Reader::new().expect("embedded Windows map loads");
        let hint = SourceHint::default();
        let mut out = Vec::new();
        let sysmon = serde_json::json!({
            "EventID": 1,
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Provider_Name": "Microsoft-Windows-Sysmon",
            "Computer": "ws01.example.local",
            "UtcTime": "2025-10-24 23:41:00.601",
            "Image": "C:\\Windows\\System32\\cmd.exe",
            "OriginalFileName": "Cmd.Exe",
            "CommandLine": "cmd.exe /c whoami /all && powershell -enc SQBFAFgA",
            "ParentImage": "C:\\Windows\\explorer.exe",
            "ParentCommandLine": "C:\\Windows\\Explorer.EXE",
            "User": "EXAMPLE\\alice",
            "IntegrityLevel": "High",
            "Hashes": "SHA256=0123456789ABCDEF,IMPHASH=FEDCBA9876543210",
            "DestinationIp": "10.1.2.3",
            "DestinationPort": 443,
            "TargetObject": "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\x",
            "Details": "",
            "LogonId": "0x3e7",
            "ProcessId": 4242
        });
        out.extend(reader.normalise_json(sysmon, &hint));
        let generic = serde_json::json!({
            "@timestamp": "2025-10-24T23:41:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser",
            "awsRegion": "us-east-1",
            "userIdentity": {"type": "Root", "arn": "arn:aws:iam::1:root"},
            "sourceIPAddress": "2001:db8::1",
            "requestParameters": {"userName": ["bob", "eve"], "n": 1.5, "ok": true, "none": null}
        });
        out.extend(reader.normalise_json(generic, &hint));
        out.push(koban_parse::parse_line(
            "Oct 24 23:41:00 host sshd[123]: Failed password for root from 192.0.2.7 port 22 ssh2",
        ));
        out
    })
}

/// Builds rule sets from `documents` (both routings), matches every event, explains
/// every match and feeds the correlations the matching rules take part in.
pub fn exercise(documents: Vec<Document>) {
    for routing in [Routing::All, Routing::LogSource] {
        let (set, _errors) = RuleSet::build(documents.clone(), routing);
        let _ = set.prefiltered_rules();
        let mut engine: CorrelationEngine<u32> = CorrelationEngine::new(set.correlations().to_vec());
        let mut scratch = MatchScratch::default();
        let mut out = Vec::new();
        for (n, event) in events().iter().enumerate() {
            out.clear();
            set.matching(&mut scratch, event, &mut out);
            for &i in &out {
                let rule = &set.rules()[i as usize];
                assert!(
                    rule.detection.matches(event),
                    "RuleSet::matching returned rule {i} but its detection does not match"
                );
                let explanation = rule.detection.explain(event);
                let _ = explanation.to_string();
                let _ = rule.detection.fields();
                let names: Vec<&str> = [rule.meta.name.as_deref(), rule.meta.id.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                let lookup = |f: &str| event.get_str(f);
                let time = n as i64 * 30_000;
                // Chains are followed a bounded number of steps: a cycle of
                // correlations must not hang the fuzzer (the engine itself is fine).
                let mut pending: Vec<(usize, usize, i64)> =
                    set.feeds_of_rule(i as usize).iter().map(|&(c, p)| (c, p, time)).collect();
                let mut steps = 0;
                while let Some((c, pos, t)) = pending.pop() {
                    steps += 1;
                    if steps > 64 {
                        break;
                    }
                    if let Some(hit) = engine.feed(c, pos, &names, t, &lookup, i) {
                        let _ = &hit.why;
                        pending.extend(set.feeds_of_correlation(hit.correlation).iter().map(|&(c2, p2)| (c2, p2, hit.last_ms)));
                    }
                }
            }
        }
        let _ = engine.flush();
    }
}
