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
# Not yet here (the issue stays open): the TAXII 2.1 server (medallion) polled with
# added_after paging, the 1,000,000-indicator throughput benchmark, retroactive
# matching, the intel page.
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

echo
echo "== summary"
printf '  %s\n' "${SUMMARY[@]}"
echo "threat-intel acceptance (partial): $(printf '%s\n' "${SUMMARY[@]}" | grep -c ' ok$')/${#SUMMARY[@]} checks passed"
exit $FAILED
