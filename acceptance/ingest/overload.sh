#!/usr/bin/env bash
# Overload test (issue 3): senders faster than the event store (HTTPS NDJSON from 4
# connections at full speed plus syslog/TCP from 2) for SECONDS against `koban serve`
# with its default backpressure. Prints the server's peak RSS (VmHWM, sampled every
# 100 ms, until the backlog drains), the 429/503 answers, and then reads back every
# stored id (count_by per block of 100,000 ids).
# Exit 0 only when no acknowledged event is missing and peak RSS <= BOUND_MB.
# The bound: tantivy's writer budget (256 MiB) + the pipeline's read batch (16 MiB) +
# up to 16 in-flight request bodies (32 MiB each) + runtime/parsers ≈ 1 GiB; 1536 MiB
# leaves headroom without hiding an unbounded queue.
#
#   acceptance/ingest/overload.sh [SECONDS] [BOUND_MB]       (defaults 60 1536)
set -euo pipefail
SECS=${1:-60}
BOUND=${2:-1536}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cargo build --release -q -p koban --manifest-path "$ROOT/Cargo.toml"
WORK=$(mktemp -d /tmp/koban-overload.XXXXXX)
PY=
cleanup() {
    if [[ -n $PY ]]; then kill -TERM "$PY" 2>/dev/null || true; wait "$PY" 2>/dev/null || true; fi
    if [[ -f $WORK/server.pid ]]; then kill -KILL "$(cat "$WORK/server.pid")" 2>/dev/null || true; fi
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
python3 "$HERE/overload.py" "$ROOT/target/release/koban" "$WORK" "$SECS" "$BOUND" &
PY=$!
wait "$PY"
