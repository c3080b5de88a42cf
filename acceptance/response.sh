#!/usr/bin/env bash
# Acceptance checks of the response issue that exist so far:
#
#   acceptance/response.sh
#
#  1. the response tests (koban-respond: actions, signed commands, gate, lifecycle, nft
#     tables; koban-agent: the agent binary refuses forged/replayed commands; the
#     server's response API);
#  2. isolation and IP block in network namespaces: the agent runs in namespace
#     `kbn-agent` (10.77.0.2), the server in the root namespace (10.77.0.1), a third
#     address (10.77.0.3:9999) stands for the rest of the network. Isolation must leave
#     only the server reachable, and its verification must say so; release restores the
#     probe. The same for a block of 10.77.0.3.
#
#     A domain block (the namespace's own hosts file and resolver) the same way; a
#     file collected for forensics arrives identical.
#  3. the agent's spool: the server stops for a minute while the agent reads 100,000
#     lines from a file it tails; after the restart every line is stored exactly once.
#     Then 200 journal entries (systemd-cat; journald started when the machine has
#     none) arrive through the agent's journal shipping, each once.
#
#  4. playbooks: the provider's playbook (acceptance/response/contain.yml) for every
#     tenant; a line the agent ships matches acceptance/response/rules/dropper.yml. For
#     the semi-managed tenant the playbook's isolation waits; its viewer cannot approve
#     and its admin approves in chromium (acceptance/console/approve.mjs); the action
#     runs and is verified, the run ends and every step is in the incident timeline.
#     For a fully managed tenant (a second agent in the same namespace) it runs at once.
#
# Needs root (namespaces, nftables); installs nftables, chromium and playwright-core.
# Starts its own server, agent and listener, stops them by PID, removes the namespace.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ingest/lib.sh"
OUT="$ROOT/target/acceptance/response"
rm -rf "$OUT"
mkdir -p "$OUT"
NS=kbn-agent
cleanup() {
    stop_started
    ip netns del "$NS" 2>/dev/null || true
    ip link del kbn-host 2>/dev/null || true
    rm -rf "/etc/netns/$NS"
}
trap cleanup EXIT
FAILED=0
SUMMARY=()
check() {
    if [[ $2 -eq 0 ]]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; FAILED=1; fi
    SUMMARY+=("$1 $([[ $2 -eq 0 ]] && echo ok || echo FAILED)")
}
need() { command -v "$1" >/dev/null || apt-get install -y -q "$2" >/dev/null; }
need nft nftables
need ip iproute2
need jq jq
need curl curl

echo "== 1. tests"
set +e
(cd "$ROOT" && cargo test --release -q -p koban-respond 2>&1 &&
    cargo test --release -q -p koban-agent -- --nocapture 2>&1 &&
    cargo test --release -q -p koban-server --test respond --test playbooks 2>&1) >"$OUT/tests.log"
rc=$?
set -e
check tests $rc "$(grep -E '^test result' "$OUT/tests.log" | awk '{p += $4; f += $6} END {print p " passed, " f " failed"}'); $(grep -c '^forged\|^replayed\|^older\|^stale\|^misaddressed\|^tampered' "$OUT/tests.log" || true) kinds of bad command refused by the agent binary"

echo "== 2. isolation and IP block in network namespaces"
(cd "$ROOT" && cargo build --release -q -p koban -p koban-agent)
AGENT="$ROOT/target/release/koban-agent"
ip netns del "$NS" 2>/dev/null || true
ip link del kbn-host 2>/dev/null || true
# Inside the namespace /etc/hosts and /etc/resolv.conf are its own (ip netns exec
# bind-mounts /etc/netns/NAME/*): domain blocks never touch this machine's hosts file,
# and DNS fails at once instead of timing out.
mkdir -p "/etc/netns/$NS"
cp /etc/hosts "/etc/netns/$NS/hosts"
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"/etc/netns/$NS/resolv.conf"
# The journal the agent ships: journald runs here unless the machine has one.
if ! systemd-cat true 2>/dev/null; then
    /lib/systemd/systemd-journald >"$OUT/journald.log" 2>&1 &
    STARTED_PIDS+=($!)
    for _ in $(seq 50); do systemd-cat true 2>/dev/null && break; sleep 0.1; done
fi
ip netns add "$NS"
ip link add kbn-host type veth peer name kbn-agent0
ip link set kbn-agent0 netns "$NS"
ip addr add 10.77.0.1/24 dev kbn-host
ip addr add 10.77.0.3/24 dev kbn-host
ip link set kbn-host up
ip netns exec "$NS" ip addr add 10.77.0.2/24 dev kbn-agent0
ip netns exec "$NS" ip link set kbn-agent0 up
ip netns exec "$NS" ip link set lo up

# The rest of the network: a listener on the third address.
python3 -m http.server 9999 --bind 10.77.0.3 >"$OUT/probe-listener.log" 2>&1 &
STARTED_PIDS+=($!)
KOBAN_HTTPS=10.77.0.1:0 start_koban "$OUT"
PORT="${HTTPS_URL##*:}"
# The self-signed certificate names localhost: reach 10.77.0.1 under that name.
api() {
    curl -sS --fail-with-body --cacert "$CERT" --resolve "localhost:$PORT:10.77.0.1" \
        -H "Authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' \
        -X "$1" ${3:+-d "$3"} "https://localhost:$PORT$2"
}
# From inside the agent's namespace: 1 when the address answers a TCP connect.
probe() { ip netns exec "$NS" timeout 2 bash -c "echo >/dev/tcp/$1/$2" 2>/dev/null && echo 1 || echo 0; }
for _ in $(seq 50); do [[ "$(probe 10.77.0.3 9999)" == 1 ]] && break; sleep 0.1; done

api POST /api/v1/tenants '{"name":"acme","service":"fully_managed"}' >/dev/null
TOKEN="$(api POST /api/v1/agents/enrol-tokens '{"tenant":"acme"}' | jq -er .token)"
ip netns exec "$NS" "$AGENT" enrol --server "https://10.77.0.1:$PORT" --server-cert "$CERT" \
    --token "$TOKEN" --state "$OUT/agent-state" --hostname web-01 | tee "$OUT/enrol.txt"
# The token is spent.
set +e
ip netns exec "$NS" "$AGENT" enrol --server "https://10.77.0.1:$PORT" --server-cert "$CERT" \
    --token "$TOKEN" --state "$OUT/agent-state-2" --hostname again >"$OUT/enrol-again.txt" 2>&1
reuse=$?
set -e
AGENT_ID="$(jq -r .agent "$OUT/agent-state/agent.json")"
APPLOG="$OUT/app.log"
: >"$APPLOG"
ip netns exec "$NS" "$AGENT" run --state "$OUT/agent-state" --probe 10.77.0.3:9999 --tail "$APPLOG" \
    --journal --interval-ms 500 >"$OUT/agent.out" 2>"$OUT/agent.err" &
AGENT1_PID=$!
STARTED_PIDS+=($AGENT1_PID)

# act KIND_JSON: asks for an action on the agent; prints its id.
act() {
    api POST /api/v1/actions "$(jq -cn --arg a "$AGENT_ID" --argjson x "$1" '{tenant:"acme",agent:$a,action:$x}')" | jq -er .id
}
# settle ID: waits until the action leaves queued/sent; prints its state.
settle() {
    local s=""
    for _ in $(seq 120); do
        s="$(api GET "/api/v1/actions/$1" | jq -r .state)"
        [[ "$s" != queued && "$s" != sent ]] && break
        sleep 0.25
    done
    echo "$s"
}
undo() { api POST "/api/v1/actions/$1/undo" | jq -er .id; }

before="$(probe 10.77.0.3 9999)"
ISO="$(act '{"kind":"isolate_host"}')"
iso_state="$(settle "$ISO")"
iso_probe="$(probe 10.77.0.3 9999)"
iso_server="$(probe 10.77.0.1 "$PORT")"
api GET "/api/v1/actions/$ISO" >"$OUT/isolate.json"
iso_observed="$(jq -c .observed "$OUT/isolate.json")"
REL="$(undo "$ISO")"
rel_state="$(settle "$REL")"
orig_state="$(api GET "/api/v1/actions/$ISO" | jq -r .state)"
rel_probe="$(probe 10.77.0.3 9999)"
ok=1
[[ $before == 1 && $iso_state == verified && $iso_probe == 0 && $iso_server == 1 &&
    $rel_state == verified && $orig_state == undone && $rel_probe == 1 && $reuse -ne 0 ]] && ok=0
check isolation $ok "probe before $before; isolate: $iso_state, probe $iso_probe, server $iso_server, observed $iso_observed; release: $rel_state (isolation now $orig_state), probe $rel_probe; enrolment token reused: refused=$([[ $reuse -ne 0 ]] && echo yes || echo no)"

BLK="$(act '{"kind":"block_ip","ip":"10.77.0.3"}')"
blk_state="$(settle "$BLK")"
blk_probe="$(probe 10.77.0.3 9999)"
blk_server="$(probe 10.77.0.1 "$PORT")"
blk_detail="$(api GET "/api/v1/actions/$BLK" | jq -r .detail)"
UNB="$(undo "$BLK")"
unb_state="$(settle "$UNB")"
unb_probe="$(probe 10.77.0.3 9999)"
# Blocking the server's own address is refused by the agent, not carried out.
SRV="$(act '{"kind":"block_ip","ip":"10.77.0.0/24"}')"
srv_state="$(settle "$SRV")"
srv_server="$(probe 10.77.0.1 "$PORT")"
ok=1
[[ $blk_state == verified && $blk_probe == 0 && $blk_server == 1 && $unb_state == verified &&
    $unb_probe == 1 && $srv_state == failed && $srv_server == 1 ]] && ok=0
check ip-block $ok "block: $blk_state, probe $blk_probe, server $blk_server ($blk_detail); unblock: $unb_state, probe $unb_probe; blocking the server's network: $srv_state, server still $srv_server"

# A domain block: the namespace's resolver sends the domain nowhere; unblock undoes it.
resolves() { { ip netns exec "$NS" timeout 5 getent ahosts "$1" || true; } | awk '{print $1}' | sort -u | tr '\n' ' '; }
DOM="$(act '{"kind":"block_domain","domain":"evil.example"}')"
dom_state="$(settle "$DOM")"
dom_resolves="$(resolves evil.example)"
dom_www="$(resolves www.evil.example)"
UND="$(undo "$DOM")"
und_state="$(settle "$UND")"
und_resolves="$(resolves evil.example)"
ok=1
[[ $dom_state == verified && $dom_resolves == "0.0.0.0 :: " && $und_state == verified &&
    -z $und_resolves ]] && ok=0
check domain-block $ok "block: $dom_state, evil.example → ${dom_resolves:-nothing}, www → ${dom_www:-nothing}; unblock: $und_state, resolves to ${und_resolves:-nothing}"

# Forensics: a file collected from the host, kept on the server with its hash.
head -c 300000 /dev/urandom >"$OUT/suspicious.bin"
COL="$(act "$(jq -cn --arg p "$OUT/suspicious.bin" '{kind:"collect_files",paths:[$p]}')")"
col_state="$(settle "$COL")"
col_detail="$(api GET "/api/v1/actions/$COL" | jq -r .detail)"
curl -sS --fail --cacert "$CERT" --resolve "localhost:$PORT:10.77.0.1" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -o "$OUT/collected.bin" "https://localhost:$PORT/api/v1/evidence/$COL/0"
col_same=$([[ "$(sha256sum <"$OUT/suspicious.bin")" == "$(sha256sum <"$OUT/collected.bin")" ]] && echo yes || echo no)
ok=1
[[ $col_state == verified && $col_same == yes ]] && ok=0
check collect-files $ok "collect_files: $col_state ($col_detail); the downloaded copy is identical: $col_same"

# Semi-managed: the provider's request waits; nothing runs until approved.
api PUT /api/v1/tenants/acme/service '{"service":"semi_managed"}' >/dev/null
WAIT="$(act '{"kind":"isolate_host"}')"
sleep 1.5
wait_state="$(api GET "/api/v1/actions/$WAIT" | jq -r .state)"
wait_probe="$(probe 10.77.0.3 9999)"
ok=1
[[ $wait_state == awaiting_approval && $wait_probe == 1 ]] && ok=0
check semi-managed-waits $ok "provider's isolate on a semi-managed tenant: $wait_state after 1.5 s, probe still $wait_probe"
refused="$(grep -c 'refused a command' "$OUT/agent.err" || true)"

echo "== 3. the agent's spool across a server outage"
# lines FROM TO: JSON log lines numbered FROM..TO-1, appended to the tailed file.
lines() { python3 -c "
import json,sys
with open(sys.argv[1], 'a') as f:
    for i in range(int(sys.argv[2]), int(sys.argv[3])):
        f.write(json.dumps({'n': i, 'host': 'web-01', 'message': f'spool test line {i}'}) + '\n')
" "$APPLOG" "$1" "$2"; }
total() { api POST /api/v1/search '{"tenant":"acme","text":"spool","limit":1}' | jq -r .total; }
lines 0 50000
for _ in $(seq 240); do [[ "$(total)" -ge 50000 ]] && break; sleep 0.5; done
shipped_before="$(total)"
kill -TERM "$KOBAN_PID"
wait "$KOBAN_PID" 2>/dev/null || true
down_at=$(date +%s)
# The other half is written while the server is away, in ten bursts.
for k in $(seq 0 9); do lines $((50000 + k * 5000)) $((55000 + k * 5000)); sleep 5; done
sleep $((60 - ($(date +%s) - down_at)))
spooled="$(jq -s 'length' <(cat "$OUT"/agent-state/spool/*.jsonl 2>/dev/null) 2>/dev/null || echo '?')"
outage=$(($(date +%s) - down_at))
KOBAN_HTTPS="10.77.0.1:$PORT" start_koban "$OUT"
for _ in $(seq 480); do [[ "$(total)" -ge 100000 ]] && break; sleep 0.5; done
sleep 3
stored="$(total)"
top="$(curl -sS --cacert "$CERT" --resolve "localhost:$PORT:10.77.0.1" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'content-type: application/json' -d '{"tenant":"acme","query":"* | stats count() by n | sort -count | head 1"}' \
    "https://localhost:$PORT/api/v1/hunt" | jq -sr '[.[] | select(.rows) | .rows[]][0][-1]')"
distinct="$(api POST /api/v1/search '{"tenant":"acme","limit":0,"count_by":"n"}' | jq '.groups | length')"
ok=1
[[ $stored == 100000 && $top == 1 && $distinct == 100000 ]] && ok=0
check spool $ok "100000 lines, server down ${outage}s (stored before the stop: $shipped_before; spool files held $spooled records, acked ones included until their segment is dropped); after the restart: $stored stored, $distinct distinct, most copies of one line: $top"

echo "== 3b. the journal"
# 200 entries through journald; the agent reads them with journalctl after its cursor.
for i in $(seq 200); do echo "kbnjournalprobe entry $i"; done | systemd-cat -t koban-acceptance || true
jtotal() { api POST /api/v1/search '{"tenant":"acme","text":"kbnjournalprobe","limit":1}' | jq -r .total; }
for _ in $(seq 120); do [[ "$(jtotal)" -ge 200 ]] && break; sleep 0.5; done
sleep 2
jstored="$(jtotal)"
ok=1
[[ $jstored == 200 ]] && ok=0
check journal $ok "200 journal entries written (systemd-cat) → $jstored stored from the agent's journal shipping"

echo "== 4. playbooks: approval in the browser (semi-managed), at once (fully managed)"
PACKAGES=(chromium fonts-noto-cjk)
if [[ ! -x /usr/bin/chromium ]] || ! fc-list | grep -q 'Noto Sans CJK'; then
    apt-get install -y -q "${PACKAGES[@]}" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q "${PACKAGES[@]}" >/dev/null; }
fi
if [[ ! -d $ROOT/acceptance/console/node_modules/playwright-core ]]; then
    (cd "$ROOT/acceptance/console" && npm install --no-audit --no-fund --silent)
fi
kill -TERM "$KOBAN_PID"
wait "$KOBAN_PID" 2>/dev/null || true
KOBAN_HTTPS="10.77.0.1:$PORT" KOBAN_EXTRA_CONFIG="[detection]
rules = [\"$ROOT/acceptance/response/rules\"]
rules_poll_secs = 0" start_koban "$OUT"
as_user() { # USER:PASSWORD METHOD PATH [BODY]
    curl -sS --cacert "$CERT" --resolve "localhost:$PORT:10.77.0.1" -u "$1" \
        -H 'content-type: application/json' -X "$2" ${4:+-d "$4"} "https://localhost:$PORT$3"
}
api POST /api/v1/users '{"name":"cat","password":"acme-admin-password","role":"customer_admin","tenant":"acme"}' >/dev/null
api POST /api/v1/users '{"name":"vic","password":"acme-viewer-password","role":"customer_viewer","tenant":"acme"}' >/dev/null
# The provider's isolate from step 2 is still waiting: the customer says no to it.
as_user cat:acme-admin-password POST "/api/v1/actions/$WAIT/reject" >/dev/null
bad_errors="$(curl -sS --cacert "$CERT" --resolve "localhost:$PORT:10.77.0.1" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'content-type: application/json' -d "$(jq -cn '{tenant:"*",yaml:"id: Bad\ntrigger: {on: alerts, needs: [hostname]}\nsteps:\n  - run: isolate_host\n    ttl: forever\n  - if: nothere.verified\n    then: []\n"}')" \
    "https://localhost:$PORT/api/v1/playbooks" | jq -r '.errors | length')"
api POST /api/v1/playbooks "$(jq -cn --rawfile y "$ROOT/acceptance/response/contain.yml" '{tenant:"*",yaml:$y}')" >/dev/null
sleep 3 # the first tick: playbooks start from the newest alert on
# sudo_line HOST: the stand-in for an attacker's tool, as the host's auth log has it.
sudo_line() { echo "$(date '+%b %e %H:%M:%S') $1 sudo:  mallory : TTY=pts/0 ; PWD=/tmp ; USER=root ; COMMAND=/tmp/.x/koban-dropper --encrypt /srv"; }
# playbook_action TENANT: the id of the action the playbook asked for there (waits).
playbook_action() {
    local id=""
    for _ in $(seq 240); do
        id="$(api GET "/api/v1/actions?tenant=$1" | jq -r '[.actions[] | select(.requested_by == "playbook:contain-execution")][0].id // empty')"
        [[ -n $id ]] && break
        sleep 0.25
    done
    echo "$id"
}
t0=$(date +%s.%N)
sudo_line web-01 >>"$APPLOG"
PB="$(playbook_action acme)"
pb_asked=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
sleep 3
pb_wait_state="$(api GET "/api/v1/actions/$PB" | jq -r .state)"
pb_wait_probe="$(probe 10.77.0.3 9999)"
set +e
KOBAN_USERS='{"admin":{"name":"cat","password":"acme-admin-password"},"viewer":{"name":"vic","password":"acme-viewer-password"}}' \
    node "$ROOT/acceptance/console/approve.mjs" "https://10.77.0.1:$PORT" "$OUT/screenshots" "$PB" >"$OUT/browser.log" 2>&1
browser=$?
set -e
sed 's/^/    /' "$OUT/browser.log"
pb_state="$(api GET "/api/v1/actions/$PB" | jq -r .state)"
pb_probe="$(probe 10.77.0.3 9999)"
pb_server="$(probe 10.77.0.1 "$PORT")"
sleep 3 # the run goes on, and its steps are copied, on the next tick
run_json="$(api GET '/api/v1/playbook-runs?tenant=acme' | jq -c '.runs[0]')"
incident="$(api GET "/api/v1/actions/$PB" | jq -r .incident)"
timeline="$(api GET "/api/v1/incidents/$incident" | jq '[.log[] | select(.kind == "response")] | length')"
audited="$(api GET '/api/v1/audit?tenant=acme&limit=1000' | jq "[.audit[] | select(.role == \"response\" and (.object == \"action $PB\" or (.object | startswith(\"playbook\"))))] | length")"
PBU="$(undo "$PB")"
pbu_state="$(settle "$PBU")"
pbu_probe="$(probe 10.77.0.3 9999)"
ok=1
[[ $bad_errors -ge 4 && $pb_wait_state == awaiting_approval && $pb_wait_probe == 1 && $browser -eq 0 &&
    $pb_state == verified && $pb_probe == 0 && $pb_server == 1 &&
    $(jq -r .state <<<"$run_json") == done && $(jq -r .outcomes.isolate <<<"$run_json") == verified &&
    $timeline -ge 8 && $audited -ge $timeline && $pbu_state == verified && $pbu_probe == 1 ]] && ok=0
check playbook-semi-managed $ok "a broken playbook refused with $bad_errors errors at once; alert → playbook asked for action $PB in ${pb_asked}s; after 3 s it is $pb_wait_state, probe still $pb_wait_probe; viewer refused and admin approved in chromium (exit $browser); action $pb_state, probe $pb_probe, server $pb_server; run $(jq -c '{state, outcomes}' <<<"$run_json"); incident $incident timeline holds $timeline response steps, audit $audited; undo $pbu_state, probe $pbu_probe"

# Fully managed: a second tenant's agent on the same namespace (the first one stops).
kill -TERM "$AGENT1_PID" 2>/dev/null || true
wait "$AGENT1_PID" 2>/dev/null || true
api POST /api/v1/tenants '{"name":"globex","service":"fully_managed"}' >/dev/null
TOKEN2="$(api POST /api/v1/agents/enrol-tokens '{"tenant":"globex"}' | jq -er .token)"
ip netns exec "$NS" "$AGENT" enrol --server "https://10.77.0.1:$PORT" --server-cert "$CERT" \
    --token "$TOKEN2" --state "$OUT/agent2-state" --hostname db-01 >"$OUT/enrol2.txt"
APPLOG2="$OUT/app2.log"
: >"$APPLOG2"
ip netns exec "$NS" "$AGENT" run --state "$OUT/agent2-state" --probe 10.77.0.3:9999 --tail "$APPLOG2" \
    --interval-ms 500 >"$OUT/agent2.out" 2>"$OUT/agent2.err" &
STARTED_PIDS+=($!)
sleep 2
t0=$(date +%s.%N)
sudo_line db-01 >>"$APPLOG2"
FM="$(playbook_action globex)"
fm_state="$(settle "$FM")"
fm_took=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
fm_probe="$(probe 10.77.0.3 9999)"
fm_server="$(probe 10.77.0.1 "$PORT")"
fm_steps="$(api GET "/api/v1/actions/$FM" | jq -r '[.steps[].step] | join(" → ")')"
FMU="$(undo "$FM")"
fmu_state="$(settle "$FMU")"
fmu_probe="$(probe 10.77.0.3 9999)"
ok=1
[[ $fm_state == verified && $fm_probe == 0 && $fm_server == 1 && $fm_steps != *awaiting* &&
    $fmu_state == verified && $fmu_probe == 1 ]] && ok=0
check playbook-fully-managed $ok "alert → isolated and verified in ${fm_took}s with no approval ($fm_steps); probe $fm_probe, server $fm_server; undo $fmu_state, probe $fmu_probe"

echo
echo "== summary"
printf '  %s\n' "${SUMMARY[@]}"
echo "response acceptance: $(printf '%s\n' "${SUMMARY[@]}" | grep -c ' ok$')/${#SUMMARY[@]} checks passed; agent refused $refused live commands"
exit $FAILED
