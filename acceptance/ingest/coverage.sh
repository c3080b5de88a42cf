#!/usr/bin/env bash
# Every line ingested, raw share per source (issue 3): every record of the shared
# samples (multi/wazuh_rule_tests, linux_text, linux, web, network, cloud) goes through
# a real `koban serve` (HTTP `POST /api/v1/ingest`, one ingest token per source);
# prints per source records sent, stored, parsed, raw and the raw share, from the
# server's per-source counters. Fails if any source stores fewer (or more) events than
# it was sent. Sources left raw are listed: the formats the parser does not support.
#
#   acceptance/ingest/coverage.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -d "$DATA/multi/wazuh_rule_tests" ]] || die "no test data at $DATA"
WORK="$(mktemp -d /tmp/koban-coverage.XXXXXX)"
cleanup() {
    stop_started
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_koban
start_koban "$WORK"
# The sender and the table are in Python (gzip/zip members, JSON arrays, .ini lines).
KOBAN_URL="$HTTPS_URL" KOBAN_CA="$CERT" KOBAN_ADMIN="$ADMIN_TOKEN" KOBAN_DATA_DIR="$DATA" \
    python3 "$ROOT/acceptance/ingest/coverage.py"
