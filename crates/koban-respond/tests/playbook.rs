//! Playbooks: loading reports every error by path; triggers match; runs branch on
//! outcomes.

use std::collections::BTreeMap;

use koban_respond::playbook::{Next, Outcome, RunState, Severity, Subject, TriggerOn};
use koban_respond::{Action, Playbook};

const CONTAIN: &str = r#"
id: contain-encryption
name: Isolate a host that encrypts files
trigger:
  on: alert
  min_severity: high
  techniques: [T1486]
  needs: [host]
steps:
  - enrich: [agent, history]
  - notify: "Isolating {{host}}: {{title}}"
  - id: isolate
    run: isolate_host
    ttl: 24h
  - if: isolate.verified
    then:
      - id: block
        run: block_ip
        with: { ip: "{{src_ip}}" }
    else:
      - notify: "isolation of {{host}} did not verify"
  - notify: "done with {{host}}"
"#;

fn subject(severity: Severity, techniques: &[&str]) -> Subject {
    let mut entities = BTreeMap::new();
    entities.insert("host".to_owned(), "web-1".to_owned());
    entities.insert("src_ip".to_owned(), "203.0.113.9".to_owned());
    Subject {
        on: TriggerOn::Alert,
        id: 7,
        tenant: "acme".into(),
        incident: Some(3),
        title: "Files encrypted".into(),
        rule: "sigma:abc".into(),
        severity,
        techniques: techniques.iter().map(|t| (*t).to_owned()).collect(),
        tactics: vec!["impact".into()],
        entities,
        retroactive: false,
    }
}

#[test]
fn a_good_playbook_loads_and_its_trigger_matches() {
    let pb = Playbook::parse(CONTAIN).expect("ok");
    assert_eq!(pb.id, "contain-encryption");
    assert!(pb.trigger.matches(&subject(Severity::Critical, &["T1486"])));
    // A sub-technique matches its parent; lower severity or another technique do not.
    assert!(pb.trigger.matches(&subject(Severity::High, &["t1486.001"])));
    assert!(!pb.trigger.matches(&subject(Severity::Medium, &["T1486"])));
    assert!(!pb.trigger.matches(&subject(Severity::High, &["T14860"])));
    let mut retro = subject(Severity::High, &["T1486"]);
    retro.retroactive = true;
    assert!(
        !pb.trigger.matches(&retro),
        "retro-hunt alerts need retroactive: true"
    );
    let mut no_host = subject(Severity::High, &["T1486"]);
    no_host.entities.remove("host");
    assert!(!pb.trigger.matches(&no_host));
}

#[test]
fn every_error_is_reported_at_once_by_path() {
    let bad = r#"
id: Bad Id
trigger:
  on: alerts
  min_severity: severe
  techniques: [T1486, X12]
  needs: [hostname]
  colour: red
steps:
  - enrich: [agent, dns]
  - notify: "hello {{hots}}"
  - run: block_ip
    with: { ip: "10.0.0.0/33" }
  - run: kill_process
    with: { pid: 4242 }
    ttl: 1h
  - run: isolate_host
    with: { port: 22 }
  - run: launch_missiles
  - if: nothere.verified
    then: [{ notify: x }]
  - if: steps[0].sideways
    then: []
  - notify: a
    run: isolate_host
  - id: dup
    notify: a
  - id: dup
    notify: b
"#;
    let errors = Playbook::parse(bad).expect_err("an error");
    let paths: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let expect = [
        "id: \"Bad Id\"",
        "trigger.on: \"alerts\"",
        "trigger.min_severity: \"severe\"",
        "trigger.techniques[1]",
        "trigger.needs[0]",
        "trigger.colour: unknown key",
        "steps[0].enrich[1]: \"dns\"",
        "steps[1].notify: unknown variable {{hots}}",
        "steps[2].run: block_ip: \"10.0.0.0/33\" is not an IP",
        "steps[3].ttl: kill_process cannot be undone",
        "steps[4].run: isolate_host:",
        "steps[5].run: launch_missiles:",
        "steps[6].if: \"nothere\" is not the id of an earlier step",
        "steps[7].if: \"sideways\" is not an outcome",
        "steps[7].then: expected a non-empty list",
        "steps[8]: one kind per step, not notify and run",
        "steps[10].id: \"dup\" is already the id",
    ];
    for e in expect {
        assert!(
            paths.iter().any(|p| p.starts_with(e)),
            "no error starting {e:?} in:\n{}",
            paths.join("\n")
        );
    }
    assert_eq!(errors.len(), expect.len(), "{}", paths.join("\n"));
    // A YAML syntax error names its line.
    let e = Playbook::parse("id: x\nsteps: [\n").expect_err("an error");
    assert!(e[0].path.starts_with("line "), "{e:?}");
}

/// Walks a run, answering each step with `answer`; returns what was done.
fn walk(pb: &Playbook, run: &mut RunState, answer: &dyn Fn(&str) -> Outcome) -> Vec<String> {
    let mut done = Vec::new();
    loop {
        match pb.next(run) {
            Next::Done => return done,
            Next::Enrich { op, lookups } => {
                done.push(format!("enrich {}", lookups.join(",")));
                let op = op.clone();
                run.vars.insert("agent".into(), "ag-1".into());
                run.finish(&op, Outcome::Found);
            }
            Next::Notify { op, text } => {
                done.push(format!("notify {}", text.expect("ok")));
                let op = op.clone();
                run.finish(&op, Outcome::Done);
            }
            Next::Run {
                op, action, ttl_ms, ..
            } => {
                let action = action.expect("ok");
                done.push(format!("run {action} ttl {ttl_ms:?}"));
                let (op, o) = (op.clone(), answer(action.kind()));
                run.finish(&op, o);
            }
        }
    }
}

#[test]
fn a_run_branches_on_the_outcome_of_its_actions() {
    let pb = Playbook::parse(CONTAIN).expect("ok");
    let s = subject(Severity::Critical, &["T1486"]);
    let mut run = RunState::new(&s);
    let steps = walk(&pb, &mut run, &|_| Outcome::Verified);
    assert_eq!(steps.len(), 5, "{steps:?}");
    assert_eq!(steps[1], "notify Isolating web-1: Files encrypted");
    assert!(steps[2].contains("ttl Some(86400000)"), "{steps:?}");
    assert!(steps[3].starts_with("run block"), "{steps:?}");
    assert!(steps[3].contains("203.0.113.9"), "{steps:?}");
    assert_eq!(steps[4], "notify done with web-1");
    assert_eq!(run.outcomes["isolate"], Outcome::Verified);

    let mut run = RunState::new(&s);
    let steps = walk(&pb, &mut run, &|_| Outcome::Rejected);
    assert_eq!(
        steps[3..],
        [
            "notify isolation of web-1 did not verify".to_owned(),
            "notify done with web-1".to_owned()
        ]
    );
    // The state survives a round trip through the database between any two steps.
    let mut run = RunState::new(&s);
    let _ = pb.next(&mut run);
    let saved = serde_json::to_string(&run).expect("ok");
    let back: RunState = serde_json::from_str(&saved).expect("ok");
    assert_eq!(back, run);
}

#[test]
fn a_templated_value_is_checked_when_the_run_fills_it_in() {
    let pb = Playbook::parse(
        "id: b\ntrigger: {on: alert}\nsteps:\n  - run: block_ip\n    with: {ip: '{{src_ip}}'}\n",
    )
    .expect("ok");
    let mut s = subject(Severity::Low, &[]);
    s.entities.insert("src_ip".into(), "not-an-ip".into());
    let mut run = RunState::new(&s);
    match pb.next(&mut run) {
        Next::Run { action, .. } => {
            let e = action.expect_err("an error");
            assert!(e.contains("\"not-an-ip\" is not an IP"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    s.entities.remove("src_ip");
    let mut run = RunState::new(&s);
    match pb.next(&mut run) {
        Next::Run { action, .. } => {
            assert_eq!(
                action.expect_err("an error"),
                "with.ip: this run has no src_ip"
            )
        }
        other => panic!("{other:?}"),
    }
    s.entities.insert("src_ip".into(), "198.51.100.0/24".into());
    let mut run = RunState::new(&s);
    match pb.next(&mut run) {
        Next::Run { action, .. } => assert_eq!(
            action.expect("ok").kind(),
            Action::BlockIp {
                ip: "198.51.100.0/24".parse().expect("ok")
            }
            .kind()
        ),
        other => panic!("{other:?}"),
    }
}
