#!/usr/bin/env bash
# Whole-process intake benchmark: syslog/TCP and HTTPS NDJSON records/s into the durable
# WAL (fsync = always) of a running `koban serve`, and its peak RSS.
#
#   bench/intake.sh [RECORDS] [CONNECTIONS]      (defaults: 1000000 4)
#
# The pipeline is the built-in counting stand-in until the store is joined in, so this
# measures intake + WAL only, not parsing or storage. Not a timed test: it prints figures.
set -euo pipefail
N=${1:-1000000}
C=${2:-4}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cargo build --release -q -p koban --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/koban"
WORK=$(mktemp -d /tmp/koban-intake-bench.XXXXXX)
PID=
cleanup() {
    if [[ -n $PID ]]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
cat >"$WORK/koban.toml" <<TOML
[server]
https = "127.0.0.1:0"
data_dir = "data"
[syslog.udp]
listen = "off"
[syslog.tcp]
listen = "127.0.0.1:0"
[syslog.tls]
listen = "off"
[wal]
fsync = "always"
TOML
"$BIN" --config "$WORK/koban.toml" serve >"$WORK/out.txt" 2>"$WORK/err.txt" &
PID=$!
for _ in $(seq 100); do grep -q '^listening:' "$WORK/out.txt" 2>/dev/null && break; sleep 0.1; done
TCP=$(grep -o 'tcp 127.0.0.1:[0-9]*' "$WORK/out.txt" | cut -d: -f2)
HTTPS=$(grep -o 'https 127.0.0.1:[0-9]*' "$WORK/out.txt" | cut -d: -f2)
TOKEN=$("$BIN" --config "$WORK/koban.toml" token create --tenant default --source bench | tail -1)

python3 - "$N" "$C" "$TCP" "$HTTPS" "$TOKEN" <<'PY'
import json, socket, ssl, sys, threading, time, urllib.request, http.client
n, c, tcp, https, token = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE

def accepted(source):
    body = urllib.request.urlopen(f"https://127.0.0.1:{https}/metrics", context=ctx).read().decode()
    for line in body.splitlines():
        if line.startswith("koban_intake_accepted_total") and f'source="{source}"' in line:
            return int(line.rsplit(" ", 1)[1])
    return 0

line = ("<134>1 2025-10-24T23:41:00.123Z fw01 filterlog 4242 - - "
        "rule=5,0,,1000,em0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,10.0.0.1,10.0.0.2,51000,443,0,S,,0,,\n")
line = line + " " * max(0, 200 - len(line))
per = n // c
def send_syslog():
    s = socket.create_connection(("127.0.0.1", tcp))
    chunk = (line.rstrip(" ").rstrip("\n") + "\n").encode() * 1000
    for _ in range(per // 1000):
        s.sendall(chunk)
    s.close()
t0 = time.time()
ts = [threading.Thread(target=send_syslog) for _ in range(c)]
[t.start() for t in ts]; [t.join() for t in ts]
total = per // 1000 * 1000 * c
while accepted("syslog-tcp") < total:
    time.sleep(0.05)
dt = time.time() - t0
print(f"syslog/tcp: {total} records in {dt:.2f}s = {total/dt:,.0f} records/s durable (fsync always, {c} connections)")

doc = json.dumps({"@timestamp": "2025-10-24T23:41:00Z", "message": "x" * 150, "host": {"name": "web01"}}) + "\n"
batch = (doc * 1000).encode()
hn = n // 4
def send_http(k):
    conn = http.client.HTTPSConnection("127.0.0.1", https, context=ctx)
    for _ in range(k):
        while True:
            conn.request("POST", "/api/v1/ingest", body=batch, headers={"Authorization": f"Bearer {token}"})
            r = conn.getresponse(); r.read()
            if r.status == 200: break
            time.sleep(0.05)
t0 = time.time()
ts = [threading.Thread(target=send_http, args=(hn // 1000 // c,)) for _ in range(c)]
[t.start() for t in ts]; [t.join() for t in ts]
dt = time.time() - t0
total = hn // 1000 // c * 1000 * c
print(f"https ndjson: {total} records in {dt:.2f}s = {total/dt:,.0f} records/s durable ({c} connections, 1000 lines per request)")
PY
echo "peak RSS: $(grep VmHWM /proc/$PID/status | awk '{print $2/1024 " MiB"}')"
