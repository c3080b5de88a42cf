"""Whole-process ingest benchmark driver (see bench/ingest.sh)."""
import http.client, json, os, socket, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "acceptance", "ingest"))
from harness import Server, CTX

binary, work, data, n_sys, n_http, conns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
# The backlog bound is raised so the WAL side is measured without backpressure from the
# (slower) event store; fsync = always, as by default.
srv = Server(binary, work, backlog_records=10**9, backlog_bytes=1 << 40)
token = srv.cli("token", "create", "--tenant", "default", "--source", "bench-http")
srv.start()

def counter(m, name):
    return m.get(name, 0)

# --- syslog/TCP: real lines (loghub OpenSSH, Linux, Apache error) with an RFC 3164 PRI
lines = []
for f in ("OpenSSH_2k.log", "Linux_2k.log", "Apache_2k.log"):
    with open(os.path.join(data, "linux_text", "loghub", f), errors="replace") as fh:
        lines += [f"<38>{l.rstrip()}\n".encode() for l in fh if l.strip()]
per = n_sys // conns
def conn_body():
    out, i = [], 0
    while i < per:
        out.append(lines[i % len(lines)]); i += 1
    return b"".join(out)
bodies = [conn_body() for _ in range(conns)]
avg = sum(len(b) for b in bodies) / (per * conns)

def run_phase(name, send, total, accepted_metric):
    m0 = srv.metrics()
    base_acc, base_sto = counter(m0, accepted_metric), counter(m0, "koban_events_stored_total")
    t0 = time.time()
    send()
    while counter(srv.metrics(), accepted_metric) - base_acc < total:
        time.sleep(0.02)
    t_wal = time.time() - t0
    print(f"  {name}: {total:,} accepted durable in the WAL in {t_wal:.2f}s = {total / t_wal:,.0f} events/s", flush=True)
    while True:
        m = srv.metrics()
        if m["koban_wal_backlog_records"] == 0 and counter(m, "koban_events_stored_total") - base_sto >= total:
            break
        time.sleep(0.1)
    t_sto = time.time() - t0
    parsed = counter(m, "koban_events_parsed_total") - counter(m0, "koban_events_parsed_total")
    print(f"  {name}: {total:,} parsed ({parsed / total:.1%} by a parser) and indexed into the event store "
          f"in {t_sto:.2f}s = {total / t_sto:,.0f} events/s", flush=True)
    return total / t_wal, total / t_sto

def send_syslog():
    def one(b):
        s = socket.create_connection(("127.0.0.1", srv.tcp))
        s.sendall(b)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
        s.close()
    ts = [threading.Thread(target=one, args=(b,)) for b in bodies]
    [t.start() for t in ts]; [t.join() for t in ts]

print(f"bench: syslog/tcp {per * conns:,} lines (avg {avg:.0f} B, loghub OpenSSH/Linux/Apache), {conns} connections", flush=True)
sys_wal, sys_sto = run_phase("syslog/tcp", send_syslog, per * conns, "koban_intake_accepted_total")

# --- HTTPS NDJSON: Suricata eve.json alerts, 1000 lines per request
with open(os.path.join(data, "network", "suricata", "wrccdc-2018", "alerts-only.json")) as fh:
    docs = [json.dumps(d, separators=(",", ":")) + "\n" for d in json.load(fh)]
BATCH = 1000
batches = [("".join(docs[(k * BATCH + j) % len(docs)] for j in range(BATCH))).encode() for k in range(7)]
per_conn = n_http // BATCH // conns
codes = []
def send_http():
    def one(c):
        conn = http.client.HTTPSConnection("127.0.0.1", srv.https, context=CTX, timeout=120)
        hdr = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        for k in range(per_conn):
            while True:
                conn.request("POST", "/api/v1/ingest", body=batches[(c + k) % len(batches)], headers=hdr)
                r = conn.getresponse(); r.read()
                if r.status == 200:
                    break
                codes.append(r.status); time.sleep(0.05)
        conn.close()
    ts = [threading.Thread(target=one, args=(c,)) for c in range(conns)]
    [t.start() for t in ts]; [t.join() for t in ts]
n_h = per_conn * conns * BATCH
print(f"bench: https ndjson {n_h:,} Suricata eve.json alerts (avg {sum(map(len, batches)) / len(batches) / BATCH:.0f} B), "
      f"{conns} connections, {BATCH} lines per request", flush=True)
http_wal, http_sto = run_phase("https ndjson", send_http, n_h, "koban_intake_accepted_total")
srv.sample_rss()
srv.term()
print(f"  peak RSS (VmHWM): {srv.peak_rss_kb / 1024:.0f} MiB; non-200 answers: {len(codes)}")
target = 300_000
print(f"bench summary: syslog/tcp {sys_wal:,.0f}/s durable in WAL ({'meets' if sys_wal >= target else 'misses'} 300k), "
      f"{sys_sto:,.0f}/s parsed+stored ({'meets' if sys_sto >= target else 'misses'} 300k); "
      f"https ndjson {http_wal:,.0f}/s durable, {http_sto:,.0f}/s parsed+stored; peak RSS {srv.peak_rss_kb / 1024:.0f} MiB")
