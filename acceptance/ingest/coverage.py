#!/usr/bin/env python3
"""Sends every record of the shared log samples to a running `koban serve` and prints,
per source, records sent / stored / parsed / raw and the raw share, from /metrics.

Called by coverage.sh, which starts the server and passes its URL, CA and admin token
in the environment (KOBAN_URL, KOBAN_CA, KOBAN_ADMIN). Records are cut exactly as
crates/koban-parse/tests/coverage.rs cuts them (the parser's offline coverage figures),
so the two tables can be compared line by line:

- `multi/wazuh_rule_tests/*.ini`: the `log N pass|fail = LINE` values and bare lines,
  not the `rule =`, `alert =`, `decoder =` keys, sections or comments; one source per file;
- `linux_text/`: one source per file (its folders mix formats);
- elsewhere one source per folder; `.gz` and `.zip` members are unpacked here;
  a pretty-printed JSON array is sent as one NDJSON document per element; Zeek TSV
  files are sent whole: their `#` directives are not records (the server takes the
  rows' column names from `#fields`).

Every source gets its own ingest token, so the server's per-source counters
(`koban_events_{stored,parsed,unparsed}_total{source=...}`) answer for it alone.
Text lines and JSON documents both go to `POST /api/v1/ingest`: a line that is one
JSON value is stored as a JSON record, any other line as raw text to be parsed.
"""

import gzip
import io
import json
import os
import re
import ssl
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

URL = os.environ["KOBAN_URL"]
CTX = ssl.create_default_context(cafile=os.environ["KOBAN_CA"])
ADMIN = os.environ["KOBAN_ADMIN"]
DATA = Path(os.environ["KOBAN_DATA_DIR"])
TOPS = ["multi/wazuh_rule_tests", "linux_text", "linux", "web", "network", "cloud"]
BATCH_BYTES = 4 << 20  # well under max_body_bytes (32 MiB)


def not_logs(name):
    """Files that hold no log records (documentation, labels, signature lists)."""
    return (name.lower().endswith(".md") or name == "LICENSE" or name.endswith("-list.txt")
            or name in ("labels.jsonl", "event_counts.tsv", "expected.jsonl"))


def ini_lines(body):
    out = []
    for line in body.split("\n"):
        l = line.rstrip()
        if not l.strip() or l.startswith((";", "#", "[")):
            continue
        if l.startswith("log ") and " = " in l[4:]:
            out.append(l[4:].split(" = ", 1)[1])
            continue
        if l.split("=", 1)[0].strip() in ("rule", "alert", "decoder"):
            continue
        out.append(l)
    return out


def stream_records(body):
    """The records of one log stream (a file or an archive member)."""
    text = body.decode("utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
            if isinstance(items, list):
                return [json.dumps(i, separators=(",", ":")) for i in items]
        except ValueError:
            pass
    # Split on LF only, as the server and the Rust test do (not on \x0b, \x1c, …).
    return text.split("\n")


def file_streams(path):
    """The record streams of one file: the file itself, or each archive member."""
    name = path.name
    raw = path.read_bytes()
    if name.endswith(".gz"):
        return [stream_records(gzip.decompress(raw))]
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            return [stream_records(z.read(m)) for m in z.infolist() if not m.is_dir()]
    if name.endswith(".ini"):
        return [ini_lines(raw.decode("utf-8", errors="replace"))]
    return [stream_records(raw)]


def keep(line):
    """What counts as a record: a non-blank line, as the parser test and the server's
    NDJSON splitter both see it (a lone `\\r` line ending removed)."""
    line = line.rstrip("\r\n")
    return line if line.strip() else None


def sources():
    """{source path: [[lines of one stream]]} in a stable order."""
    out = {}
    for top in TOPS:
        for f in sorted(p for p in (DATA / top).rglob("*") if p.is_file()):
            if not_logs(f.name):
                continue
            rel = f.relative_to(DATA).as_posix()
            src = rel if rel.endswith(".ini") or rel.startswith("linux_text") else str(Path(rel).parent)
            for stream in file_streams(f):
                recs = [r for r in (keep(l) for l in stream) if r is not None]
                out.setdefault(src, []).append(recs)
    return out


def is_zeek_directive(line):
    """A Zeek TSV header or footer line (`#separator`, `#fields`, `#close`, …): sent as
    the file has it (the server takes the columns of the rows from `#fields`), but it
    is not a record, neither for the parser test nor for the server."""
    return line.startswith(("#separator ", "#set_separator\t", "#empty_field\t", "#unset_field\t",
                            "#path\t", "#open\t", "#fields\t", "#types\t", "#close\t"))


def record_count(lines):
    return sum(1 for l in lines if not is_zeek_directive(l))


def source_name(path):
    """An ingest source name (letters, digits, - _ . ; at most 64) for a data path."""
    name = re.sub(r"[^A-Za-z0-9_.-]", ".", path.replace("multi/wazuh_rule_tests/", "wazuh."))
    return name[-64:]


def parser_expectations():
    """The parser test's own lists (crates/koban-parse/tests/coverage.rs), read from
    its source so the two checks cannot drift apart: NO_RAW, the sources of supported
    formats that must not leave a record raw, and RAW_WHY, why the others stay raw."""
    src = (Path(__file__).resolve().parents[2] / "crates/koban-parse/tests/coverage.rs").read_text()
    no_raw = re.search(r"const NO_RAW: &\[&str\] = &\[(.*?)\];", src, re.S).group(1)
    why = re.search(r"const RAW_WHY: &\[\(&str, &str\)\] = &\[(.*?)\];", src, re.S).group(1)
    return (re.findall(r'"([^"]+)"', no_raw),
            re.findall(r'\(\s*"([^"]+)",\s*"([^"]+)",?\s*\)', why))


def call(method, path, body=None, token=None, ctype="application/json"):
    req = urllib.request.Request(URL + path, data=body, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", ctype)
    for attempt in range(60):
        try:
            with urllib.request.urlopen(req, context=CTX, timeout=120) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            # Backpressure answers 429/503 with Retry-After: wait and send again.
            if e.code in (429, 503):
                time.sleep(float(e.headers.get("Retry-After", "1")))
                continue
            raise SystemExit(f"{method} {path}: HTTP {e.code}: {e.read()[:300]!r}")
    raise SystemExit(f"{method} {path}: still refused after 60 tries")


def send(token, files):
    """POSTs the records of each file as NDJSON bodies of about BATCH_BYTES; returns
    the number of records the server says it accepted. A Zeek TSV file cut into
    several bodies gets its header (the directives before the first row) again at the
    top of each: the server reads a row's column names from its own body."""
    accepted = 0
    for lines in files:
        head = []
        while len(head) < len(lines) and is_zeek_directive(lines[len(head)]):
            head.append(lines[len(head)])
        batch, size = list(head), 0
        for line in lines[len(head):]:
            batch.append(line)
            size += len(line) + 1
            if size >= BATCH_BYTES:
                accepted += post(token, batch)
                batch, size = list(head), 0
        if len(batch) > len(head):
            accepted += post(token, batch)
    return accepted


def post(token, lines):
    body = ("\n".join(lines) + "\n").encode()
    return json.loads(call("POST", "/api/v1/ingest", body, token, "application/x-ndjson"))["accepted"]


def metrics():
    """{(metric, source): value} of the default tenant."""
    out = {}
    pat = re.compile(r'^(koban_\w+)\{tenant="default",source="([^"]*)"\} (\d+)$')
    for line in call("GET", "/metrics").decode().splitlines():
        m = pat.match(line)
        if m:
            out[(m.group(1), m.group(2))] = int(m.group(3))
    return out


def main():
    t0 = time.time()
    srcs = sources()
    sent = {path: sum(record_count(f) for f in files) for path, files in srcs.items()}
    total_sent = sum(sent.values())
    print(f"coverage: {len(srcs)} sources, {total_sent} records to send", flush=True)
    names = {}
    for path, recs in srcs.items():
        name = source_name(path)
        assert name not in names.values(), f"source name clash: {name}"
        names[path] = name
        token = json.loads(call("POST", "/api/v1/tokens",
                                json.dumps({"tenant": "default", "source": name}).encode(), ADMIN))["token"]
        acc = send(token, recs)
        if acc != sent[path]:
            raise SystemExit(f"{path}: sent {sent[path]} records, server accepted {acc}")
    t_sent = time.time()
    print(f"sent {total_sent} records in {t_sent - t0:.1f} s; waiting for the store…", flush=True)

    # Commits are batched (about one a second): poll until every source's stored count
    # reaches what was sent, or nothing moves for 15 s.
    last, still = None, 0
    while True:
        m = metrics()
        stored = sum(m.get(("koban_events_stored_total", n), 0) for n in names.values())
        if stored >= total_sent and stored == last:
            break
        still = still + 1 if stored == last else 0
        if still >= 30:
            break
        last = stored
        time.sleep(0.5)
    print(f"store settled after {time.time() - t_sent:.1f} s", flush=True)

    head = f"{'source':<58} {'sent':>7} {'stored':>7} {'parsed':>7} {'raw':>6} {'raw %':>6}"
    print(head)
    tot = [0, 0, 0, 0]
    dropped, not_zero, must_fix = [], [], []
    no_raw, raw_why = parser_expectations()
    for path in srcs:
        n = names[path]
        st = m.get(("koban_events_stored_total", n), 0)
        pa = m.get(("koban_events_parsed_total", n), 0)
        raw = m.get(("koban_events_unparsed_total", n), 0)
        share = 100.0 * raw / max(st, 1)
        print(f"{path:<58} {sent[path]:>7} {st:>7} {pa:>7} {raw:>6} {share:>5.1f}%")
        for i, v in enumerate((sent[path], st, pa, raw)):
            tot[i] += v
        if st != sent[path] or pa + raw != st:
            dropped.append(f"{path} (sent {sent[path]}, stored {st}, parsed+raw {pa + raw})")
        if raw:
            not_zero.append(f"{path} {share:.1f}%")
            why = next((w for k, w in raw_why if k in path), None)
            if why:
                print(f"    why: {why}")
            # One raw record as the store has it, found by the store fields.
            hit = json.loads(call("POST", "/api/v1/search", json.dumps(
                {"tenant": "default", "filters": {"@source": n, "@parsed": "false"}, "limit": 1}).encode(),
                ADMIN))["hits"]
            if hit:
                print(f"    raw: {(hit[0].get('original') or '')[:110]}")
            if path in no_raw:
                must_fix.append(path)
    share = 100.0 * tot[3] / max(tot[1], 1)
    print(f"{'total':<58} {tot[0]:>7} {tot[1]:>7} {tot[2]:>7} {tot[3]:>6} {share:>5.2f}%")
    print(f"sources not 0 % raw ({len(not_zero)}): " + ("; ".join(not_zero) or "none"))
    if dropped:
        print("sources with records missing or counted twice: " + "; ".join(dropped))
    if must_fix:
        print("sources of supported formats with raw records: " + "; ".join(must_fix))
    ok = not dropped and not must_fix
    print(f"coverage: {'PASS' if ok else 'FAIL'} — {len(srcs)} sources, {tot[0]} records sent, "
          f"{tot[1]} stored, {tot[2]} parsed, {tot[3]} raw ({share:.2f}%), "
          f"{len(dropped)} sources short, {len(not_zero)} with raw records "
          f"({len(must_fix)} of a supported format), "
          f"{time.time() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
