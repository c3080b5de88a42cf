#!/usr/bin/env bash
# Whole-process ingest benchmark (issue 3): syslog/TCP and HTTPS NDJSON events/s into a
# running `koban serve` with parsing and the event store on (fsync = always), on this
# machine, and its peak RSS. Two rates per transport, honestly apart:
#   (a) accepted durable in the WAL — what senders see acknowledged;
#   (b) parsed and indexed into the event store — until the WAL backlog is 0.
# Lines are real: loghub OpenSSH/Linux/Apache syslog lines and Suricata eve.json alerts,
# read from ../shared/data (read-only; nothing is copied into the repo).
# Backpressure bounds are raised so (a) is not throttled by (b). Not a timed test.
#
#   bench/ingest.sh [SYSLOG_LINES] [HTTP_EVENTS] [CONNECTIONS]   (defaults 3000000 400000 4)
set -euo pipefail
NS=${1:-3000000}
NH=${2:-400000}
C=${3:-4}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DATA=${KOBAN_SHARED_DATA:-$ROOT/../shared/data}
cargo build --release -q -p koban --manifest-path "$ROOT/Cargo.toml"
WORK=$(mktemp -d /tmp/koban-ingest-bench.XXXXXX)
PY=
cleanup() {
    if [[ -n $PY ]]; then kill -TERM "$PY" 2>/dev/null || true; wait "$PY" 2>/dev/null || true; fi
    if [[ -f $WORK/server.pid ]]; then kill -KILL "$(cat "$WORK/server.pid")" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
python3 "$HERE/ingest.py" "$ROOT/target/release/koban" "$WORK" "$DATA" "$NS" "$NH" "$C" &
PY=$!
wait "$PY"
