#!/usr/bin/env bash
# Fuzzes the Sigma rule loader, the condition parser, the log reader, the
# one-record ingest parsers (parse_text, parse_json) and the hunting query parser.
#
#   acceptance/fuzz.sh DURATION_SECONDS
#
# Installs cargo-fuzz when missing, prepares seed corpora (under fuzz/corpus, which is
# git-ignored: rule files are copied from shared/ at run time, never committed), runs
# each target for DURATION_SECONDS and prints one line per target. Exits non-zero if
# any target crashed (panic, sanitizer report, timeout or out-of-memory); the input is
# then in fuzz/artifacts/<target>/. Before fuzzing, every committed crash input in
# fuzz/regressions/<target>-<n> is replayed and must no longer crash.
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, -Cpasses=sancov...). The
# toolchain here is stable, so RUSTC_BOOTSTRAP=1 lets it accept them.
#
# Environment: FUZZ_TARGETS (space-separated) picks targets. KOBAN_SHARED (default: ../shared beside the repository, then
# /work/shared) locates the data the seeds come from; without it the targets start
# from the hand-written seeds only.
set -euo pipefail

if [[ $# -ne 1 || ! $1 =~ ^[0-9]+$ || $1 -lt 1 ]]; then
    echo "usage: $0 DURATION_SECONDS" >&2
    exit 2
fi
DURATION=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ="$ROOT/fuzz"
CORPUS="$FUZZ/corpus"
TARGETS=(rule_loader condition log_reader parse_text parse_json wal_segment syslog_framing hunt_query)
ALL_TARGETS=("${TARGETS[@]}")
# FUZZ_TARGETS="a b" runs only those (an issue's own targets).
if [[ -n ${FUZZ_TARGETS:-} ]]; then read -r -a TARGETS <<<"$FUZZ_TARGETS"; fi
export RUSTC_BOOTSTRAP=1

SHARED=${KOBAN_SHARED:-}
if [[ -z $SHARED ]]; then
    for candidate in "$ROOT/../shared" /work/shared; do
        if [[ -d $candidate/data ]]; then
            SHARED=$candidate
            break
        fi
    done
fi
DATA=${SHARED:+$SHARED/data}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

# ---------------------------------------------------------------- seed corpora
mkdir -p "${ALL_TARGETS[@]/#/$CORPUS/}"

# rule_loader: ~200 Sigma rules spread over the whole rule tree (every Nth file of
# the sorted list), plus the rules of the project's own engine test cases, which
# cover filters, collections and correlations.
seed_rules() {
    local dir=$CORPUS/rule_loader
    if [[ -n $DATA && -d $DATA/sigma/rules ]]; then
        local files n step
        mapfile -t files < <(find "$DATA/sigma/rules" -type f -name '*.yml' -size -64k | LC_ALL=C sort)
        n=${#files[@]}
        step=$(( n / 200 > 0 ? n / 200 : 1 ))
        for ((i = 0; i < n; i += step)); do
            cp "${files[i]}" "$dir/sigma-$(basename "${files[i]}")"
        done
    else
        echo "note: no shared/data/sigma/rules; rule_loader starts from the test-case seeds only" >&2
    fi
    local case
    for case in "$ROOT"/crates/koban/tests/cases/*.yml; do
        [[ -f $case ]] || continue
        # The `rules: |` block scalar, de-indented.
        awk '/^rules: *\|/ {on = 1; next}
             on && /^[^ \t#]/ {exit}
             on {sub(/^  /, ""); print}' "$case" >"$dir/case-$(basename "$case")"
    done
    return 0
}

seed_conditions() {
    local dir=$CORPUS/condition i=0 c
    for c in \
        'sel_a' \
        'sel_a and sel_b' \
        'sel_a or sel_b and not filter_1' \
        '(sel_a or sel_b) and not (filter_1 or _x)' \
        '1 of sel_* and not 1 of filter_*' \
        'all of them' \
        'any of sel_?' \
        '2 of sel_* or _x' \
        'not not sel_a' \
        'all of sel_* and not filter_1 | count() > 5' \
        'sel_a and (sel_b' \
        '1 of nothing*'; do
        printf '%s' "$c" >"$dir/seed-$i"
        i=$((i + 1))
    done
}

# log_reader: the first byte picks the file name: low nibble % 5 the extension
# (json, evtx, log, zip, gz), bits 4-6 % 4 the stem (input, dns, conn, auth), bit 7
# zero-pads an EVTX body to whole 64 KiB chunks (so seeds can keep only the used
# part of their chunk and stay under -max_len).
seed_logs() {
    local dir=$CORPUS/log_reader
    seed() { # seed NAME SELECTOR_OCTAL < content
        { printf "\\$2"; cat; } >"$dir/$1"
    }
    printf '{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Image":"C:\\\\x.exe"}\n{"a":[1,{"b":null}]}\n[{"x":"y"}]\n' | seed json-inline 000
    printf '<34>1 2025-10-24T23:41:00Z host sshd 123 - - Failed password for root\ntype=EXECVE msg=audit(1675255174.901:30777): argc=2 a0="ls" a1="-la"\n' | seed text-inline 002
    [[ -n $DATA && -d $DATA ]] || {
        echo "note: no shared/data; log_reader starts from inline seeds only" >&2
        return 0
    }
    local f
    f=$DATA/linux_text/loghub/cloudtrail_records.ndjson
    [[ -f $f ]] && head -n 5 "$f" | seed cloudtrail 000
    f=$DATA/network/suricata/honeypot-2018/eve-alerts.ndjson
    [[ -f $f ]] && head -n 5 "$f" | seed suricata 000
    f=$(find "$DATA/network/zeek" -name '*dns.log' 2>/dev/null | LC_ALL=C sort | sed -n 1p)
    [[ -n $f ]] && head -n 10 "$f" | seed zeek-dns 022 # stem dns, extension log
    for f in loghub/Linux_2k.log loghub/OpenSSH_2k.log loghub/Apache_2k.log auditd/ait_lds_v2_Audit_2k.log; do
        [[ -f $DATA/linux_text/$f ]] && head -n 20 "$DATA/linux_text/$f" | seed "text-$(basename "$f" .log)" 002
    done
    f=$DATA/linux_text/loghub/OpenSSH_2k.log
    [[ -f $f ]] && head -n 20 "$f" | gzip -c | seed gzip 004
    f=$(find "$DATA/linux/mordor_linux" -name '*.zip' -size -4k 2>/dev/null | LC_ALL=C sort | sed -n 1p)
    [[ -n $f ]] && seed zip 003 <"$f"
    # Two small EVTX files: only the header and the used start of the single chunk.
    for f in "Defense Evasion/DE_104_system_log_cleared.evtx" \
             "Defense Evasion/meterpreter_migrate_to_explorer_sysmon_8.evtx"; do
        f=$DATA/windows/evtx/evtx_attack_samples/$f
        [[ -f $f ]] || continue
        head -c 12288 "$f" | seed "evtx-padded-$(basename "$f" .evtx)" 201
        head -c 12288 "$f" | seed "evtx-truncated-$(basename "$f" .evtx)" 001
    done
    return 0
}

# parse_text / parse_json: single records, as the ingest listeners receive them
# (a selector byte first for parse_text: bit 0 announces Zeek columns).
seed_records() {
    local i=0 line
    [[ -n $DATA && -d $DATA ]] || return 0
    for f in loghub/OpenSSH_2k.log loghub/Linux_2k.log loghub/Apache_2k.log auditd/ait_lds_v2_Audit_2k.log; do
        [[ -f $DATA/linux_text/$f ]] || continue
        while IFS= read -r line; do
            { printf '\000'; printf '%s\n' "$line"; } >"$CORPUS/parse_text/seed-$i"
            i=$((i + 1))
        done < <(head -n 5 "$DATA/linux_text/$f")
    done
    for f in "$DATA"/multi/wazuh_rule_tests/*.ini; do
        while IFS= read -r line; do
            { printf '\000'; printf '%s\n' "$line"; } >"$CORPUS/parse_text/seed-$i"
            i=$((i + 1))
        done < <(sed -n 's/^log [0-9]* [a-z]* = //p' "$f" | head -n 3)
    done
    i=0
    for f in network/suricata/honeypot-2018/eve-alerts.ndjson cloud/panther_cloudtrail/cloudtrail_records.ndjson multi/wazuh_rule_tests/owlh.ini; do
        [[ -f $DATA/$f ]] || continue
        while IFS= read -r line; do
            [[ $line == '{'* ]] || continue
            printf '%s' "$line" >"$CORPUS/parse_json/seed-$i"
            i=$((i + 1))
        done < <(sed 's/^log [0-9]* [a-z]* = //' "$DATA/$f" | head -n 5)
    done
    return 0
}

# hunt_query: queries as analysts type them, and a few broken ones.
seed_hunt_queries() {
    local dir=$CORPUS/hunt_query i=0 q
    for q in \
        'EventID=4625 AND (TargetUserName=adm* OR IpAddress=10.0.0.0/8) -Status=0x0 "failed" earliest=-24h | stats count() by IpAddress | sort -count | head 20' \
        'user IN (alice, "bob smith", adm*) port>=1024 port<=0xFFFF | top 5 user' \
        'Image=C:\Windows\System32\cmd.exe NOT CommandLine="*\"whoami\"*" | fields Image, CommandLine' \
        'ip=fe80::/10 OR ip=2001:db8::1 earliest=2023-08-15 latest=2023-08-15T10:00:00Z | timechart span=5m count() by host' \
        '`event data`:x ユーザー=太郎 "ログイン 失敗" | rare 3 @source' \
        'port=1..1024 host.name=* -x!=y | stats count() as n' \
        '(a OR (b AND NOT (c -d))) | head' \
        'user= | stat count(' \
        '"unclosed (a OR'; do
        printf '%s' "$q" >"$dir/seed-$i"
        i=$((i + 1))
    done
}

seed_rules
seed_conditions
seed_hunt_queries
seed_logs
seed_records
# The WAL target: a valid segment header (selector bit 0 adds it) and nothing else;
# the fuzzer grows frames from there.
printf "\001" >"$CORPUS/wal_segment/seed-header-only"
printf "\012<13>one\n11 <13>two\nxy<13>three\r\n" >"$CORPUS/syslog_framing/seed-mixed"

# ---------------------------------------------------------------- build and run
cd "$FUZZ"
echo "building fuzz targets"
mkdir -p "$FUZZ/target"
nice -n 10 cargo fuzz build >"$FUZZ/target/build.log" 2>&1 || {
    tail -n 60 "$FUZZ/target/build.log" >&2
    echo "fuzz: build failed" >&2
    exit 1
}

# The log_reader target writes its input to a file under the temp dir: keep those here.
export TMPDIR=$FUZZ/target/tmp
mkdir -p "$TMPDIR"
LIMITS=(-rss_limit_mb=2048 -max_len=65536 -timeout=25)
BIN=$FUZZ/target/x86_64-unknown-linux-gnu/release
failed=0

# Committed crash inputs (fuzz/regressions/<target>-<n>) must no longer crash.
for r in "$FUZZ"/regressions/*; do
    [[ -f $r ]] || continue
    name=$(basename "$r")
    t=${name%-*}
    if [[ ! -x $BIN/$t ]]; then
        echo "regression $name: no fuzz target named $t" >&2
        failed=1
        continue
    fi
    log=$FUZZ/target/regression-$name.log
    if nice -n 10 "$BIN/$t" "${LIMITS[@]}" "$r" >"$log" 2>&1; then
        echo "regression $name: ok"
    else
        failed=1
        echo "regression $name: CRASH; log: $log"
        grep -E "panicked at|^==[0-9]+==( )?ERROR|SUMMARY:" "$log" | head -n 5 || tail -n 20 "$log"
    fi
done

for t in "${TARGETS[@]}"; do
    log=$FUZZ/target/fuzz-$t.log
    dict=()
    [[ -f $FUZZ/dicts/$t.dict ]] && dict=(-dict="$FUZZ/dicts/$t.dict")
    start=$(date +%s)
    set +e
    nice -n 10 cargo fuzz run "$t" "$CORPUS/$t" -- \
        -max_total_time="$DURATION" "${LIMITS[@]}" "${dict[@]}" \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    secs=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    [[ -n $runs ]] || runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$log" | tail -n 1)
    fsecs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -n 1)
    if [[ $rc -eq 0 ]]; then
        echo "fuzz $t: ${runs:-?} runs in ${fsecs:-$secs}s, no crash"
    else
        failed=1
        echo "fuzz $t: CRASH after ${runs:-?} runs (exit $rc); log: $log"
        # The report: panic message, sanitizer summary, stack and the saved input.
        grep -E "panicked at|^==[0-9]+==( )?ERROR|SUMMARY:|^ +#[0-9]+ .* in (koban|std::panicking|core::panicking)|Test unit written to|^Base64:|Reproduce with" "$log" | head -n 40 || tail -n 40 "$log"
    fi
done
exit "$failed"
