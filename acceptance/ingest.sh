#!/usr/bin/env bash
# Every acceptance check of the intake issue (`koban serve`), from a clean checkout.
#
#   acceptance/ingest.sh [FUZZ_SECONDS]     (default 600 per fuzz target)
#
# Builds what it needs, starts and stops what it starts (each step's script cleans up
# its own processes by PID), prints each figure; the last line sums them up. Exits 0
# only when every check holds.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FUZZ_SECONDS=${1:-600}
OUT=bench/out
mkdir -p "$OUT"
declare -a RESULTS
FAILED=0
check() { # name, status, figure
    RESULTS+=("$1: $3")
    if [[ $2 -eq 0 ]]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; FAILED=$((FAILED + 1)); fi
}
# Runs one step, keeps its log, shows its tail and returns its last line as the figure.
step() { # name, log, command...
    local name=$1 log=$OUT/$2
    shift 2
    echo "== $name"
    "$@" >"$log" 2>&1
    local rc=$?
    tail -n 12 "$log"
    check "$name" "$rc" "$(tail -n 1 "$log")"
}

echo "== build"
cargo build --release -p koban 2>&1 | tail -1

echo "== intake tests (listeners, WAL, store pipeline, parsers' coverage)"
cargo test --release -p koban-wal -p koban-server -p koban-store -p koban-parse 2>&1 \
    | tee "$OUT/ingest-tests.log" | grep -E '^test result: FAILED|panicked' || true
! grep -q 'test result: FAILED' "$OUT/ingest-tests.log"
check "tests" $? "$(grep -c '^test .* ok$' "$OUT/ingest-tests.log") tests ok"

step "shippers (rsyslog, syslog-ng, python elasticsearch)" ingest-shippers.log \
    bash acceptance/ingest/shippers.sh
step "coverage (every line of the shared logs ingested; raw share per source)" ingest-coverage.log \
    bash acceptance/ingest/coverage.sh
step "crash (1,000,000 events, 10 x kill -9)" ingest-crash.log \
    bash acceptance/ingest/crash.sh 1000000 10
step "overload (sender faster than storage)" ingest-overload.log \
    bash acceptance/ingest/overload.sh 60 1536
# A benchmark, not a check: it fails only if it cannot run. Its figures are quoted.
step "benchmark (syslog/TCP and HTTP NDJSON into durable storage)" ingest-bench.log \
    bash bench/ingest.sh

echo "== fuzzing, $FUZZ_SECONDS s per target"
FUZZ_TARGETS="syslog_framing parse_text parse_json wal_segment log_reader" \
    bash acceptance/fuzz.sh "$FUZZ_SECONDS" 2>&1 | tee "$OUT/ingest-fuzz.log" | grep -E '^(fuzz|regression) '
check "fuzz" "${PIPESTATUS[0]}" "$(grep -E '^fuzz ' "$OUT/ingest-fuzz.log" | paste -sd';')"

echo
echo "== summary"
printf '  %s\n' "${RESULTS[@]}"
echo "ingest acceptance: $(( ${#RESULTS[@]} - FAILED ))/${#RESULTS[@]} checks passed; $(grep -h '^acked' "$OUT/ingest-crash.log" | tail -1); $(grep -h '^bench summary' "$OUT/ingest-bench.log" | tail -1)"
exit $((FAILED > 0))
