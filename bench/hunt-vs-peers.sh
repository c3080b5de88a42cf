#!/usr/bin/env bash
# Koban `hunt` against a peer Sigma engine (rsigma 0.23), side by side.
#
#   bench/hunt-vs-peers.sh            (from the repo root; it cds there itself)
#
# (a) Mordor: the OTRF Security-Datasets host archives (zips, and four .tar.gz, of nxlog
#     NDJSON), all rules in sigma/rules. Koban reads the archives itself, conversion
#     included in its time.
#     rsigma gets a pre-built NDJSON copy (built once by bench/mordor_for_rsigma.py and
#     cached in bench/out/) carrying the product/service/category tags its
#     --logsource-routing needs; building that copy is NOT in rsigma's time.
#     Check: rsigma wall / koban wall >= $MIN_RATIO.
# (b) EVTX: EVTX-ATTACK-SAMPLES (277 files), rules + emerging-threats + threat-hunting.
#     Check: koban wall <= $EVTX_MAX_WALL s and peak RSS <= $EVTX_MAX_RSS_KB KiB.
#     rsigma is run on the same files for reference only (one process per file: its
#     `-e @file.evtx` takes a single file and `-r` a single path).
#
# Wall time and peak RSS come from /usr/bin/time -f '%e %M' (plus %U+%S CPU seconds, shown
# as a check when the machine is busy). Exits 1 if a check fails;
# the last line is a one-line summary.
#
# Environment knobs:
#   RUNS=N            time each command N times, keep the fastest (default 1)
#   SKIP_KOBAN=1      skip building/running koban (tests the peer half only; exits 0)
#   RSIGMA_EVTX=0     skip the slow rsigma EVTX reference run (~4-5 min on 2 cores)
#   SKIP_BUILD=1      do not run `cargo build` (use the existing target/release/koban)
#   BENCH_DATA=DIR    the shared data root (default ../shared/data)
#   PEERS_ROOT=DIR    where rsigma is installed (default /opt/peers)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DATA=${BENCH_DATA:-../shared/data}
OUT=bench/out
PEERS_ROOT=${PEERS_ROOT:-/opt/peers}
RSIGMA=$PEERS_ROOT/bin/rsigma
RSIGMA_VERSION=0.23.0
KOBAN=target/release/koban
RUNS=${RUNS:-1}
SKIP_KOBAN=${SKIP_KOBAN:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
RSIGMA_EVTX=${RSIGMA_EVTX:-1}
MIN_RATIO=${MIN_RATIO:-2}
EVTX_MAX_WALL=${EVTX_MAX_WALL:-1.5}
EVTX_MAX_RSS_KB=${EVTX_MAX_RSS_KB:-307200} # 300 MiB

RULES=$DATA/sigma/rules
RULES_ET=$DATA/sigma/rules-emerging-threats
RULES_TH=$DATA/sigma/rules-threat-hunting
MORDOR_DIR=$DATA/windows/mordor_json
EVTX_DIR=$DATA/windows/evtx/evtx_attack_samples

mkdir -p "$OUT"

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

# ---------------------------------------------------------------- prerequisites
if [[ ! -x /usr/bin/time ]]; then
    log "installing GNU time (apt)"
    sudo_=; [[ $(id -u) -ne 0 ]] && sudo_=sudo
    $sudo_ apt-get install -y -qq time >/dev/null 2>&1 \
        || { $sudo_ apt-get update -qq >/dev/null && $sudo_ apt-get install -y -qq time >/dev/null; }
fi
command -v python3 >/dev/null || die "python3 is required (bench/mordor_for_rsigma.py)"

if ! "$RSIGMA" --version 2>/dev/null | grep -q "rsigma $RSIGMA_VERSION" \
    || ! "$RSIGMA" --features 2>/dev/null | grep -qw evtx; then
    log "installing rsigma $RSIGMA_VERSION into $PEERS_ROOT"
    nice -n 19 cargo install rsigma --version "$RSIGMA_VERSION" --no-default-features \
        --features evtx --locked --root "$PEERS_ROOT"
fi

if [[ $SKIP_KOBAN != 1 && $SKIP_BUILD != 1 ]]; then
    log "building koban (release)"
    nice -n 19 cargo build --release -p koban
fi
[[ $SKIP_KOBAN == 1 || -x $KOBAN ]] || die "$KOBAN not found"

# ------------------------------------------------------------------ helpers
# timeit NAME STDOUT_FILE CMD...: runs CMD $RUNS times (stdout to STDOUT_FILE, stderr to
# $OUT/NAME.stderr) and sets WALL (fastest run, s), RSS (peak KiB of that run) and CPU
# (user + system s of that run; a sanity check when the machine is busy).
# Returns CMD's status.
timeit() {
    local name=$1 stdout=$2; shift 2
    local tfile=$OUT/$name.time best_wall='' best_rss='' best_cpu='' i w r u s
    for ((i = 0; i < RUNS; i++)); do
        if ! /usr/bin/time -f '%e %M %U %S' -o "$tfile" "$@" >"$stdout" 2>"$OUT/$name.stderr"; then
            log "$name: command failed (status in $tfile; stderr: $OUT/$name.stderr)"
            tail -n 5 "$OUT/$name.stderr" >&2 || true
            return 1
        fi
        read -r w r u s < <(tail -n 1 "$tfile")
        if [[ -z $best_wall ]] || awk -v a="$w" -v b="$best_wall" 'BEGIN{exit !(a < b)}'; then
            best_wall=$w best_rss=$r best_cpu=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u + s}')
        fi
    done
    WALL=$best_wall RSS=$best_rss CPU=$best_cpu
}

mib() { awk -v k="$1" 'BEGIN{printf "%.0f", k / 1024}'; }
# A loop (run by /usr/bin/time, so a script, not a function) that runs a command once per
# EVTX file, for tools that take one file per run: bash -c "$PER_FILE" _ OUT ERR DIR CMD...
# shellcheck disable=SC2016 # expanded by the inner bash
PER_FILE='out=$1 err=$2 dir=$3; shift 3; : >"$out"; : >"$err"
while IFS= read -r -d "" f; do "$@" -e "@$f" >>"$out" 2>>"$err"; done \
    < <(find "$dir" -type f -iname "*.evtx" -print0 | sort -z)'

read -r load1 _ < /proc/loadavg
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN{exit !(l > n / 2)}'; then
    log "warning: load average $load1 on $(nproc) cores; wall times will be inflated (compare cpu=)"
fi

fail=0
summary_a="mordor: not run"
summary_b="evtx: not run"

# ======================================================== (a) Mordor, rules/
log ""
log "== (a) Mordor host archives ($MORDOR_DIR), rules: $RULES"
# The same inputs koban sees when handed the folder: the zips under */host/ and also the
# few .tar.gz archives there (koban reads those too), so both tools get the same events.
mapfile -d '' archives < <(find "$MORDOR_DIR" -type f \( -iname '*.zip' -o -iname '*.tar.gz' \
    -o -iname '*.tgz' -o -iname '*.json' -o -iname '*.ndjson' -o -iname '*.jsonl' \) \
    ! -name '._*' -print0 | sort -z)
((${#archives[@]})) || die "no archives under $MORDOR_DIR"

# rsigma's input: one NDJSON with logsource tags (and koban's Sigma-name field aliases),
# rebuilt when the archives or the converter change. The folded-categories pipeline (-p)
# goes with the converter's default `--registry merged` (Sysmon 12/13/14 are tagged
# registry_event; registry_set/... rules are moved onto it with their EventIDs ANDed in,
# since rsigma reads a single category per event); `--uncategorised none` keeps events
# with no Sigma category (most Security events, System, Application...) out of
# category-scoped rules instead of letting rsigma fail open and evaluate every
# process_creation/... rule against them.
CONVERT_ARGS=(--registry merged --uncategorised none)
NDJSON=$OUT/mordor-rsigma.ndjson
STAMP=$OUT/mordor-rsigma.stamp
PIPELINE=$OUT/rsigma-folded-categories.yml
stamp=$({
    echo "${CONVERT_ARGS[*]}"
    sha256sum bench/mordor_for_rsigma.py
    stat -c '%n %s %Y' "${archives[@]}"
})
if [[ ! -s $NDJSON || ! -f $STAMP || $(cat "$STAMP") != "$stamp" ]]; then
    log "converting ${#archives[@]} archives for rsigma -> $NDJSON (cached)"
    rm -f "$STAMP"
    nice -n 10 python3 bench/mordor_for_rsigma.py "${CONVERT_ARGS[@]}" -o "$NDJSON" "${archives[@]}" \
        >"$OUT/mordor-rsigma.convert.json"
    printf '%s' "$stamp" >"$STAMP"
fi
python3 bench/mordor_for_rsigma.py --write-pipeline "$PIPELINE"
log "converter: $(cat "$OUT/mordor-rsigma.convert.json" 2>/dev/null || echo '?')"
cat "$NDJSON" >/dev/null # warm the page cache, as koban's zips will be

# rsigma: single-threaded (`engine eval` has no thread option; rayon batching exists
# only in the daemon, which this build leaves out).
rs_a_cmd=("$RSIGMA" engine eval -r "$RULES" -p "$PIPELINE" --logsource-routing
    -e "@$NDJSON" --output-format ndjson)
log "rsigma: ${rs_a_cmd[*]}"
rs_a_ok=1
if timeit rsigma-mordor "$OUT/rsigma-mordor.ndjson" "${rs_a_cmd[@]}"; then
    rs_a_wall=$WALL rs_a_rss=$RSS
    rs_a_hits=$(wc -l <"$OUT/rsigma-mordor.ndjson")
    rs_a_events=$(sed -n 's/^Processed \([0-9]*\) events.*/\1/p' "$OUT/rsigma-mordor.stderr" | tail -n 1)
    log "rsigma: wall ${rs_a_wall}s (cpu ${CPU}s), peak RSS $(mib "$rs_a_rss") MiB, ${rs_a_events:-?} events, $rs_a_hits detections"
else
    rs_a_ok=0
    fail=1
fi

if [[ $SKIP_KOBAN == 1 ]]; then
    summary_a="mordor: rsigma ${rs_a_wall:-?}s/$(mib "${rs_a_rss:-0}")MiB ${rs_a_hits:-?} det, koban skipped"
else
    kb_a_cmd=("$KOBAN" hunt --rules "$RULES" --format jsonl --output "$OUT/koban-mordor.jsonl" "$MORDOR_DIR")
    log "koban:  ${kb_a_cmd[*]}"
    rm -f "$OUT/koban-mordor.jsonl"
    if timeit koban-mordor /dev/null "${kb_a_cmd[@]}"; then
        kb_a_wall=$WALL kb_a_rss=$RSS
        kb_a_hits=$(wc -l <"$OUT/koban-mordor.jsonl")
        log "koban:  wall ${kb_a_wall}s (cpu ${CPU}s), peak RSS $(mib "$kb_a_rss") MiB, $kb_a_hits detections"
        if ((rs_a_ok)); then
            ratio=$(awk -v r="$rs_a_wall" -v k="$kb_a_wall" 'BEGIN{printf "%.2f", (k > 0 ? r / k : 999)}')
            if awk -v x="$ratio" -v m="$MIN_RATIO" 'BEGIN{exit !(x >= m)}'; then verdict=PASS; else verdict=FAIL; fail=1; fi
            log "ratio rsigma/koban: ${ratio}x (need >= $MIN_RATIO): $verdict"
            log "detections: koban $kb_a_hits, rsigma $rs_a_hits"
            summary_a="mordor: koban ${kb_a_wall}s vs rsigma ${rs_a_wall}s = ${ratio}x $verdict (det koban $kb_a_hits / rsigma $rs_a_hits)"
        else
            summary_a="mordor: koban ${kb_a_wall}s, rsigma FAILED"
        fi
    else
        fail=1
        summary_a="mordor: koban FAILED"
    fi
fi

# ======================================================== (b) EVTX, three rule sets
log ""
log "== (b) EVTX ($EVTX_DIR, $(find "$EVTX_DIR" -type f -iname '*.evtx' | wc -l) files), rules: $RULES + $RULES_ET + $RULES_TH"
if [[ $SKIP_KOBAN == 1 ]]; then
    summary_b="evtx: koban skipped"
else
    kb_b_cmd=("$KOBAN" hunt --rules "$RULES" --rules "$RULES_ET" --rules "$RULES_TH"
        --format jsonl --output "$OUT/koban-evtx.jsonl" "$EVTX_DIR")
    log "koban:  ${kb_b_cmd[*]}"
    rm -f "$OUT/koban-evtx.jsonl"
    if timeit koban-evtx /dev/null "${kb_b_cmd[@]}"; then
        kb_b_wall=$WALL kb_b_rss=$RSS
        kb_b_hits=$(wc -l <"$OUT/koban-evtx.jsonl")
        if awk -v w="$kb_b_wall" -v m="$EVTX_MAX_WALL" 'BEGIN{exit !(w <= m)}'; then v_wall=PASS; else v_wall=FAIL; fail=1; fi
        if ((kb_b_rss <= EVTX_MAX_RSS_KB)); then v_rss=PASS; else v_rss=FAIL; fail=1; fi
        log "koban:  wall ${kb_b_wall}s (<= ${EVTX_MAX_WALL}s: $v_wall; cpu ${CPU}s), peak RSS $(mib "$kb_b_rss") MiB (<= $(mib "$EVTX_MAX_RSS_KB") MiB: $v_rss), $kb_b_hits detections"
        summary_b="evtx: koban ${kb_b_wall}s $v_wall, $(mib "$kb_b_rss")MiB $v_rss, $kb_b_hits det"
    else
        fail=1
        summary_b="evtx: koban FAILED"
    fi
fi

if [[ $RSIGMA_EVTX == 1 ]]; then
    # rsigma takes one -r path: give it a directory of symlinks to the three rule sets.
    RULES_ALL=$OUT/rsigma-rules-evtx
    mkdir -p "$RULES_ALL"
    for d in "$RULES" "$RULES_ET" "$RULES_TH"; do ln -sfn "$(realpath "$d")" "$RULES_ALL/$(basename "$d")"; done
    # rsigma's EVTX reader yields nested {"Event":{"System":{..},"EventData":{..}}} records
    # and only implies product: windows, so Sigma's flat field names (Image, CommandLine)
    # never resolve. This jq filter (run by rsigma itself, per record) flattens the
    # record and adds the same service/category tags as the Mordor copy.
    JQ=$OUT/rsigma-evtx-flatten.jq
    python3 bench/mordor_for_rsigma.py --write-jq "$JQ"
    rs_b_cmd=("$RSIGMA" engine eval -r "$RULES_ALL" -p "$PIPELINE" --logsource-routing
        --jq "$(cat "$JQ")" --output-format ndjson)
    log "rsigma (reference, one process per file): $RSIGMA engine eval -r $RULES_ALL -p $PIPELINE --logsource-routing --jq \"\$(cat $JQ)\" --output-format ndjson -e @FILE.evtx"
    if timeit rsigma-evtx /dev/null bash -c "$PER_FILE" _ "$OUT/rsigma-evtx.ndjson" \
        "$OUT/rsigma-evtx.err" "$EVTX_DIR" "${rs_b_cmd[@]}"; then
        rs_b_hits=$(wc -l <"$OUT/rsigma-evtx.ndjson")
        rs_b_runs=$(grep -c '^Processed ' "$OUT/rsigma-evtx.err" || true)
        rs_b_records=$(awk '/^Processed [0-9]+ EVTX records/ {n += $2} END {print n + 0}' "$OUT/rsigma-evtx.err")
        log "rsigma: wall ${WALL}s (cpu ${CPU}s) for $rs_b_runs runs ($rs_b_records records), peak RSS $(mib "$RSS") MiB (largest run), $rs_b_hits detections"
        summary_b+=" (rsigma ref ${WALL}s, $rs_b_hits det)"
    else
        summary_b+=" (rsigma ref failed)"
    fi
fi

log ""
if ((fail)); then overall=FAIL; else overall=PASS; fi
[[ $SKIP_KOBAN == 1 && $fail == 0 ]] && overall="PASS (koban skipped, checks not evaluated)"
echo "hunt-vs-peers: $overall | $summary_a | $summary_b"
exit "$fail"
