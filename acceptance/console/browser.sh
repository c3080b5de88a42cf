#!/usr/bin/env bash
# The console's browser test: a replayed attack in one customer's tenant, then Debian
# chromium (driven by playwright-core) logs in as the provider analyst (sees the
# incident, changes its state, comments), as that customer's viewer (sees the comment,
# is refused a state change) and as another customer (sees none of it), saving a
# screenshot of every page under WORKDIR/screenshots.
#
#   acceptance/console/browser.sh [WORKDIR]      (default target/acceptance/browser)
#
# Installs chromium (apt) and playwright-core (npm) when missing; starts its own
# `koban serve` on loopback and stops it by PID. Run by .ci/run and acceptance/console.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../ingest/lib.sh"
W=${1:-$ROOT/target/acceptance/browser}
rm -rf "$W"
mkdir -p "$W"
trap stop_started EXIT
api() {
    curl -sS --fail-with-body --cacert "$CERT" -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'content-type: application/json' -X "$1" ${3:+-d "$3"} "$HTTPS_URL$2"
}

# Japanese pages need a CJK font on the machine that renders them (a user's desktop
# has one; a fresh server does not).
PACKAGES=(chromium jq fonts-noto-cjk)
if [[ ! -x /usr/bin/chromium ]] || ! command -v jq >/dev/null || ! fc-list | grep -q 'Noto Sans CJK'; then
    log "installing ${PACKAGES[*]} (apt)…"
    apt-get install -y -q "${PACKAGES[@]}" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q "${PACKAGES[@]}" >/dev/null; }
fi
if [[ ! -d $ROOT/acceptance/console/node_modules/playwright-core ]]; then
    log "installing playwright-core (npm)…"
    (cd "$ROOT/acceptance/console" && npm install --no-audit --no-fund --silent)
fi

build_koban
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
KOBAN_USERS="$USERS" node "$ROOT/acceptance/console/browser.mjs" "$HTTPS_URL" "$W/screenshots"
