#!/usr/bin/env bash
# Every acceptance check of the console issue:
#
#   acceptance/console.sh [ALERTS]        (default 100000 alerts for the load test)
#
#  1. the identity, access, audit and console tests (cargo test), including the
#     cross-tenant sweep (every API route and console page × every customer role);
#  2. the browser test in Debian chromium (playwright-core): provider analyst, the
#     customer's viewer, another customer — screenshots of every page;
#  3. render latency of the alert queue, incident page and dashboard with ALERTS alerts
#     stored (p50/p99; target < 300 ms).
#
# Installs chromium (apt) and playwright-core (npm) when missing; starts its own
# servers on loopback and stops them by PID.
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

if [[ ! -x /usr/bin/chromium ]]; then
    log "installing chromium (apt)…"
    apt-get install -y -q chromium >/dev/null
fi
if [[ ! -d $ROOT/acceptance/console/node_modules/playwright-core ]]; then
    log "installing playwright-core (npm)…"
    (cd "$ROOT/acceptance/console" && npm install --no-audit --no-fund --silent)
fi

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
W="$OUT/browser"
mkdir -p "$W"
KOBAN_EXTRA_CONFIG="[detection]
rules = [\"$DATA/sigma/rules\"]
rules_poll_secs = 0" start_koban "$W"
api POST /api/v1/tenants '{"name":"acme","service":"semi_managed"}' >/dev/null
api POST /api/v1/tenants '{"name":"globex"}' >/dev/null
USERS='{"tenant":"acme",
 "admin":{"name":"ada","password":"provider-admin-password"},
 "analyst":{"name":"pat","password":"provider-analyst-password"},
 "viewer":{"name":"vic","password":"acme-viewer-password"},
 "other":{"name":"gus","password":"globex-viewer-password"}}'
api POST /api/v1/users '{"name":"ada","password":"provider-admin-password","role":"provider_admin"}' >/dev/null
api POST /api/v1/users '{"name":"pat","password":"provider-analyst-password","role":"provider_analyst"}' >/dev/null
api POST /api/v1/users '{"name":"vic","password":"acme-viewer-password","role":"customer_viewer","tenant":"acme"}' >/dev/null
api POST /api/v1/users '{"name":"gus","password":"globex-viewer-password","role":"customer_viewer","tenant":"globex"}' >/dev/null
# The attack: the LSASS credential-dumping campaign (Mordor) into acme.
TOKEN="$(curl -sS --cacert "$CERT" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' \
    -d '{"tenant":"acme","source":"winlogbeat"}' "$HTTPS_URL/api/v1/tokens" | jq -r .token)"
python3 - "$DATA/windows/mordor_compound/LSASS_campaign_01/metasploit_logonpasswords_lsass_memory_dump.zip" "$HTTPS_URL" "$CERT" "$TOKEN" <<'PY'
import ssl, sys, urllib.request, zipfile
path, url, cert, token = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=cert)
data = zipfile.ZipFile(path).read(zipfile.ZipFile(path).infolist()[0])
start = 0
while start < len(data):
    end = data.rfind(b"\n", start, start + (8 << 20)) + 1 or len(data)
    req = urllib.request.Request(url + "/api/v1/ingest", data=data[start:end], method="POST",
                                 headers={"Authorization": f"Bearer {token}"})
    urllib.request.urlopen(req, context=ctx).read()
    start = end
PY
python3 "$ROOT/acceptance/alerts/wait.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN"
log "acme: $(api GET '/api/v1/detections/summary?tenant=acme' | jq -c '{alerts, incidents}')"
set +e
KOBAN_USERS="$USERS" node "$ROOT/acceptance/console/browser.mjs" "$HTTPS_URL" "$OUT/screenshots" | tee "$W/browser.txt"
rc=${PIPESTATUS[0]}
set -e
check browser "$rc" "$(grep -c '^ok ' "$W/browser.txt") steps passed; $(tail -n1 "$W/browser.txt")"

echo "== 3. render latency with $ALERTS alerts"
PYTHONPATH="$ROOT/acceptance/alerts" python3 "$ROOT/acceptance/console/load.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN" pat provider-analyst-password "$ALERTS" 50 2>&1 | tee "$OUT/load.txt"
worst="$(sed -n 's/^render worst p99: \([0-9.]*\) ms/\1/p' "$OUT/load.txt")"
ok=$(awk -v w="${worst:-99999}" 'BEGIN {print (w < 300) ? 0 : 1}')
check render "$ok" "$(grep '^render /alerts:\|^render /incidents/' "$OUT/load.txt" | paste -sd';'); worst p99 ${worst:-?} ms (target < 300 ms)"
stop_started

echo "console acceptance: $(printf '%s; ' "${SUMMARY[@]}")${sweep#cross-tenant sweep: }; worst p99 ${worst:-?} ms"
exit "$FAILED"
