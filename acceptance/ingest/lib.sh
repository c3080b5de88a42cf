# Shared helpers of the ingest acceptance checks (sourced, not run).
#
# Each check starts its own `koban serve` on loopback with every port chosen by the
# kernel (port 0), in a temporary data dir, and stops it by PID on exit. Nothing here
# touches a server or process the check did not start.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KOBAN="${KOBAN_BIN:-$ROOT/target/release/koban}"
DATA="$(cd "$ROOT/.." && pwd)/shared/data"

# PIDs this check started; stopped (TERM, then KILL) in reverse order on exit.
STARTED_PIDS=()

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Builds the koban binary unless KOBAN_BIN points at one (cheap when up to date).
build_koban() {
    if [[ -z "${KOBAN_BIN:-}" ]]; then
        log "building koban (cargo build --release -p koban)…"
        (cd "$ROOT" && cargo build --release -p koban --quiet) || die "build failed"
    fi
    [[ -x "$KOBAN" ]] || die "no koban binary at $KOBAN"
}

stop_started() {
    local i pid
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
        pid="${STARTED_PIDS[$i]}"
        kill -TERM "$pid" 2>/dev/null || continue
        # Give it 10 s to flush (koban drains its pipeline on SIGTERM), then force.
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    STARTED_PIDS=()
}

# start_koban WORKDIR: writes a config, starts `koban serve`, waits for its
# `listening:` line and sets HTTPS_URL, SYSLOG_TCP, SYSLOG_TLS, CERT, ADMIN_TOKEN.
start_koban() {
    local work="$1"
    KOBAN_DATA="$work/koban-data"
    mkdir -p "$KOBAN_DATA"
    cat >"$work/koban.toml" <<EOF
[server]
https = "${KOBAN_HTTPS:-127.0.0.1:0}"
[syslog.udp]
listen = "off"
[syslog.tcp]
listen = "127.0.0.1:0"
source = "syslog-tcp"
[syslog.tls]
listen = "127.0.0.1:0"
source = "syslog-tls"
[wal]
fsync = "interval"
interval_ms = 50
EOF
    # A check may add sections (e.g. `[detection]` with its rule folders).
    if [[ -n "${KOBAN_EXTRA_CONFIG:-}" ]]; then
        printf '%s\n' "$KOBAN_EXTRA_CONFIG" >>"$work/koban.toml"
    fi
    # The admin token is made before the start (the state db is created on first use;
    # its first line is the one-time admin password, the token is the last line).
    ADMIN_TOKEN="$("$KOBAN" token create --admin --data-dir "$KOBAN_DATA" | tail -n1)"
    KOBAN_LOG="${KOBAN_LOG:-warn}" "$KOBAN" serve --config "$work/koban.toml" \
        --data-dir "$KOBAN_DATA" >"$work/koban.out" 2>"$work/koban.err" &
    STARTED_PIDS+=($!)
    KOBAN_PID=$!
    local line=""
    for _ in $(seq 300); do
        line="$(grep -m1 '^listening:' "$work/koban.out" 2>/dev/null || true)"
        [[ -n "$line" ]] && break
        kill -0 "$KOBAN_PID" 2>/dev/null || { cat "$work/koban.err" >&2; die "koban serve exited"; }
        sleep 0.1
    done
    [[ -n "$line" ]] || die "koban serve printed no listening line"
    # listening: https ADDR | syslog udp ADDR tcp ADDR tls ADDR
    HTTPS_URL="https://$(awk '{print $3}' <<<"$line")"
    SYSLOG_TCP="$(awk '{print $9}' <<<"$line")"
    SYSLOG_TLS="$(awk '{print $11}' <<<"$line")"
    CERT="$KOBAN_DATA/tls/cert.pem"
    [[ -s "$CERT" ]] || die "no certificate at $CERT"
    log "koban serve pid $KOBAN_PID: $line"
}

# ingest_token SOURCE: a new ingest token of tenant `default` for SOURCE, through the
# admin API of the running server.
ingest_token() {
    curl -sS --fail-with-body --cacert "$CERT" -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'content-type: application/json' \
        -d "$(jq -cn --arg s "$1" '{tenant:"default",source:$s}')" \
        "$HTTPS_URL/api/v1/tokens" | jq -er '.token'
}

# search JSON: POST /api/v1/search, prints the answer.
search() {
    curl -sS --fail-with-body --cacert "$CERT" -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'content-type: application/json' -d "$1" "$HTTPS_URL/api/v1/search"
}

# metric NAME: the sum of a Prometheus counter over all its label sets.
metric_sum() {
    curl -sS --cacert "$CERT" "$HTTPS_URL/metrics" |
        awk -v m="$1" '$1 ~ "^"m"([{]|$)" {s += $NF} END {printf "%d\n", s}'
}

# wait_stored N [SECONDS]: waits until koban_events_stored_total reaches N and stops
# moving (commits are batched, about one a second); prints the last value.
wait_stored() {
    local want="$1" limit="${2:-120}" last=-1 now same=0
    for _ in $(seq $((limit * 2))); do
        now="$(metric_sum koban_events_stored_total)"
        if [[ "$now" == "$last" ]]; then same=$((same + 1)); else same=0; fi
        # Settled: at the goal (or over it) and unchanged for 2 s; or short of it and
        # unchanged for 20 s (something was lost: no use waiting longer).
        if ((now >= want && same >= 4)) || ((same >= 40)); then break; fi
        last="$now"
        sleep 0.5
    done
    echo "$now"
}
