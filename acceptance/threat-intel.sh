#!/usr/bin/env bash
# Acceptance checks of the threat-intel issue that exist so far:
#
#   acceptance/threat-intel.sh
#
#  1. koban-intel's tests: STIX 2.1 patterns parsed by the grammar; the shared STIX
#     examples and MISP events imported with every indicator accounted for (imported
#     or reported unsupported, by reason — the counts are printed); the indicator set
#     (networks, parent domains, hashes, expiry); the MISP warning lists; the ATT&CK
#     catalogue against the shared techniques table;
#  2. matching in the stream: koban-server's tests/intel_stream.rs (a STIX bundle and a
#     plain list loaded, matching events become alerts with the indicator's context, a
#     warning-listed value stays quiet).
#
#  3. the benchmark: the streaming detection stage (one thread, the Mordor events, every
#     SigmaHQ rule) with 1,000,000 generated indicators loaded vs none, two runs each;
#     the drop must stay within 10 %; prints the indicator set's memory.
#
# Not yet here (the issue stays open): the TAXII 2.1 server (medallion) polled with
# added_after paging, retroactive matching, the intel page.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/acceptance/threat-intel"
mkdir -p "$OUT"
FAILED=0
SUMMARY=()
check() {
    if [[ $2 -eq 0 ]]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; FAILED=1; fi
    SUMMARY+=("$1 $([[ $2 -eq 0 ]] && echo ok || echo FAILED)")
}

echo "== 1. indicators: import, patterns, set, warning lists, ATT&CK"
set +e
(cd "$ROOT" && cargo test --release -q -p koban-intel -- --nocapture 2>&1) >"$OUT/intel.log"
rc=$?
set -e
grep -E '^(STIX|MISP|warning lists|ATT&CK):' "$OUT/intel.log" | sed 's/^/    /'
check import $rc "$(grep -E '^test result' "$OUT/intel.log" | awk '{p += $4; f += $6} END {print p " passed, " f " failed"}')"

echo "== 2. matching in the stream"
set +e
(cd "$ROOT" && cargo test --release -q -p koban-server --test intel_stream 2>&1) >"$OUT/stream.log"
rc=$?
set -e
check stream $rc "$(grep -E '^test result' "$OUT/stream.log" | awk '{p += $4; f += $6} END {print p " passed, " f " failed"}')"

echo "== 3. benchmark: streaming detection with 1,000,000 indicators vs none"
(cd "$ROOT" && cargo build --release -q -p koban-server --example detect_bench)
BENCH="$ROOT/target/release/examples/detect_bench"
rate() { "$BENCH" 2 "$1" 2>&1 | tee -a "$OUT/bench.log" | sed -n 's/.* = \([0-9]*\) events\/s.*/\1/p'; }
: >"$OUT/bench.log"
with=$(( $(rate 1000000) + $(rate 1000000) ))
without=$(( $(rate 0) + $(rate 0) ))
mem="$(grep -m1 '^intel:' "$OUT/bench.log" | sed 's/.*, \([0-9]* MiB\).*/\1/')"
drop=$(python3 -c "print(f'{(1 - $with / $without) * 100:.1f}')")
ok=1
python3 -c "import sys; sys.exit(0 if $with >= 0.9 * $without else 1)" && ok=0
check benchmark $ok "$((with / 2)) events/s with 1,000,000 indicators vs $((without / 2)) without (drop $drop %, target ≤ 10 %); indicator set about $mem"

echo
echo "== summary"
printf '  %s\n' "${SUMMARY[@]}"
echo "threat-intel acceptance (partial): $(printf '%s\n' "${SUMMARY[@]}" | grep -c ' ok$')/${#SUMMARY[@]} checks passed"
exit $FAILED
