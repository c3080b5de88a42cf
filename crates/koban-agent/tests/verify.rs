//! The agent binary refuses forged, tampered, replayed, stale and misaddressed
//! commands (`koban-agent verify`, the same check `run` applies before acting).

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use koban_respond::{Action, CommandSigner, SignedCommand};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn command(number: u64, agent: &str, expires_in: i64) -> koban_respond::Command {
    koban_respond::Command {
        agent: agent.into(),
        number,
        action_id: 1,
        issued_ms: now_ms(),
        expires_ms: now_ms() + expires_in,
        action: Action::IsolateHost {},
    }
}

/// Runs `koban-agent verify` on `signed`; (accepted, what it printed).
fn verify(dir: &std::path::Path, signed: &SignedCommand) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_koban-agent"))
        .args(["verify", "--state"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn koban-agent");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(signed).expect("json").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn forged_tampered_replayed_stale_and_misaddressed_commands_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        CommandSigner::from_pkcs8(&CommandSigner::generate().expect("key")).expect("signer");
    let state = serde_json::json!({
        "server": "https://127.0.0.1:1",
        "fingerprint": "00".repeat(32),
        "agent": "agt-1",
        "secret": "kba_x",
        "tenant": "acme",
        "server_key": base64::engine::general_purpose::STANDARD.encode(server.public_key()),
        "last_number": 5,
    });
    std::fs::write(dir.path().join("agent.json"), state.to_string()).expect("state");

    let good = server.sign(&command(6, "agt-1", 60_000));
    let (ok, text) = verify(dir.path(), &good);
    assert!(ok, "a good command is accepted: {text}");

    let forger =
        CommandSigner::from_pkcs8(&CommandSigner::generate().expect("key")).expect("forger");
    let cases = [
        (
            "forged",
            forger.sign(&command(7, "agt-1", 60_000)),
            "signature",
        ),
        (
            "replayed",
            server.sign(&command(5, "agt-1", 60_000)),
            "replay",
        ),
        ("older", server.sign(&command(2, "agt-1", 60_000)), "replay"),
        ("stale", server.sign(&command(8, "agt-1", -1)), "expired"),
        (
            "misaddressed",
            server.sign(&command(9, "agt-2", 60_000)),
            "not this one",
        ),
        (
            "tampered",
            {
                let mut s = server.sign(&command(10, "agt-1", 60_000));
                s.payload = s.payload.replace("isolate_host", "release_host");
                s
            },
            "signature",
        ),
    ];
    for (what, signed, why) in cases {
        let (ok, text) = verify(dir.path(), &signed);
        assert!(!ok, "{what} command accepted: {text}");
        assert!(text.contains(why), "{what}: {text}");
        println!("{what}: {}", text.trim());
    }
}
