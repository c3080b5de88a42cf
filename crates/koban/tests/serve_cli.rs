//! `koban serve`, `koban tenant`, `koban token` as a user runs them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn koban() -> Command {
    Command::new(env!("CARGO_BIN_EXE_koban"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("koban-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn serve_reports_every_config_error_with_its_key() {
    let dir = temp_dir("bad-config");
    let cfg = dir.join("koban.toml");
    std::fs::write(
        &cfg,
        "[server]\nhttps = \"nowhere\"\nport = 1\n[wal]\nfsync = \"sometimes\"\n[syslog.tcp]\ntenant = \"a b\"\n",
    )
    .expect("write config");
    let out = koban()
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.https",
        "server.port",
        "wal.fsync",
        "syslog.tcp.tenant",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    assert!(err.contains("4 configuration errors"), "{err}");
}

#[test]
fn tenants_and_tokens_from_the_command_line() {
    let dir = temp_dir("tenants");
    let data = dir.join("data");
    let run = |args: &[&str]| {
        let out = koban()
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .current_dir(&dir)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run(&["tenant", "add", "acme"]);
    assert!(
        first.contains("one-time password"),
        "first use makes the admin: {first}"
    );
    let list = run(&["tenant", "list"]);
    assert_eq!(list.lines().collect::<Vec<_>>(), ["acme", "default"]);
    let token = run(&["token", "create", "--tenant", "acme", "--source", "fw"]);
    assert!(
        token.trim().starts_with("kbi_") && token.trim().len() > 60,
        "{token}"
    );
    let admin = run(&["token", "create", "--admin"]);
    assert!(admin.trim().starts_with("kba_"));
    let out = koban()
        .args([
            "token",
            "create",
            "--tenant",
            "nobody",
            "--source",
            "x",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant `nobody`"));
}

#[test]
fn serve_starts_prints_the_password_once_and_stops_on_sigterm() {
    let dir = temp_dir("serve");
    let cfg = dir.join("koban.toml");
    std::fs::write(
        &cfg,
        "[server]\nhttps = \"127.0.0.1:0\"\n[syslog.udp]\nlisten = \"127.0.0.1:0\"\n\
         [syslog.tcp]\nlisten = \"127.0.0.1:0\"\n[syslog.tls]\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("write config");
    let start = |expect_password: bool| {
        let mut child = koban()
            .arg("--config")
            .arg(&cfg)
            .arg("serve")
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut saw_password = false;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = lines.next().expect("output").expect("line");
            saw_password |= line.contains("one-time password");
            if line.starts_with("listening:") {
                assert!(line.contains("https 127.0.0.1:"), "{line}");
                break;
            }
            assert!(Instant::now() < deadline, "server did not start");
        }
        assert_eq!(saw_password, expect_password);
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let code = child.wait().expect("wait");
        assert!(code.success(), "clean exit on SIGTERM: {code:?}");
    };
    start(true);
    // The data dir (relative to where koban runs) holds the state, WAL and certificate.
    assert!(dir.join("koban-data/state.db").exists());
    assert!(dir.join("koban-data/tls/cert.pem").exists());
    assert!(dir.join("koban-data/wal").is_dir());
    start(false);
}
