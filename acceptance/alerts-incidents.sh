#!/usr/bin/env bash
# Every acceptance check of the streaming detection / alerts / incidents issue:
#
#   acceptance/alerts-incidents.sh
#
#  1. the detection and case tests (cargo test);
#  2. replay through the HTTP ingest of evtx_attack_samples, mordor_compound/
#     LSASS_campaign_01 and all of mordor_json: raw detections, alerts after dedup,
#     incidents after grouping (target: >= 10x fewer incidents than detections), and
#     score.py over the stored alerts against `koban hunt` over the same files (same
#     technique recall);
#  3. the streaming detections equal the hunt's, per (file, rule);
#  4. a correlation (>= 10 failed logons for one user from one address in 5 minutes,
#     then a success) fires with kill -9 and a restart between its halves;
#  5. kill -9 (4 times) while detection works through the replay: afterwards the same
#     detections, alerts and incidents as the clean run, and a case changed between
#     the kills is intact;
#  6. benchmark: the streaming stage's events/s on one core.
#
# Starts its own servers on loopback (ports chosen by the kernel) and stops them by PID.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ingest/lib.sh"
OUT="$ROOT/target/acceptance/alerts"
rm -rf "$OUT"
mkdir -p "$OUT"
trap stop_started EXIT
[[ -d $DATA/windows ]] || die "no shared data at $DATA"

FAILED=0
SUMMARY=()
check() { # check NAME STATUS FIGURE
    if [[ $2 -eq 0 ]]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; FAILED=1; fi
    SUMMARY+=("$1 $([[ $2 -eq 0 ]] && echo ok || echo FAILED)")
}
api() { # api METHOD PATH [JSON]
    curl -sS --fail-with-body --cacert "$CERT" -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'content-type: application/json' -X "$1" ${3:+-d "$3"} "$HTTPS_URL$2"
}
DETECTION="[detection]
rules = [\"$DATA/sigma/rules\"]
rules_poll_secs = 0"

echo "== 1. tests"
set +e
(cd "$ROOT" && cargo test --release -q -p koban-detect -p koban-server 2>&1) >"$OUT/tests.log"
rc=$?
set -e
check tests $rc "$(grep -E '^test result' "$OUT/tests.log" | awk '{p += $4; f += $6} END {print p " passed, " f " failed"}')"
build_koban
(cd "$ROOT" && cargo build --release -q -p koban-server --example detect_bench)

cd "$DATA"
mapfile -t FILES < <({ find windows/evtx/evtx_attack_samples -type f -name '*.evtx'
                       find windows/mordor_compound/LSASS_campaign_01 -type f
                       find windows/mordor_json -type f -name '*.zip'; } | LC_ALL=C sort)
cd "$ROOT"
echo "== 2. replay of ${#FILES[@]} files through HTTPS"
W1="$OUT/clean"
mkdir -p "$W1"
KOBAN_EXTRA_CONFIG="$DETECTION" start_koban "$W1"
"$KOBAN" tenant add replay --data-dir "$KOBAN_DATA" >/dev/null
python3 "$ROOT/acceptance/alerts/replay.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN" "$DATA" "$W1/out" "${FILES[@]}"
(cd "$DATA" && "$KOBAN" hunt --rules sigma/rules --format jsonl --output "$W1/hunt.jsonl" "${FILES[@]}" 2>"$W1/hunt.err")
(cd "$DATA" && "$KOBAN" hunt --rules sigma/rules --format score --output "$W1/hunt-score.jsonl" "${FILES[@]}" 2>/dev/null)
set +e
python3 "$ROOT/acceptance/alerts/collect.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN" "$W1/out" "$W1/hunt.jsonl" | tee "$W1/collect.txt"
same=${PIPESTATUS[0]}
set -e
api GET "/api/v1/incidents?tenant=replay&limit=1" | jq -c '.incidents[0] | {title, severity, impact, urgency, tactics, alert_count}' >"$W1/top-incident.json"
python3 "$ROOT/../shared/tools/score.py" "$DATA" "$W1/out/alerts.jsonl" >"$W1/score-stream.json"
python3 "$ROOT/../shared/tools/score.py" "$DATA" "$W1/hunt-score.jsonl" >"$W1/score-hunt.json"
stop_started
read -r raw alerts incidents ratio < <(jq -r '"\(.raw) \(.alerts) \(.incidents) \(.ratio)"' "$W1/out/figures.json")
recall() { # recall FILE: technique recall (lenient) per replayed group
    jq -r '[.groups | to_entries[] | select(.key | test("evtx_attack_samples|mordor_json|mordor_compound")) |
            "\(.key)=\(.value.technique_recall_lenient // .value.detection_recall)"] | join(" ")' "$1"
}
rs="$(recall "$W1/score-stream.json")"
rh="$(recall "$W1/score-hunt.json")"
ok=$(awk -v r="$ratio" 'BEGIN {print (r >= 10) ? 0 : 1}')
check grouping "$ok" "raw detections $raw, alerts $alerts, incidents $incidents: $(printf '%.1f' "$ratio")x fewer incidents (target >= 10x)"
[[ "$rs" == "$rh" ]] && ok=0 || ok=1
check recall "$ok" "technique recall, stream [$rs] vs hunt [$rh]; score stream $(jq -r .score "$W1/score-stream.json" 2>/dev/null), hunt $(jq -r .score "$W1/score-hunt.json" 2>/dev/null)"
check same-as-hunt "$same" "$(grep '^streaming vs hunt' "$W1/collect.txt")"

echo "== 4. correlation across a kill -9"
W2="$OUT/correlation"
mkdir -p "$W2"
brute() { # brute FROM TO [success]: failed logons FROM..TO (seconds), optionally then a success
    python3 - "$@" <<'PY'
import json, sys
a, b = int(sys.argv[1]), int(sys.argv[2])
for s in range(a, b + 1):
    print(json.dumps({"EventID": 4625, "Channel": "Security", "Computer": "dc01.corp.example",
                      "TargetUserName": "alice", "IpAddress": "203.0.113.7", "LogonType": 3,
                      "TimeCreated": f"2026-11-30T10:00:{s:02d}Z"}))
if len(sys.argv) > 3:
    print(json.dumps({"EventID": 4624, "Channel": "Security", "Computer": "dc01.corp.example",
                      "TargetUserName": "alice", "IpAddress": "203.0.113.7", "LogonType": 3,
                      "TimeCreated": f"2026-11-30T10:00:{b + 5:02d}Z"}))
PY
}
KOBAN_EXTRA_CONFIG="[detection]
rules_poll_secs = 0" start_koban "$W2"
TOKEN="$(ingest_token windows-security)"
post() { curl -sS --fail-with-body --cacert "$CERT" -H "Authorization: Bearer $TOKEN" --data-binary @- "$HTTPS_URL/api/v1/ingest" >/dev/null; }
brute 1 6 | post
python3 "$ROOT/acceptance/alerts/wait.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN"
kill -9 "$KOBAN_PID"
wait "$KOBAN_PID" 2>/dev/null || true
KOBAN_EXTRA_CONFIG="[detection]
rules_poll_secs = 0" start_koban "$W2"
TOKEN="$(ingest_token windows-security)"
brute 7 12 success | post
python3 "$ROOT/acceptance/alerts/wait.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN"
fired="$(api GET "/api/v1/alerts?tenant=default&rule=0f3a1c52-6b1e-4d1f-9a55-5a1c0c4e7b04" | jq '.alerts | length')"
why="$(api GET "/api/v1/alerts?tenant=default&rule=0f3a1c52-6b1e-4d1f-9a55-5a1c0c4e7b04" | jq -r '.alerts[0].why // "-"')"
stop_started
[[ $fired -eq 1 ]] && ok=0 || ok=1
check correlation "$ok" "brute force then success across kill -9: $fired alert ($why)"

echo "== 5. kill -9 while detecting the replay"
W3="$OUT/crash"
mkdir -p "$W3"
KOBAN_EXTRA_CONFIG="$DETECTION" start_koban "$W3"
"$KOBAN" tenant add replay --data-dir "$KOBAN_DATA" >/dev/null
python3 "$ROOT/acceptance/alerts/replay.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN" "$DATA" "$W3/out" "${FILES[@]}"
kills=0
case_id=""
for round in 1 2 3 4; do
    sleep "$(awk -v r="$RANDOM" 'BEGIN {printf "%.1f", 1 + (r % 40) / 10}')"
    m="$(curl -sS --cacert "$CERT" "$HTTPS_URL/metrics")"
    last=$(awk '$1 == "koban_wal_last_seq" {print $2}' <<<"$m")
    applied=$(awk '$1 == "koban_pipeline_applied_seq" {print $2}' <<<"$m")
    echo "round $round: applied $applied of $last"
    kill -9 "$KOBAN_PID"
    wait "$KOBAN_PID" 2>/dev/null || true
    kills=$((kills + 1))
    KOBAN_EXTRA_CONFIG="$DETECTION" start_koban "$W3"
    if [[ -z $case_id ]]; then
        case_id="$(api GET "/api/v1/incidents?tenant=replay&limit=1" | jq -r '.incidents[0].id // empty')"
        if [[ -n $case_id ]]; then
            api POST "/api/v1/incidents/$case_id/state" '{"state":"triage","note":"looking"}' >/dev/null
            api POST "/api/v1/incidents/$case_id/comments" '{"text":"checked between kills"}' >/dev/null
        fi
    fi
done
python3 "$ROOT/acceptance/alerts/collect.py" "$HTTPS_URL" "$CERT" "$ADMIN_TOKEN" "$W3/out" "$W1/hunt.jsonl" >"$W3/collect.txt" || true
intact=1
if [[ -n $case_id ]]; then
    api GET "/api/v1/incidents/$case_id" >"$W3/case.json"
    jq -e '.state == "triage" and ([.log[] | select(.kind == "comment")] | length) == 1' "$W3/case.json" >/dev/null && intact=0
fi
stop_started
read -r raw3 alerts3 incidents3 _ < <(jq -r '"\(.raw) \(.alerts) \(.incidents) \(.ratio)"' "$W3/out/figures.json")
[[ "$raw3 $alerts3 $incidents3" == "$raw $alerts $incidents" && $intact -eq 0 ]] && ok=0 || ok=1
grep -q '^streaming vs hunt: identical' "$W3/collect.txt" || ok=1
check crash "$ok" "$kills kills: detections $raw3 (clean $raw), alerts $alerts3 (clean $alerts), incidents $incidents3 (clean $incidents); case $case_id intact: $([[ $intact -eq 0 ]] && echo yes || echo NO); $(grep '^streaming vs hunt' "$W3/collect.txt")"

echo "== 6. benchmark"
"$ROOT/target/release/examples/detect_bench" 2 | tee "$OUT/bench.txt"
eps="$(sed -n 's/.* = \([0-9]*\) events\/s per core.*/\1/p' "$OUT/bench.txt")"
check bench 0 "${eps:-?} events/s per core through the streaming stage"

echo "alerts-incidents acceptance: $(printf '%s; ' "${SUMMARY[@]}")detections $raw -> alerts $alerts -> incidents $incidents; $(printf '%.1f' "$ratio")x; ${eps:-?} events/s/core"
exit "$FAILED"
