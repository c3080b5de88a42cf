#!/usr/bin/env python3
"""Waits for a `koban serve` to detect everything it accepted, then reads its alerts.

usage: collect.py URL CERT ADMIN_TOKEN OUT_DIR [HUNT_JSONL]

Writes OUT_DIR/alerts.jsonl in score.py's format (one line per alert after folding,
its file from OUT_DIR/sources.json) and prints raw detections, alerts and incidents.
With HUNT_JSONL (`koban hunt --format jsonl` over the same files, paths relative to the
data folder), compares the raw detections per (file, rule) with the hunt's and exits 1
when they differ. Koban's own rules (not in the hunt) are counted apart.
"""
import collections
import json
import os
import ssl
import sys
import time
import urllib.request

BUILTIN_PREFIX = "0f3a1c52-6b1e-4d1f-9a55-5a1c0c4e7b0"


def get(ctx, url, admin, path):
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(req, context=ctx, timeout=120) as r:
        return r.read().decode()


def metric(text, name):
    total = 0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def wait_caught_up(ctx, url, admin, limit=1800):
    """Until the pipeline (store and detection) has applied every WAL record, steadily."""
    steady = 0
    for _ in range(limit):
        m = get(ctx, url, admin, "/metrics")
        last, applied = metric(m, "koban_wal_last_seq"), metric(m, "koban_pipeline_applied_seq")
        steady = steady + 1 if last > 0 and applied >= last else 0
        if steady >= 3:
            return m
        time.sleep(1)
    raise SystemExit("the pipeline did not catch up with the WAL")


def main():
    url, cert, admin, out = sys.argv[1:5]
    hunt = sys.argv[5] if len(sys.argv) > 5 else None
    url = url.rstrip("/")
    ctx = ssl.create_default_context(cafile=cert)
    m = wait_caught_up(ctx, url, admin)
    sources = json.load(open(os.path.join(out, "sources.json")))
    summary = json.loads(get(ctx, url, admin, "/api/v1/detections/summary?tenant=replay"))
    alerts, before = [], None
    while True:
        q = "/api/v1/alerts?tenant=replay&limit=10000" + (f"&before={before}" if before else "")
        page = json.loads(get(ctx, url, admin, q))["alerts"]
        if not page:
            break
        alerts += page
        before = page[-1]["id"]
    with open(os.path.join(out, "alerts.jsonl"), "w") as f:
        for a in alerts:
            f.write(json.dumps({"file": sources.get(a["source"], a["source"]),
                                "techniques": a["techniques"], "rule": a["rule"]}) + "\n")
    raw = summary["raw_detections"]
    own = sum(r["count"] for r in summary["by_source_rule"] if r["rule"].startswith(BUILTIN_PREFIX))
    lag_n = metric(m, "koban_detection_lag_ms_count")
    lag = metric(m, "koban_detection_lag_ms_sum") / lag_n if lag_n else 0
    print(f"raw detections: {raw} (Koban's own rules: {own})")
    print(f"alerts after dedup: {summary['alerts']}")
    print(f"incidents after grouping: {summary['incidents']}")
    ratio = raw / summary["incidents"] if summary["incidents"] else 0
    print(f"detections per incident: {ratio:.1f}")
    print(f"detection lag (received -> alert): mean {lag:.0f} ms, max {metric(m, 'koban_detection_lag_ms_max')} ms")
    json.dump({"raw": raw, "alerts": summary["alerts"], "incidents": summary["incidents"],
               "ratio": ratio}, open(os.path.join(out, "figures.json"), "w"))
    if not hunt:
        return
    stream = collections.Counter()
    for r in summary["by_source_rule"]:
        if not r["rule"].startswith(BUILTIN_PREFIX):
            stream[(sources.get(r["source"], r["source"]), r["rule"])] += r["count"]
    offline = collections.Counter()
    for line in open(hunt):
        if line.strip():
            d = json.loads(line)
            offline[(d["file"], d["rule_id"])] += 1
    differ = [(k, stream.get(k, 0), offline.get(k, 0))
              for k in sorted(set(stream) | set(offline)) if stream.get(k, 0) != offline.get(k, 0)]
    total_stream, total_hunt = sum(stream.values()), sum(offline.values())
    if differ:
        print(f"streaming vs hunt: DIFFER on {len(differ)} of {len(set(stream) | set(offline))} "
              f"(file, rule) pairs; streaming {total_stream}, hunt {total_hunt} detections")
        for k, s, h in differ[:20]:
            print(f"  {k[0]} {k[1]}: streaming {s}, hunt {h}")
        sys.exit(1)
    print(f"streaming vs hunt: identical, {len(stream)} (file, rule) pairs, {total_stream} detections")


if __name__ == "__main__":
    main()
