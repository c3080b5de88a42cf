#!/usr/bin/env bash
# Crash test (issue 3): EVENTS events with unique ids, half over HTTPS NDJSON (batches of
# 500), half over syslog/TCP (chunks of 2000 lines per connection), while kill -9 hits
# `koban serve` KILLS times at random points and it is restarted on the same data dir.
# At the end (backlog 0) every stored id is read back (count_by per block of 100,000
# ids), once more after a final kill -9 and restart; nothing may change. Exit 0 only when
# every acknowledged event is stored exactly once (lost 0, duplicates 0).
# What counts as acknowledged is defined in acceptance/ingest/harness.py.
#
#   acceptance/ingest/crash.sh [EVENTS] [KILLS] [SEED]     (defaults 1000000 10 random)
#   SEGMENT_MB=1 (env) rotates WAL segments often, so kills also land in rotations
set -euo pipefail
EVENTS=${1:-1000000}
KILLS=${2:-10}
SEED=${3:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cargo build --release -q -p koban --manifest-path "$ROOT/Cargo.toml"
WORK=$(mktemp -d /tmp/koban-crash.XXXXXX)
PY=
cleanup() {
    if [[ -n $PY ]]; then kill -TERM "$PY" 2>/dev/null || true; wait "$PY" 2>/dev/null || true; fi
    # the driver's server, if it outlived the driver (its PID, written by the driver)
    if [[ -f $WORK/server.pid ]]; then kill -KILL "$(cat "$WORK/server.pid")" 2>/dev/null || true; fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
python3 "$HERE/crash.py" "$ROOT/target/release/koban" "$WORK" "$EVENTS" "$KILLS" $SEED &
PY=$!
wait "$PY"
