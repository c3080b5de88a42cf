#!/usr/bin/env bash
# Every acceptance check of the console issue:
#
#   acceptance/console.sh [ALERTS]        (default 100000 alerts for the load test)
#
#  1. the identity, access, audit and console tests (cargo test), including the
#     cross-tenant sweep (every API route and console page × every customer role);
#  2. the browser test (console/browser.sh, also run by .ci/run): provider analyst, the
#     customer's viewer, another customer in Debian chromium — screenshots of every page;
#  3. render latency of the alert queue, incident page and dashboard with ALERTS alerts
#     stored (p50/p99; target < 300 ms).
#
# Starts its own servers on loopback and stops them by PID.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ingest/lib.sh"
ALERTS=${1:-100000}
OUT="$ROOT/target/acceptance/console"
rm -rf "$OUT"
mkdir -p "$OUT"
trap stop_started EXIT
FAILED=0
SUMMARY=()
check() {
    if [[ $2 -eq 0 ]]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; FAILED=1; fi
    SUMMARY+=("$1 $([[ $2 -eq 0 ]] && echo ok || echo FAILED)")
}
api() {
    curl -sS --fail-with-body --cacert "$CERT" -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'content-type: application/json' -X "$1" ${3:+-d "$3"} "$HTTPS_URL$2"
}

echo "== 1. tests"
set +e
(cd "$ROOT" && cargo test --release -q -p koban-server -- --nocapture 2>&1) >"$OUT/tests.log"
rc=$?
set -e
sweep="$(grep -m1 '^cross-tenant sweep' "$OUT/tests.log" || echo 'cross-tenant sweep: not run')"
check tests $rc "$(grep -E '^test result' "$OUT/tests.log" | awk '{p += $4; f += $6} END {print p " passed, " f " failed"}')"
grep -q ', 0 not refused' <<<"$sweep" && ok=0 || ok=1
check sweep "$ok" "$sweep"
build_koban

echo "== 2. browser"
set +e
"$ROOT/acceptance/console/browser.sh" "$OUT/browser" | tee "$OUT/browser.txt"
rc=${PIPESTATUS[0]}
set -e
check browser "$rc" "$(grep -c '^ok ' "$OUT/browser.txt") steps passed; $(tail -n1 "$OUT/browser.txt")"
W="$OUT/load"
mkdir -p "$W"
KOBAN_EXTRA_CONFIG="[detection]
rules = [\"$DATA/sigma/rules\"]
rules_poll_secs = 0" start_koban "$W"
api POST /api/v1/users '{"name":"pat","password":"provider-analyst-password","role":"provider_analyst"}' >/dev/null

echo "== 3. render latency with $ALERTS alerts"
PYTHONPATH="$ROOT/acceptance/alerts" python3 "$ROOT/acceptance/console/load.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN" pat provider-analyst-password "$ALERTS" 50 2>&1 | tee "$OUT/load.txt"
worst="$(sed -n 's/^render worst p99: \([0-9.]*\) ms/\1/p' "$OUT/load.txt")"
ok=$(awk -v w="${worst:-99999}" 'BEGIN {print (w < 300) ? 0 : 1}')
check render "$ok" "$(grep '^render /alerts:\|^render /incidents/' "$OUT/load.txt" | paste -sd';'); worst p99 ${worst:-?} ms (target < 300 ms)"
stop_started

echo "console acceptance: $(printf '%s; ' "${SUMMARY[@]}")${sweep#cross-tenant sweep: }; worst p99 ${worst:-?} ms"
exit "$FAILED"
