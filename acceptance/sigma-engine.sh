#!/usr/bin/env bash
# Every acceptance check of the Sigma engine issue, from a clean checkout.
#
#   acceptance/sigma-engine.sh [FUZZ_SECONDS]     (default 600 per fuzz target)
#
# Prints each figure; the last line sums them up. Exits 0 only when all checks hold.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FUZZ_SECONDS=${1:-600}
DATA=$(cd ../shared/data && pwd)
SIGMA=$DATA/sigma
KOBAN=$PWD/target/release/koban
OUT=bench/out
ROOT=$PWD
mkdir -p "$OUT"
declare -a RESULTS
FAILED=0
check() { # name, status, figure
    RESULTS+=("$1: $3")
    if [[ $2 -eq 0 ]]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; FAILED=$((FAILED + 1)); fi
}

echo "== build"
cargo build --release -p koban 2>&1 | tail -1

echo "== workspace tests (tests as data, bad input, units)"
cargo test --workspace --release 2>&1 | tee "$OUT/tests.log" | grep -E 'test result: FAILED' || true
# The two data-driven suites again, with their printed counts.
cargo test --release -p koban --test sigma_regression --test sigma_cases -- --nocapture 2>&1 \
    | tee -a "$OUT/tests.log" | grep -E '^(sigma cases|sigma regression)|DEVIATES|^FAIL' || true
CASES=$(grep -o 'sigma cases: [0-9]* passed, [0-9]* failed' "$OUT/tests.log" | head -1)
REGR=$(grep -o 'sigma regression: [0-9]* passed, [0-9]* failed' "$OUT/tests.log" | head -1)
! grep -q 'test result: FAILED' "$OUT/tests.log"
check "tests" $? "all workspace tests; $CASES"

echo "== SigmaHQ regression (202 tests x EVTX and JSON)"
[[ $REGR =~ ([0-9]+)\ passed,\ 0\ failed ]]
check "regression" $? "$REGR"

echo "== rules check over rules, emerging threats, threat hunting"
"$KOBAN" rules check "$SIGMA/rules" "$SIGMA/rules-emerging-threats" "$SIGMA/rules-threat-hunting" > "$OUT/rules-check.txt"
RC=$?
tail -1 "$OUT/rules-check.txt"
grep '^warning' "$OUT/rules-check.txt" | sed 's/^/  /'
check "rules-check" $RC "$(tail -1 "$OUT/rules-check.txt")"

echo "== speed against rsigma (bench/hunt-vs-peers.sh)"
SKIP_BUILD=1 RSIGMA_EVTX=${RSIGMA_EVTX:-0} bash bench/hunt-vs-peers.sh 2>&1 | tee "$OUT/peers.log" | tail -15
check "peers" "${PIPESTATUS[0]}" "$(tail -1 "$OUT/peers.log")"

echo "== criterion: per-event matching cost"
cargo bench -p koban-sigma --bench matching -- --warm-up-time 2 --measurement-time 8 2>&1 | grep -E '^matching/|thrpt' | grep -v '%' | tee "$OUT/criterion.txt"
# Target: 100 K events/s per core on the realistic mix (the first group).
MIX=$(grep -A1 'mordor events' "$OUT/criterion.txt" | grep -o '\[[0-9.]* Kelem/s [0-9.]*' | awk '{print $3}')
awk -v m="${MIX:-0}" 'BEGIN { exit !(m >= 100) }'
check "criterion" $? "median ${MIX:-?} K events/s/core on the Mordor mix (target 100); $(paste -sd' ' "$OUT/criterion.txt" | tr -s ' ')"

echo "== detection score (score.py over the whole shared data)"
(cd "$DATA" && "$KOBAN" hunt --rules "$SIGMA/rules" --rules "$SIGMA/rules-emerging-threats" --rules "$SIGMA/rules-threat-hunting" \
    --format score --output "$ROOT/$OUT/score-alerts.jsonl" . 2> "$ROOT/$OUT/score-hunt.err" || true)
python3 "$DATA/../tools/score.py" "$DATA" "$OUT/score-alerts.jsonl" > "$OUT/score.json"
python3 - "$OUT/score.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for g, d in s["groups"].items():
    keys = [k for k in ("detection_recall", "technique_recall_lenient", "tactic_recall", "f1", "benign_files_alerting", "alerts_per_1k_events") if k in d]
    print(f"  {g}: " + ", ".join(f"{k}={d[k]}" for k in keys))
print(f"  overall score {s['score']}, benign FP rate {s['benign_fp_rate']}")
PY
check "score" 0 "overall $(python3 -c "import json;print(json.load(open('$OUT/score.json'))['score'])")"

echo "== fuzzing, $FUZZ_SECONDS s per target"
FUZZ_TARGETS=${SIGMA_FUZZ_TARGETS:-"rule_loader condition log_reader"} bash acceptance/fuzz.sh "$FUZZ_SECONDS" 2>&1 | tee "$OUT/fuzz.log" | grep -E '^fuzz ' 
check "fuzz" "${PIPESTATUS[0]}" "$(grep -E '^fuzz ' "$OUT/fuzz.log" | paste -sd';')"

echo
echo "== summary"
printf '  %s\n' "${RESULTS[@]}"
echo "sigma-engine acceptance: $(( ${#RESULTS[@]} - FAILED ))/${#RESULTS[@]} checks passed; $REGR; $(tail -1 "$OUT/rules-check.txt" | cut -d';' -f1); score $(python3 -c "import json;print(json.load(open('$OUT/score.json'))['score'])")"
exit $((FAILED > 0))
