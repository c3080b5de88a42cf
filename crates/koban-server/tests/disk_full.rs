//! A full disk stops intake with a clear error and resumes when space returns. Runs on
//! a small tmpfs mounted by the test (needs root, as CI and the dev machines are; it
//! says so and passes trivially elsewhere).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use koban_server::state::State;
use koban_server::{app, AppState, Intake};
use koban_wal::{FsyncPolicy, Wal, WalOptions};
use tower::ServiceExt;

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn small_tmpfs(dir: &Path) -> Option<Mount> {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mount(dir.to_path_buf()))
}

async fn post(state: &AppState, token: &str, body: String) -> (StatusCode, serde_json::Value) {
    let req = Request::post("/api/v1/ingest")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body))
        .expect("request");
    let resp = app(state.clone()).oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn disk_full_stops_intake_and_it_resumes_when_space_returns() {
    let dir = temp_dir("disk-full");
    let disk = dir.join("disk");
    std::fs::create_dir_all(&disk).expect("mount point");
    let Some(_mount) = small_tmpfs(&disk) else {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let wal = Wal::open(
        disk.join("wal"),
        WalOptions {
            fsync: FsyncPolicy::Always,
            ..WalOptions::default()
        },
    )
    .expect("wal");
    let st = Arc::new(State::open(&dir.join("state.db")).expect("state"));
    st.first_start().expect("first start");
    let token = st.create_ingest_token("default", "app").expect("token");
    let intake = Intake::new(wal.clone(), default_limits(), 0);
    let state = AppState::new(intake.clone(), st, 1 << 20, 1 << 20);
    // Leave a little room, then fill it with requests.
    let filler = disk.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 900 << 10]);
    let line = format!("{{\"m\":\"{}\"}}\n", "x".repeat(200));
    let mut accepted = 0;
    let mut full = None;
    for _ in 0..1000 {
        let (status, json) = post(&state, &token, line.repeat(20)).await;
        if status == StatusCode::OK {
            accepted += 20;
        } else {
            full = Some((status, json));
            break;
        }
    }
    let (status, json) = full.expect("the disk filled up");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json["error"], "intake stopped: disk full");
    assert_eq!(
        intake.stopped_reason().as_deref(),
        Some("intake stopped: disk full")
    );
    // What was acknowledged is all there and nothing half-written follows it.
    assert_eq!(all_records(&wal).len(), accepted);
    assert_eq!(wal.last_seq() as usize, accepted);
    // Space returns: after the one-second probe interval intake resumes by itself.
    std::fs::remove_file(&filler).expect("free space");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, json) = post(&state, &token, line.clone()).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert!(intake.stopped_reason().is_none());
    assert_eq!(all_records(&wal).len(), accepted + 1);
    drop(wal);
    drop(state);
    drop(intake);
}
