//! Actions, commands, the approval gate, the lifecycle and the nftables tables, as data.

use koban_respond::nft;
use koban_respond::{
    Action, Actor, ApprovalPolicy, Command, CommandSigner, CommandVerifier, Gate, Refused, Service,
    SignedCommand, State, Step,
};

/// (JSON, the field the error names, or "" when the action is valid).
const ACTIONS: &[(&str, &str)] = &[
    (r#"{"kind":"isolate_host"}"#, ""),
    (r#"{"kind":"release_host"}"#, ""),
    (r#"{"kind":"block_ip","ip":"203.0.113.7"}"#, ""),
    (r#"{"kind":"block_ip","ip":"203.0.113.0/24"}"#, ""),
    (r#"{"kind":"block_ip","ip":"2001:db8::/32"}"#, ""),
    (r#"{"kind":"block_ip","ip":"10.0.0.0/33"}"#, "action"),
    (r#"{"kind":"block_ip","ip":"0.0.0.0/0"}"#, "ip"),
    (r#"{"kind":"block_ip","ip":"127.0.0.1"}"#, "ip"),
    (r#"{"kind":"block_ip"}"#, "action"),
    (r#"{"kind":"block_domain","domain":"evil.example"}"#, ""),
    (r#"{"kind":"block_domain","domain":"evil.example."}"#, ""),
    (r#"{"kind":"block_domain","domain":"localhost"}"#, "domain"),
    (
        r#"{"kind":"block_domain","domain":"-bad.example"}"#,
        "domain",
    ),
    (r#"{"kind":"block_domain","domain":"a..example"}"#, "domain"),
    (
        r#"{"kind":"block_domain","domain":"evil example"}"#,
        "domain",
    ),
    (r#"{"kind":"disable_account","user":"alice"}"#, ""),
    (r#"{"kind":"disable_account","user":"root"}"#, "user"),
    (r#"{"kind":"disable_account","user":"-rf"}"#, "user"),
    (r#"{"kind":"disable_account","user":"a b"}"#, "user"),
    (r#"{"kind":"enable_account","user":"svc.backup"}"#, ""),
    (r#"{"kind":"kill_process","pid":4242}"#, ""),
    (r#"{"kind":"kill_process","pid":1}"#, "pid"),
    (r#"{"kind":"kill_process","pid":-3}"#, "action"),
    (r#"{"kind":"quarantine_file","path":"/tmp/x/evil.sh"}"#, ""),
    (r#"{"kind":"quarantine_file","path":"evil.sh"}"#, "path"),
    (
        r#"{"kind":"quarantine_file","path":"/tmp/../etc/passwd"}"#,
        "path",
    ),
    (r#"{"kind":"quarantine_file","path":"/"}"#, "path"),
    (
        r#"{"kind":"collect_files","paths":["/var/log/auth.log"]}"#,
        "",
    ),
    (r#"{"kind":"collect_files","paths":[]}"#, "paths"),
    (
        r#"{"kind":"collect_files","paths":["/ok","rel"]}"#,
        "paths[1]",
    ),
    (
        r#"{"kind":"webhook","connector":"fw-1","body":{"ip":"1.2.3.4"}}"#,
        "",
    ),
    (r#"{"kind":"webhook","connector":"fw 1"}"#, "connector"),
    (
        r#"{"kind":"command","connector":"ad","args":["disable","bob"]}"#,
        "",
    ),
    (
        r#"{"kind":"command","connector":"ad","args":["a\u0000b"]}"#,
        "args[0]",
    ),
    (r#"{"kind":"reboot"}"#, "action"),
    (r#"{"kind":"isolate_host","extra":1}"#, "action"),
    (r#"not json"#, "action"),
];

#[test]
fn actions_are_validated_by_field() {
    for (json, field) in ACTIONS {
        match (Action::from_json(json), *field) {
            (Ok(a), "") => {
                // What goes on the wire comes back the same.
                let again = serde_json::to_string(&a).expect("serialise");
                assert_eq!(Action::from_json(&again), Ok(a), "{json}");
            }
            (Ok(a), f) => panic!("{json}: accepted as {a:?}, wanted an error on {f}"),
            (Err(e), "") => panic!("{json}: refused: {e}"),
            (Err(e), f) => assert_eq!(e.field, f, "{json}: {e}"),
        }
    }
}

#[test]
fn undo_reverses_and_is_reversed() {
    for (json, field) in ACTIONS {
        let Ok(a) = Action::from_json(json) else {
            continue;
        };
        assert!(field.is_empty());
        if let Some(u) = a.undo() {
            assert_eq!(u.undo().as_ref(), Some(&a), "{a}");
            assert_ne!(u.kind(), a.kind());
        }
        if a.contains() {
            assert!(a.undo().is_some(), "{a}: a containment must be reversible");
        }
    }
    assert_eq!(Action::KillProcess { pid: 9 }.undo(), None);
}

fn command(number: u64, action: Action) -> Command {
    Command {
        agent: "agent-1".into(),
        number,
        action_id: 7,
        issued_ms: 1_000_000,
        expires_ms: 1_000_000 + 600_000,
        action,
    }
}

#[test]
fn commands_forged_replayed_stale_or_misaddressed_are_refused() {
    let der = CommandSigner::generate().expect("key");
    let signer = CommandSigner::from_pkcs8(&der).expect("signer");
    let mut agent = CommandVerifier::new(signer.public_key(), "agent-1", 0).expect("verifier");
    let now = 1_000_500;

    let first = signer.sign(&command(1, Action::IsolateHost {}));
    assert_eq!(
        agent.accept(&first, now).map(|c| c.number),
        Ok(1),
        "a good command passes"
    );
    assert_eq!(agent.last_number(), 1);
    // The same bytes again: a replay.
    assert_eq!(
        agent.accept(&first, now),
        Err(Refused::Replayed { number: 1, last: 1 })
    );
    // Another key signs a well-formed command: a forgery.
    let other = CommandSigner::from_pkcs8(&CommandSigner::generate().expect("key")).expect("other");
    assert_eq!(
        agent.accept(&other.sign(&command(2, Action::ReleaseHost {})), now),
        Err(Refused::BadSignature)
    );
    // A signed command with its action swapped after signing.
    let mut tampered = signer.sign(&command(3, Action::ReleaseHost {}));
    tampered.payload = tampered.payload.replace("release_host", "isolate_host");
    assert_eq!(agent.accept(&tampered, now), Err(Refused::BadSignature));
    // Garbage in the signature.
    let garbage = SignedCommand {
        payload: first.payload.clone(),
        signature: "!!".into(),
    };
    assert_eq!(agent.accept(&garbage, now), Err(Refused::BadSignature));
    // For someone else.
    let mut elsewhere = command(4, Action::ReleaseHost {});
    elsewhere.agent = "agent-2".into();
    assert!(matches!(
        agent.accept(&signer.sign(&elsewhere), now),
        Err(Refused::OtherAgent { .. })
    ));
    // Too late, and too early.
    let stale = signer.sign(&command(5, Action::ReleaseHost {}));
    assert!(matches!(
        agent.accept(&stale, 1_000_000 + 600_001),
        Err(Refused::Expired { .. })
    ));
    assert!(matches!(
        agent.accept(&stale, 1_000_000 - 5 * 60_000 - 1),
        Err(Refused::FromTheFuture { .. })
    ));
    // Refusals move nothing: a later good command still passes, and an older one,
    // even unused, does not after it.
    assert_eq!(agent.accept(&stale, now).map(|c| c.number), Ok(5));
    let older = signer.sign(&command(4, Action::ReleaseHost {}));
    assert!(matches!(
        agent.accept(&older, now),
        Err(Refused::Replayed { .. })
    ));
    // A restarted agent keeps its last number.
    let mut restarted =
        CommandVerifier::new(signer.public_key(), "agent-1", agent.last_number()).expect("v");
    assert!(matches!(
        restarted.accept(&stale, now),
        Err(Refused::Replayed { .. })
    ));
    assert!(CommandVerifier::new(&[0u8; 31], "agent-1", 0).is_err());
    assert!(CommandSigner::from_pkcs8(b"not a key").is_err());
    // The signer's debug form never shows the private key.
    assert!(!format!("{signer:?}").contains(&format!("{:?}", &der[16..24])));
}

#[test]
fn the_gate_follows_the_service() {
    let full = ApprovalPolicy::new(Service::FullyManaged);
    let semi = ApprovalPolicy::new(Service::SemiManaged);
    let waits = |g: Gate| matches!(g, Gate::AwaitApproval { .. });
    assert_eq!(full.gate(Actor::Provider, 0), Gate::RunNow);
    assert_eq!(full.gate(Actor::Playbook, 0), Gate::RunNow);
    assert!(waits(semi.gate(Actor::Provider, 0)));
    assert!(waits(semi.gate(Actor::Playbook, 0)));
    assert!(waits(semi.gate(Actor::CustomerAnalyst, 0)));
    assert_eq!(semi.gate(Actor::CustomerAdmin, 0), Gate::RunNow);
    assert!(matches!(
        semi.gate(Actor::CustomerViewer, 0),
        Gate::Refused(_)
    ));
    assert!(matches!(
        full.gate(Actor::CustomerViewer, 0),
        Gate::Refused(_)
    ));
    match semi.gate(Actor::Provider, 1000) {
        Gate::AwaitApproval {
            escalate_at_ms,
            expire_at_ms,
        } => {
            assert_eq!(escalate_at_ms, 1000 + semi.timeout_ms);
            assert_eq!(expire_at_ms, 1000 + 2 * semi.timeout_ms);
        }
        g => panic!("{g:?}"),
    }
    assert!(semi.may_approve(Actor::CustomerAdmin));
    assert!(!semi.may_approve(Actor::Provider));
    assert!(full.may_approve(Actor::Provider));
    for p in [&full, &semi] {
        assert!(!p.may_approve(Actor::CustomerViewer));
        assert!(!p.may_approve(Actor::CustomerAnalyst));
        assert!(!p.may_approve(Actor::Playbook));
    }
}

#[test]
fn lifecycle_allows_only_its_steps() {
    use State as S;
    let walk = |steps: &[Step]| {
        steps
            .iter()
            .try_fold(S::AwaitingApproval, |s, st| s.next(*st))
    };
    assert_eq!(
        walk(&[
            Step::Approve,
            Step::Send,
            Step::Ran { verified: true },
            Step::Undo
        ]),
        Ok(S::Undone)
    );
    assert_eq!(walk(&[Step::Escalate, Step::TimeOut]), Ok(S::TimedOut));
    assert_eq!(walk(&[Step::Escalate, Step::Approve]), Ok(S::Queued));
    assert_eq!(
        walk(&[Step::Approve, Step::Send, Step::Ran { verified: false }]),
        Ok(S::Unverified)
    );
    let e = walk(&[Step::Send]).expect_err("not approved");
    assert_eq!(
        e.to_string(),
        "an action that is awaiting_approval cannot be sent"
    );
    assert!(walk(&[Step::Reject, Step::Approve]).is_err());
    assert!(walk(&[Step::Approve, Step::Send, Step::Fail, Step::Undo]).is_err());
    assert!(walk(&[Step::TimeOut]).is_err(), "escalation comes first");
    for s in koban_respond::lifecycle::ALL {
        assert_eq!(S::parse(s.as_str()), Some(s));
    }
}

#[test]
fn nft_tables_keep_only_the_server() {
    let servers: Vec<std::net::SocketAddr> = vec![
        "10.77.0.1:8443".parse().expect("addr"),
        "[fd00::1]:8443".parse().expect("addr"),
    ];
    let isolate = nft::isolation_script(&servers);
    let want = [
        "add table inet koban_isolate\ndelete table inet koban_isolate\n",
        "type filter hook output priority -200; policy drop;",
        "type filter hook input priority -200; policy drop;",
        "ip daddr 10.77.0.1 tcp dport 8443 accept",
        "ip saddr 10.77.0.1 tcp sport 8443 accept",
        "ip6 daddr fd00::1 tcp dport 8443 accept",
        "oifname \"lo\" accept",
    ];
    for w in want {
        assert!(isolate.contains(w), "{w:?} missing from\n{isolate}");
    }
    assert_eq!(
        nft::release_script(),
        "add table inet koban_isolate\ndelete table inet koban_isolate\n"
    );
    let nets: Vec<ipnet::IpNet> = vec![
        "203.0.113.7/32".parse().expect("net"),
        "198.51.100.9/24".parse().expect("net"),
        "2001:db8::/32".parse().expect("net"),
    ];
    let block = nft::block_script(&nets);
    assert!(
        block.contains("elements = { 203.0.113.7/32, 198.51.100.0/24 }"),
        "{block}"
    );
    assert!(block.contains("elements = { 2001:db8::/32 }"), "{block}");
    assert!(block.contains("ip saddr @v4 drop") && block.contains("ip6 daddr @v6 drop"));
    assert!(!nft::block_script(&[]).contains("elements"));
    assert_eq!(
        nft::blockable(&"10.77.0.0/16".parse().expect("net"), &servers),
        Err("10.77.0.1".parse().expect("ip"))
    );
    assert_eq!(nft::blockable(&nets[0], &servers), Ok(()));
}

#[test]
fn nft_listings_are_read_back() {
    // The shape of `nft -j list table inet koban_block` (nftables 1.0).
    let json = r#"{"nftables": [
      {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
      {"table": {"family": "inet", "name": "koban_block", "handle": 3}},
      {"set": {"family": "inet", "name": "v4", "table": "koban_block", "type": "ipv4_addr",
               "handle": 1, "flags": ["interval"],
               "elem": ["203.0.113.7", {"prefix": {"addr": "198.51.100.0", "len": 24}},
                        {"range": ["192.0.2.1", "192.0.2.9"]}]}},
      {"chain": {"family": "inet", "table": "koban_block", "name": "input", "handle": 3,
                 "type": "filter", "hook": "input", "prio": -190, "policy": "accept"}}
    ]}"#;
    let l = nft::read_listing(json).expect("listing");
    assert!(l.present);
    assert_eq!(
        l.elements,
        vec![
            "203.0.113.7/32".parse::<ipnet::IpNet>().expect("net"),
            "198.51.100.0/24".parse().expect("net")
        ]
    );
    assert_eq!(l.unreadable.len(), 1, "a range is shown, not dropped");
    assert_eq!(
        l.policies,
        vec![("input".to_string(), "accept".to_string())]
    );
    assert!(!nft::read_listing("").expect("empty").present);
    assert!(nft::read_listing("{").is_err());
    assert!(nft::read_listing("{}").is_err());
}
