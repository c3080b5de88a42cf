#!/usr/bin/env bash
# Every acceptance check of the hunting issue:
#
#   acceptance/hunting.sh [EVENTS] [FUZZ_SECONDS]     (defaults 20000000 and 600)
#
#  1. the tests: the query language (queries and their meaning, syntax errors each with
#     its position), the store's conditions and scans, hunting in process;
#  2. retro-hunt = hunt: the attack data replayed into `koban serve` (detecting live),
#     then a retro-hunt of every enabled rule over the stored events; its detections per
#     (file, rule) must equal `koban hunt` over the files; new alerts only where live
#     detection found nothing, and a second retro-hunt alerts nothing;
#  3. the benchmark: EVENTS events (the Mordor JSON and EVTX samples replicated with
#     shifted times and hosts) in an embedded store, then latency of a needle search,
#     `stats count() by` over everything, a 24-hour timeline of one host (target for the
#     needle: < 1 s), and the store's size on disk per million events. The loaded store
#     (HUNT_STORE, default target/acceptance/hunting/store; ~630 MiB per million events)
#     is kept and reused by the next run;
#  4. the query-language fuzz target for FUZZ_SECONDS.
#
# Starts its own servers on loopback and stops them by PID.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ingest/lib.sh"
EVENTS=${1:-20000000}
FUZZ_SECONDS=${2:-600}
OUT="$ROOT/target/acceptance/hunting"
STORE=${HUNT_STORE:-$OUT/store}
mkdir -p "$OUT"
rm -rf "$OUT/replay"
trap stop_started EXIT
FAILED=0
SUMMARY=()
check() {
    if [[ $2 -eq 0 ]]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; FAILED=1; fi
    SUMMARY+=("$1 $([[ $2 -eq 0 ]] && echo ok || echo FAILED)")
}

echo "== 1. tests"
set +e
(cd "$ROOT" && cargo test --release -q -p koban-hunt -p koban-store 2>&1 &&
    cargo test --release -q -p koban-server --test hunting --test tenancy 2>&1) >"$OUT/tests.log"
rc=$?
set -e
# Rows of the ERRORS table: (query, expected position, words of the message).
errors_with_position="$(awk '/^const ERRORS/ {on=1; next} on && /^];/ {on=0} on && /^    \(/ {n++} END {print n+0}' "$ROOT/crates/koban-hunt/tests/parse.rs")"
check tests $rc "$(grep -E '^test result' "$OUT/tests.log" | awk '{p += $4; f += $6} END {print p " passed, " f " failed"}'); syntax-error cases with a position: $errors_with_position"
build_koban

echo "== 2. retro-hunt vs hunt"
W="$OUT/replay"
mkdir -p "$W"
cd "$DATA"
mapfile -t FILES < <({ find windows/evtx/evtx_attack_samples -type f -name '*.evtx'
                       find windows/mordor_compound/LSASS_campaign_01 -type f
                       find windows/mordor_json -type f -name '*.zip'; } | LC_ALL=C sort)
cd "$ROOT"
KOBAN_EXTRA_CONFIG="[detection]
rules = [\"$DATA/sigma/rules\"]
rules_poll_secs = 0" start_koban "$W"
"$KOBAN" tenant add replay --data-dir "$KOBAN_DATA" >/dev/null
python3 "$ROOT/acceptance/alerts/replay.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN" "$DATA" "$W/out" "${FILES[@]}"
(cd "$DATA" && "$KOBAN" hunt --rules sigma/rules --format jsonl --output "$W/hunt.jsonl" "${FILES[@]}" 2>"$W/hunt.err")
python3 "$ROOT/acceptance/alerts/wait.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN"
python3 "$ROOT/acceptance/hunting/retro_compare.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN" "$W/out" "$W/hunt.jsonl" | tee "$W/retro.txt" || true
grep -q '^retro-hunt vs hunt: identical' "$W/retro.txt" && ok=0 || ok=1
check retro-hunt "$ok" "$(grep '^retro-hunt:' "$W/retro.txt"); $(grep '^retro-hunt vs hunt' "$W/retro.txt")"
grep -q '^never twice: ok' "$W/retro.txt" && ok=0 || ok=1
check never-twice "$ok" "$(grep '^never twice' "$W/retro.txt")"
# A streamed hunt over the same data, through the API, as an analyst would run it.
curl -sS --fail-with-body --cacert "$CERT" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' \
    -d '{"tenant":"replay","query":"EventID=4688 | top 5 NewProcessName"}' "$HTTPS_URL/api/v1/hunt" >"$W/hunt-api.ndjson"
rows="$(jq -s '[.[] | .rows // empty | length] | add // 0' "$W/hunt-api.ndjson")"
[[ $rows -gt 0 ]] && ok=0 || ok=1
check hunt-api "$ok" "POST /api/v1/hunt streamed $(wc -l <"$W/hunt-api.ndjson") lines, $rows rows of 'EventID=4688 | top 5 NewProcessName'"
code="$(curl -sS -o "$W/bad-query.json" -w '%{http_code}' --cacert "$CERT" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'content-type: application/json' -d '{"tenant":"replay","query":"EventID=4625 | stats count() by"}' "$HTTPS_URL/api/v1/hunt")"
[[ $code == 400 ]] && jq -e '.position' "$W/bad-query.json" >/dev/null && ok=0 || ok=1
check syntax-error-api "$ok" "HTTP $code: $(jq -r .error "$W/bad-query.json" 2>/dev/null)"
stop_started

echo "== 3. benchmark over $EVENTS stored events"
(cd "$ROOT" && cargo build --release -q -p koban-server --example hunt_bench)
set +e
"$ROOT/target/release/examples/hunt_bench" "$DATA" "$STORE" "$EVENTS" 5 2>"$OUT/bench.err" | tee "$OUT/bench.txt"
rc=${PIPESTATUS[0]}
set -e
needle="$(sed -n 's/^query needle[^:]*: best \([0-9.]*\) ms.*/\1/p' "$OUT/bench.txt")"
ok=$(awk -v n="${needle:-99999}" -v r="$rc" 'BEGIN {print (r == 0 && n < 1000) ? 0 : 1}')
check bench "$ok" "$(grep '^store:' "$OUT/bench.txt" | tail -n1); $(grep '^query' "$OUT/bench.txt" | sed 's/^query //' | paste -sd';')"

echo "== 4. fuzzing the query language for ${FUZZ_SECONDS}s"
set +e
FUZZ_TARGETS=hunt_query "$ROOT/acceptance/fuzz.sh" "$FUZZ_SECONDS" 2>&1 | tee "$OUT/fuzz.txt"
rc=${PIPESTATUS[0]}
set -e
check fuzz "$rc" "$(grep -E 'hunt_query' "$OUT/fuzz.txt" | tail -n1)"

echo "hunting acceptance: $(printf '%s; ' "${SUMMARY[@]}")needle ${needle:-?} ms; $(grep '^store:' "$OUT/bench.txt" | tail -n1 | sed 's/^store: //')"
exit "$FAILED"
