#!/usr/bin/env bash
# Real shippers, unchanged (issue 3): rsyslog and syslog-ng forward RFC 5424 over TCP
# with octet counting and over TLS, and the official Python `elasticsearch` client's
# bulk helper posts to `_bulk`. Every line sent must be stored exactly once and be
# searchable through /api/v1/search.
#
#   acceptance/ingest/shippers.sh [LINES_PER_PATH]     (default 2000)
#
# rsyslog and syslog-ng conflict as Debian packages, so neither is installed: their
# .debs are downloaded into target/shippers/ and unpacked into a private root; only
# the shared libraries they need are apt-installed. The Python client lives in a venv
# under target/shippers/venv.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${1:-2000}"
CACHE="$ROOT/target/shippers"
SROOT="$CACHE/root"
WORK="$(mktemp -d /tmp/koban-shippers.XXXXXX)"
cleanup() {
    stop_started
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the shippers, from Debian's packages -------------------------------------------

install_shippers() {
    mkdir -p "$CACHE/debs"
    if [[ ! -x "$SROOT/usr/sbin/rsyslogd" || ! -x "$SROOT/usr/sbin/syslog-ng" ]]; then
        log "downloading rsyslog, rsyslog-gnutls, syslog-ng-core…"
        (cd "$CACHE/debs" && apt-get download rsyslog rsyslog-gnutls syslog-ng-core >/dev/null 2>&1) ||
            { apt-get update >/dev/null && (cd "$CACHE/debs" && apt-get download rsyslog rsyslog-gnutls syslog-ng-core >/dev/null); }
        mkdir -p "$SROOT"
        for deb in "$CACHE"/debs/*.deb; do dpkg -x "$deb" "$SROOT"; done
    fi
    # Their libraries only (no daemon package, so nothing conflicts or starts).
    local libs=(libestr0 libfastjson4 liblognorm5 libivykis0 libnet1 libjson-c5 libpcre3 libwrap0 libgnutls30)
    if ! dpkg -s "${libs[@]}" >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${libs[@]}" >/dev/null
    fi
    if [[ ! -x "$CACHE/venv/bin/python" ]] || ! "$CACHE/venv/bin/python" -c 'import elasticsearch' 2>/dev/null; then
        log "installing the Python elasticsearch client into $CACHE/venv…"
        python3 -m venv "$CACHE/venv"
        "$CACHE/venv/bin/pip" install -q elasticsearch
    fi
    RSYSLOG_VERSION="$("$SROOT/usr/sbin/rsyslogd" -v | head -n1 | awk '{print $2}')"
    SYSLOGNG_VERSION="$(LD_LIBRARY_PATH="$SROOT/usr/lib/syslog-ng" "$SROOT/usr/sbin/syslog-ng" --version | awk 'NR==1{print $3}' | tr -d '()')"
    ES_VERSION="$("$CACHE/venv/bin/python" -c 'import elasticsearch; print(".".join(map(str, elasticsearch.__version__)))')"
    log "rsyslog $RSYSLOG_VERSION, syslog-ng $SYSLOGNG_VERSION, elasticsearch-py $ES_VERSION"
}

# write_lines FILE WORD: N unique lines; WORD names the path (one search word), and
# `marker=kship-WORD-000123` makes every line distinct.
write_lines() {
    local file="$1" word="$2"
    awk -v n="$N" -v w="$word" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "kship %s line %d of %d marker=kship-%s-%06d user=alice action=login\n", w, i, n, w, i
    }' >"$file"
}

# --- rsyslog: imfile → omfwd (TCP octet-counted, and gtls) ---------------------------

start_rsyslog() {
    local dir="$WORK/rsyslog"
    mkdir -p "$dir/work"
    write_lines "$dir/tcp.log" rsyslogtcp
    write_lines "$dir/tls.log" rsyslogtls
    local tcp_port="${SYSLOG_TCP##*:}" tls_port="${SYSLOG_TLS##*:}"
    # RSYSLOG_SyslogProtocol23Format is rsyslog's RFC 5424 template. TLS checks Koban's
    # self-signed certificate as the CA and its DNS name (rsyslog matches DNS names,
    # not IP addresses, so the permitted peer is `localhost`, which the cert names). The action queues
    # retry forever, so a slow receiver delays lines but never loses them.
    cat >"$dir/rsyslog.conf" <<EOF
global(workDirectory="$dir/work" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="$CERT")
module(load="imfile" mode="inotify")
ruleset(name="to_tcp") {
  action(type="omfwd" target="127.0.0.1" port="$tcp_port" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
         queue.type="LinkedList" queue.size="100000" action.resumeRetryCount="-1")
}
ruleset(name="to_tls") {
  action(type="omfwd" target="127.0.0.1" port="$tls_port" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost"
         queue.type="LinkedList" queue.size="100000" action.resumeRetryCount="-1")
}
input(type="imfile" File="$dir/tcp.log" Tag="kship-rsyslog" Facility="local0"
      Severity="info" ruleset="to_tcp")
input(type="imfile" File="$dir/tls.log" Tag="kship-rsyslog" Facility="local0"
      Severity="info" ruleset="to_tls")
EOF
    "$SROOT/usr/sbin/rsyslogd" -N1 -f "$dir/rsyslog.conf" -M "$SROOT/usr/lib/x86_64-linux-gnu/rsyslog" \
        >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "rsyslog config rejected"; }
    "$SROOT/usr/sbin/rsyslogd" -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" \
        -M "$SROOT/usr/lib/x86_64-linux-gnu/rsyslog" >"$dir/out.log" 2>&1 &
    STARTED_PIDS+=($!)
    log "rsyslogd pid $!"
}

# --- syslog-ng: file() → syslog() (RFC 5424 with octet counting, TCP and TLS) ---------

start_syslog_ng() {
    local dir="$WORK/syslog-ng"
    mkdir -p "$dir"
    write_lines "$dir/tcp.log" syslogngtcp
    write_lines "$dir/tls.log" syslogngtls
    local tcp_port="${SYSLOG_TCP##*:}" tls_port="${SYSLOG_TLS##*:}"
    # flags(no-parse): each file line is the message; syslog() is the RFC 5424 +
    # RFC 6587 octet-counting driver. The disk-less fifo is large enough for all lines.
    cat >"$dir/syslog-ng.conf" <<EOF
@version: 3.38
options { stats_freq(0); log-fifo-size(100000); keep-hostname(yes); };
source s_tcp { file("$dir/tcp.log" follow-freq(1) flags(no-parse) program-override("kship-syslog-ng") default-facility(local0) default-priority(info)); };
source s_tls { file("$dir/tls.log" follow-freq(1) flags(no-parse) program-override("kship-syslog-ng") default-facility(local0) default-priority(info)); };
destination d_tcp { syslog("127.0.0.1" port($tcp_port) transport("tcp")); };
destination d_tls { syslog("127.0.0.1" port($tls_port) transport("tls")
    tls(ca-file("$CERT") peer-verify(required-trusted))); };
log { source(s_tcp); destination(d_tcp); };
log { source(s_tls); destination(d_tls); };
EOF
    local ng=(env LD_LIBRARY_PATH="$SROOT/usr/lib/syslog-ng" "$SROOT/usr/sbin/syslog-ng"
        --module-path="$SROOT/usr/lib/syslog-ng/3.38" -f "$dir/syslog-ng.conf")
    "${ng[@]}" --syntax-only >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "syslog-ng config rejected"; }
    "${ng[@]}" -F -R "$dir/persist" -p "$dir/syslog-ng.pid" -c "$dir/syslog-ng.ctl" \
        >"$dir/out.log" 2>&1 &
    STARTED_PIDS+=($!)
    log "syslog-ng pid $!"
}

# --- the official Python client's bulk helper -----------------------------------------

python_bulk() {
    local token
    token="$(ingest_token python-bulk)"
    # Basic auth with the ingest token as password; the client's product check needs
    # the X-Elastic-Product header Koban sends on `GET /`.
    URL="$HTTPS_URL" TOKEN="$token" CERT="$CERT" N="$N" "$CACHE/venv/bin/python" - <<'EOF'
import os
from elasticsearch import Elasticsearch, helpers

es = Elasticsearch(os.environ["URL"], basic_auth=("shipper", os.environ["TOKEN"]),
                   ca_certs=os.environ["CERT"], request_timeout=60)
info = es.info()
n = int(os.environ["N"])
docs = ({"_index": "kship-logs",
         "@timestamp": "2026-01-01T00:00:00Z",
         "message": f"kship pybulk line {i} of {n} marker=kship-pybulk-{i:06d} user=alice action=login",
         "host": {"name": "py-shipper"}}
        for i in range(1, n + 1))
ok, errors = helpers.bulk(es, docs, chunk_size=500, raise_on_error=False)
print(f"python bulk: server version {info['version']['number']}, {ok} acknowledged, {len(errors)} errors", flush=True)
if errors:
    print(errors[:3])
EOF
}

# --- verification ---------------------------------------------------------------------

# check_path NAME WORD: prints `shipper NAME: sent N, stored M, searchable yes/no`
# from the store; M is the number of stored events carrying WORD, and the markers of
# those events must be N distinct ones (no loss, no duplicate).
FAILED=()
check_path() {
    local name="$1" word="$2" answer stored distinct formats searchable=no
    answer="$(search "$(jq -cn --arg w "$word" --argjson l "$((N + 1000))" '{tenant:"default",text:$w,limit:$l}')")"
    stored="$(jq -r '.total' <<<"$answer")"
    distinct="$(jq -r --arg w "$word" '[.hits[] | (.original // "") | capture("marker=kship-" + $w + "-(?<m>[0-9]+)").m] | unique | length' <<<"$answer")"
    # Searchable: one marker found by its own words, through the text search.
    local probe
    probe="$(search "$(jq -cn --arg m "kship-$word-$(printf '%06d' $(((N + 1) / 2)))" '{tenant:"default",text:$m,limit:5}')" | jq -r '.total')"
    [[ "$probe" == 1 && "$distinct" == "$N" ]] && searchable=yes
    formats="$(jq -r '[.hits[].format] | group_by(.) | map("\(.[0])=\(length)") | join(",")' <<<"$answer")"
    # The syslog paths must have arrived as RFC 5424 (`<PRI>1 TIMESTAMP HOST …`).
    if [[ "$name" != python* ]]; then
        local rfc5424
        rfc5424="$(jq -r '[.hits[].original | test("^<[0-9]+>1 ")] | all' <<<"$answer")"
        formats+=", rfc5424 $rfc5424"
        [[ "$rfc5424" == true ]] || searchable=no
    fi
    echo "shipper $name: sent $N, stored $stored, searchable $searchable (distinct markers $distinct, formats $formats)"
    if [[ "$stored" != "$N" || "$distinct" != "$N" || "$searchable" != yes ]]; then FAILED+=("$name"); fi
}

main() {
    build_koban
    install_shippers
    start_koban "$WORK"
    local t0=$SECONDS
    start_rsyslog
    start_syslog_ng
    python_bulk
    local stored
    stored="$(wait_stored $((5 * N)) 180)"
    log "stored events: $stored after $((SECONDS - t0)) s"
    check_path "rsyslog tcp" rsyslogtcp
    check_path "rsyslog tls" rsyslogtls
    check_path "syslog-ng tcp" syslogngtcp
    check_path "syslog-ng tls" syslogngtls
    check_path "python bulk" pybulk
    if ((${#FAILED[@]} == 0)) && [[ "$stored" == $((5 * N)) ]]; then
        echo "shippers: PASS — 5 paths (rsyslog $RSYSLOG_VERSION tcp/tls, syslog-ng $SYSLOGNG_VERSION tcp/tls, elasticsearch-py $ES_VERSION bulk), $((5 * N)) lines sent, $stored stored, 0 lost, 0 duplicated"
    else
        echo "shippers: FAIL — ${FAILED[*]:-total mismatch}; $((5 * N)) sent, $stored stored"
        for f in "$WORK"/rsyslog/out.log "$WORK"/syslog-ng/out.log "$WORK"/koban.err; do
            [[ -s "$f" ]] && { log "--- $f"; tail -n 20 "$f" >&2; }
        done
        exit 1
    fi
}

main "$@"
