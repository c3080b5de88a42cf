//! The whole server on loopback: real sockets, real TLS, a real file-backed pipeline.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use koban_server::{start, ServerConfig};
use tokio::io::AsyncWriteExt;

fn config(dir: &Path) -> ServerConfig {
    ServerConfig::for_tests(dir.join("data"))
}

async fn wait_stored(path: &Path, n: usize) -> Vec<Stored> {
    let p = path.to_path_buf();
    wait_until(|| read_stored(&p).len() >= n, "records to be stored").await;
    read_stored(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tcp_octet_counted_newline_and_multiline_frames() {
    let dir = temp_dir("tcp");
    let out = dir.join("stored.tsv");
    let server = start(config(&dir), Box::new(FilePipeline::open(&out)))
        .await
        .expect("start");
    let addr = server.addrs.syslog_tcp.expect("tcp");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let multi = "<34>1 2025-10-24T23:41:00Z host app 1 - - first line\n  second line";
    let octet = format!("{} {multi}", multi.len());
    s.write_all(b"<13>Oct 11 22:14:15 host sshd[1]: newline framed\n")
        .await
        .expect("write");
    s.write_all(octet.as_bytes()).await.expect("write");
    // Split in the middle of a frame: framing must not care about read boundaries.
    s.write_all(b"<13>Oct 11 22:14:16 host su: cr")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"lf framed\r\n").await.expect("write");
    s.shutdown().await.expect("shutdown");
    drop(s);
    let stored = wait_stored(&out, 3).await;
    let payloads: Vec<_> = stored.iter().map(|s| s.payload.as_str()).collect();
    assert_eq!(
        payloads,
        [
            "<13>Oct 11 22:14:15 host sshd[1]: newline framed",
            multi,
            "<13>Oct 11 22:14:16 host su: crlf framed"
        ]
    );
    assert!(stored
        .iter()
        .all(|s| s.tenant == "default" && s.source == "syslog-tcp" && s.kind == "syslog"));
    let c = server.intake.metrics.counts("default", "syslog-tcp");
    assert_eq!((c.received, c.accepted), (3, 3));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tcp_frame_over_the_limit_closes_with_a_clear_error() {
    let dir = temp_dir("tcp-limit");
    let out = dir.join("stored.tsv");
    let mut cfg = config(&dir);
    cfg.max_frame_bytes = 1024;
    let server = start(cfg, Box::new(FilePipeline::open(&out)))
        .await
        .expect("start");
    let addr = server.addrs.syslog_tcp.expect("tcp");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"<13>kept before the bad frame\n99999 <13>too big")
        .await
        .expect("write");
    let _ = s.shutdown().await;
    let stored = wait_stored(&out, 1).await;
    assert_eq!(stored[0].payload, "<13>kept before the bad frame");
    wait_until(
        || {
            server
                .intake
                .metrics
                .counts("default", "syslog-tcp")
                .rejected
                == 1
        },
        "rejection count",
    )
    .await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_udp_datagrams_and_cidr_routes() {
    let dir = temp_dir("udp");
    let out = dir.join("stored.tsv");
    let mut cfg = config(&dir);
    cfg.syslog_routes.push(koban_server::config::SyslogRoute {
        cidr: "127.0.0.0/8".parse().expect("cidr"),
        tenant: "branch".into(),
        source: Some("branch-fw".into()),
    });
    let server = start(cfg, Box::new(FilePipeline::open(&out)))
        .await
        .expect("start");
    let addr = server.addrs.syslog_udp.expect("udp");
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for i in 0..20 {
        sock.send_to(format!("<13>udp message {i}\n").as_bytes(), addr)
            .await
            .expect("send");
    }
    let stored = wait_stored(&out, 20).await;
    assert_eq!(stored[0].payload, "<13>udp message 0");
    assert!(stored
        .iter()
        .all(|s| s.tenant == "branch" && s.source == "branch-fw"));
    let tenants = server.state.tenants().expect("tenants");
    assert!(
        tenants.iter().any(|t| t.name == "branch"),
        "routed tenants exist"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tls() {
    let dir = temp_dir("tls");
    let out = dir.join("stored.tsv");
    let server = start(config(&dir), Box::new(FilePipeline::open(&out)))
        .await
        .expect("start");
    let addr = server.addrs.syslog_tls.expect("tls");
    let mut s = tls_connect(addr, &server.cert_path).await;
    let msg = "<165>1 2025-01-01T00:00:00Z h app - - - tls\nwith newline";
    s.write_all(format!("{} {msg}", msg.len()).as_bytes())
        .await
        .expect("write");
    s.write_all(b"<13>plain line over tls\n")
        .await
        .expect("write");
    s.shutdown().await.expect("close");
    let stored = wait_stored(&out, 2).await;
    assert_eq!(stored[0].payload, msg);
    assert_eq!(stored[1].payload, "<13>plain line over tls");
    assert_eq!(stored[0].source, "syslog-tls");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_ndjson_bulk_and_hec_end_to_end() {
    let dir = temp_dir("https");
    let out = dir.join("stored.tsv");
    let server = start(config(&dir), Box::new(FilePipeline::open(&out)))
        .await
        .expect("start");
    assert!(
        server.first_admin_password.is_some(),
        "first start makes the admin"
    );
    server.state.add_tenant("acme").expect("tenant");
    let tok = server
        .state
        .create_ingest_token("acme", "web")
        .expect("token");
    let addr = server.addrs.https.expect("https");
    let auth = format!("Bearer {tok}");
    let (status, _, body) = https(
        addr,
        &server.cert_path,
        "POST",
        "/api/v1/ingest",
        &[("Authorization", &auth)],
        b"{\"a\":1}\n{\"a\":2}\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, head, body) = https(
        addr,
        &server.cert_path,
        "POST",
        "/_bulk",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-ndjson"),
        ],
        b"{\"index\":{\"_index\":\"x\"}}\n{\"b\":1}\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.contains("x-elastic-product: elasticsearch"));
    assert!(body.contains("\"errors\":false"), "{body}");
    let splunk = format!("Splunk {tok}");
    let (status, _, body) = https(
        addr,
        &server.cert_path,
        "POST",
        "/services/collector/event",
        &[("Authorization", &splunk)],
        b"{\"event\":\"e\"}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = https(
        addr,
        &server.cert_path,
        "POST",
        "/api/v1/ingest",
        &[],
        b"{}\n",
    )
    .await;
    assert_eq!(status, 401);
    let stored = wait_stored(&out, 4).await;
    assert!(stored.iter().all(|s| s.tenant == "acme"));
    assert_eq!(stored[0].payload, "{\"a\":1}");
    let (_, _, metrics) = https(addr, &server.cert_path, "GET", "/metrics", &[], b"").await;
    assert!(
        metrics.contains("koban_intake_accepted_total{tenant=\"acme\",source=\"web\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("koban_listener_connections_total{listener=\"https\"}"));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replays_the_wal_exactly_once() {
    let dir = temp_dir("restart");
    let out = dir.join("stored.tsv");
    // First run: the consumer is stopped, so records stay in the WAL only.
    let server = start(config(&dir), Box::new(StuckPipeline))
        .await
        .expect("start");
    let addr = server.addrs.syslog_tcp.expect("tcp");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    for i in 0..100 {
        s.write_all(format!("<13>event {i}\n").as_bytes())
            .await
            .expect("write");
    }
    s.shutdown().await.expect("close");
    drop(s);
    let intake = server.intake.clone();
    wait_until(|| intake.wal().durable_seq() == 100, "100 durable records").await;
    server.shutdown().await.expect("shutdown");
    assert!(read_stored(&out).is_empty());
    // Second run: a working consumer gets every record from the WAL.
    let server = start(config(&dir), Box::new(FilePipeline::open(&out)))
        .await
        .expect("restart");
    assert!(
        server.first_admin_password.is_none(),
        "the admin is made once"
    );
    let stored = wait_stored(&out, 100).await;
    assert_eq!(stored[99].payload, "<13>event 99");
    let addr = server.addrs.syslog_tcp.expect("tcp");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"<13>after restart\n").await.expect("write");
    s.shutdown().await.expect("close");
    wait_stored(&out, 101).await;
    server.shutdown().await.expect("shutdown");
    // Third run: the consumer is up to date; nothing is applied twice.
    let server = start(config(&dir), Box::new(FilePipeline::open(&out)))
        .await
        .expect("restart");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown().await.expect("shutdown");
    let stored = read_stored(&out);
    assert_eq!(stored.len(), 101);
    let seqs: Vec<u64> = stored.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (1..=101).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_reads_pause_while_the_consumer_is_stopped() {
    let dir = temp_dir("tcp-backpressure");
    let mut cfg = config(&dir);
    cfg.max_backlog_records = 50;
    let server = start(cfg, Box::new(StuckPipeline)).await.expect("start");
    let addr = server.addrs.syslog_tcp.expect("tcp");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let line = format!("<13>{}\n", "x".repeat(200));
    // Write far more than the bound in the background; the server stops reading.
    let writer = tokio::spawn(async move {
        for _ in 0..20_000 {
            if s.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let backlog = server.intake.backlog_records();
    assert!(backlog >= 50, "bound reached: {backlog}");
    // One read buffer (64 KiB, ~300 lines) past the bound at most.
    assert!(backlog < 50 + 400, "reading paused at the bound: {backlog}");
    assert!(
        !writer.is_finished(),
        "the sender is held back by the TCP window"
    );
    // The consumer catches up: reading resumes.
    server.intake.set_applied(server.intake.wal().last_seq());
    let before = server.intake.wal().last_seq();
    let intake = server.intake.clone();
    wait_until(|| intake.wal().last_seq() > before, "reading to resume").await;
    writer.abort();
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_pipeline_drain() {
    let dir = temp_dir("drain");
    let out = dir.join("stored.tsv");
    let server = start(config(&dir), Box::new(FilePipeline::open(&out)))
        .await
        .expect("start");
    let addr = server.addrs.syslog_tcp.expect("tcp");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    for i in 0..1000 {
        s.write_all(format!("<13>drain {i}\n").as_bytes())
            .await
            .expect("write");
    }
    s.shutdown().await.expect("close");
    drop(s);
    let intake = server.intake.clone();
    wait_until(|| intake.wal().last_seq() == 1000, "all appended").await;
    let pipeline = server.shutdown().await.expect("shutdown");
    assert_eq!(pipeline.applied_seq(), 1000);
    assert_eq!(read_stored(&out).len(), 1000);
}
