//! Connectors: webhook actions are POSTed with an HMAC signature the receiver can
//! check, command actions run one configured program without a shell; each ends
//! verified only when the other side confirms; configuration errors come all at once.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use koban_respond::{Action, Gate};
use koban_server::config::ServerConfig;
use koban_server::respond::{
    run_connectors, signature, ActionRequest, ConnectorConfig, ConnectorKind, ResponseBook,
    WebhookUrl,
};
use serde_json::json;

/// A one-shot HTTP receiver answering `answer`; sends back the request it read.
fn receiver(answer: &'static str) -> (String, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", l.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then Content-Length bytes of body.
        loop {
            let n = s.read(&mut buf).expect("read");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        s.write_all(answer.as_bytes()).expect("answer");
        tx.send(String::from_utf8_lossy(&got).into_owned())
            .expect("send");
    });
    (url, rx)
}

fn ask(book: &ResponseBook, action: Action) -> i64 {
    book.request(
        &ActionRequest {
            tenant: "acme".into(),
            agent: None,
            incident: None,
            action,
            ttl_ms: None,
            by: "pat".into(),
            run: None,
        },
        &Gate::RunNow,
        1,
    )
    .expect("request")["id"]
        .as_i64()
        .expect("id")
}

const SECRET: &str = "a-webhook-secret-of-some-length";

fn webhook(name: &str, url: &str) -> ConnectorConfig {
    ConnectorConfig {
        name: name.into(),
        kind: ConnectorKind::Webhook {
            url: WebhookUrl::parse(url).expect("url"),
            secret: SECRET.into(),
            ca_file: None,
        },
        timeout_ms: 5_000,
    }
}

#[test]
fn webhooks_are_signed_and_verified_only_when_the_receiver_confirms() {
    let dir = common::temp_dir("connectors");
    let mut cases = Vec::new();
    for (name, answer, want) in [
        (
            "confirms",
            "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"verified\":true}",
            "verified",
        ),
        ("silent", "HTTP/1.1 204 No Content\r\n\r\n", "unverified"),
        ("broken", "HTTP/1.1 500 Oops\r\n\r\n", "failed"),
    ] {
        let (url, rx) = receiver(answer);
        cases.push((webhook(name, &url), rx, want));
    }
    let names = cases.iter().map(|c| c.0.name.clone()).collect();
    let book = ResponseBook::open(&dir)
        .expect("book")
        .with_connectors(names);
    // An unknown connector is refused when asked for.
    let e = book
        .request(
            &ActionRequest {
                tenant: "acme".into(),
                agent: None,
                incident: None,
                action: Action::Webhook {
                    connector: "nope".into(),
                    body: json!({}),
                },
                ttl_ms: None,
                by: "pat".into(),
                run: None,
            },
            &Gate::RunNow,
            1,
        )
        .expect_err("unknown connector");
    assert!(e.to_string().contains("\"nope\" is not configured"), "{e}");

    let ids: Vec<i64> = cases
        .iter()
        .map(|c| {
            ask(
                &book,
                Action::Webhook {
                    connector: c.0.name.clone(),
                    body: json!({"block": "203.0.113.9"}),
                },
            )
        })
        .collect();
    let configs: Vec<ConnectorConfig> = cases.iter().map(|c| c.0.clone()).collect();
    assert_eq!(run_connectors(&book, &configs, 1_000), 3);
    assert_eq!(run_connectors(&book, &configs, 1_001), 0, "each runs once");
    for ((_, rx, want), id) in cases.iter().zip(&ids) {
        let (_, a) = book.action(*id).expect("action");
        assert_eq!(a["state"], *want, "{a}");
        let req = rx.recv().expect("request");
        let (head, body) = req.split_once("\r\n\r\n").expect("http");
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .expect(name)
                .to_owned()
        };
        let ts: i64 = header("X-Koban-Timestamp").parse().expect("timestamp");
        assert_eq!(
            header("X-Koban-Signature"),
            signature(SECRET, ts, body),
            "the HMAC checks"
        );
        assert_ne!(
            header("X-Koban-Signature"),
            signature("another secret!!", ts, body)
        );
        let doc: serde_json::Value = serde_json::from_str(body).expect("json body");
        assert_eq!(doc["body"]["block"], "203.0.113.9");
        assert_eq!(doc["action"], *id);
    }
}

#[test]
fn commands_run_without_a_shell_and_say_whether_they_verified() {
    let dir = common::temp_dir("connectors-cmd");
    let printf = ConnectorConfig {
        name: "printf".into(),
        kind: ConnectorKind::Command {
            program: "/usr/bin/printf".into(),
            args: vec!["%s\\n".into()],
        },
        timeout_ms: 5_000,
    };
    let fails = ConnectorConfig {
        name: "fails".into(),
        kind: ConnectorKind::Command {
            program: "/bin/false".into(),
            args: vec![],
        },
        timeout_ms: 5_000,
    };
    let book = ResponseBook::open(&dir)
        .expect("book")
        .with_connectors(vec!["printf".into(), "fails".into()]);
    let yes = ask(
        &book,
        Action::Command {
            connector: "printf".into(),
            args: vec!["verified".into()],
        },
    );
    // A shell would expand this; the program gets it as it is.
    let no = ask(
        &book,
        Action::Command {
            connector: "printf".into(),
            args: vec!["$(id) done".into()],
        },
    );
    let bad = ask(
        &book,
        Action::Command {
            connector: "fails".into(),
            args: vec![],
        },
    );
    assert_eq!(run_connectors(&book, &[printf, fails], 1_000), 3);
    assert_eq!(book.action(yes).expect("a").1["state"], "verified");
    let (_, n) = book.action(no).expect("a");
    assert_eq!(n["state"], "unverified");
    assert_eq!(n["observed"]["stdout"], "$(id) done\n");
    assert_eq!(book.action(bad).expect("a").1["state"], "failed");
}

#[test]
fn connector_configuration_errors_come_all_at_once() {
    std::env::set_var("KOBAN_TEST_HOOK_SECRET", "long enough secret value");
    let t: toml::Table = toml::from_str(
        r#"
[[respond.connectors]]
name = "fw"
kind = "webhook"
url = "http://198.51.100.7/block"
secret_env = "KOBAN_TEST_NOT_SET"

[[respond.connectors]]
name = "idp"
kind = "command"
program = "disable-user"
colour = "red"

[[respond.connectors]]
kind = "carrier-pigeon"

[[respond.connectors]]
name = "ok"
kind = "webhook"
url = "https://fw.example:8443/api/block"
secret_env = "KOBAN_TEST_HOOK_SECRET"
"#,
    )
    .expect("toml");
    let e = ServerConfig::from_table(&t)
        .expect_err("errors")
        .to_string();
    for want in [
        "respond.connectors[0].url: \"http://198.51.100.7/block\": plain http only to a loopback",
        "respond.connectors[0].secret_env: $KOBAN_TEST_NOT_SET is not set",
        "respond.connectors[1].program: \"disable-user\": give an absolute path",
        "respond.connectors[1].colour: unknown key",
        "respond.connectors[2].name: missing",
        "respond.connectors[2].kind: \"carrier-pigeon\"",
    ] {
        assert!(e.contains(want), "no {want:?} in:\n{e}");
    }
    assert_eq!(e.lines().count(), 6, "{e}");
    assert!(!e.contains("long enough secret"), "secrets are never shown");
}
