#!/usr/bin/env python3
"""Retro-hunts a replayed tenant and compares its detections with `koban hunt`.

usage: retro_compare.py URL CERT ADMIN_TOKEN OUT_DIR HUNT_JSONL [TENANT]

OUT_DIR holds replay.py's sources.json (source name -> file). POSTs /api/v1/retrohunt
for TENANT (default `replay`) with every enabled rule, reads the streamed report, and
compares its raw detections per (file, rule) with HUNT_JSONL (`koban hunt --format
jsonl` over the same files); Koban's own rules (not in the hunt) are left out.

Never twice: the tenant was detected live first, so a new alert may only come from a
(source, rule) the live stage never detected; a second retro-hunt must alert nothing
and fold nothing. Prints the figures and exits 1 when any of this fails.
"""
import collections
import json
import os
import ssl
import sys
import time
import urllib.request

BUILTIN_PREFIX = "0f3a1c52-6b1e-4d1f-9a55-5a1c0c4e7b0"


def retro_hunt(ctx, url, admin, tenant):
    """One retro-hunt over the API: (report, seconds, progress lines)."""
    req = urllib.request.Request(
        url.rstrip("/") + "/api/v1/retrohunt", method="POST",
        data=json.dumps({"tenant": tenant}).encode(),
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
    start = time.time()
    report, progress_lines = None, 0
    with urllib.request.urlopen(req, context=ctx, timeout=3600) as r:
        for line in r:
            m = json.loads(line)
            if "progress" in m:
                progress_lines += 1
            elif "report" in m:
                report = m["report"]
            elif "error" in m:
                raise SystemExit(f"retro-hunt failed: {m['error']}")
    if report is None:
        raise SystemExit("retro-hunt stream ended without a report")
    return report, time.time() - start, progress_lines


def main():
    url, cert, admin, out, hunt = sys.argv[1:6]
    tenant = sys.argv[6] if len(sys.argv) > 6 else "replay"
    ctx = ssl.create_default_context(cafile=cert)
    sources = json.load(open(os.path.join(out, "sources.json")))
    live_req = urllib.request.Request(
        url.rstrip("/") + f"/api/v1/detections/summary?tenant={tenant}",
        headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(live_req, context=ctx, timeout=120) as r:
        live = {(x["source"], x["rule"]) for x in json.loads(r.read())["by_source_rule"]}
    report, took, progress_lines = retro_hunt(ctx, url, admin, tenant)
    retro = collections.Counter()
    for source, rules in report["per_source_rule"].items():
        for rule, n in rules.items():
            if not rule.startswith(BUILTIN_PREFIX):
                retro[(sources.get(source, source), rule)] += n
    offline = collections.Counter()
    for line in open(hunt):
        if line.strip():
            d = json.loads(line)
            offline[(d["file"], d["rule_id"])] += 1
    print(f"retro-hunt: {report['events']} stored events, {report['rules']} rules, "
          f"{report['detections']} detections in {took:.1f} s ({progress_lines} progress lines); "
          f"new alerts {report['new_alerts']}, already alerted {report['already_alerted']}, "
          f"folded {report['folded']}")
    json.dump(report, open(os.path.join(out, "retro-report.json"), "w"))
    unseen = sum(n for source, rules in report["per_source_rule"].items()
                 for rule, n in rules.items() if (source, rule) not in live)
    again, _, _ = retro_hunt(ctx, url, admin, tenant)
    twice = again["new_alerts"] + again["folded"]
    ok_twice = report["new_alerts"] <= unseen and twice == 0
    print(f"never twice: {'ok' if ok_twice else 'FAILED'}; first run {report['new_alerts']} new alerts, "
          f"all from the {unseen} detections of (source, rule) pairs the live stage never detected; "
          f"second run {again['detections']} detections, {again['already_alerted']} already alerted, "
          f"{again['new_alerts']} new alerts, {again['folded']} folded")
    keys = set(retro) | set(offline)
    differ = [(k, retro.get(k, 0), offline.get(k, 0)) for k in sorted(keys)
              if retro.get(k, 0) != offline.get(k, 0)]
    if differ:
        print(f"retro-hunt vs hunt: DIFFER on {len(differ)} of {len(keys)} (file, rule) pairs; "
              f"retro {sum(retro.values())}, hunt {sum(offline.values())} detections")
        for k, a, b in differ[:20]:
            print(f"  {k[0]} {k[1]}: retro {a}, hunt {b}")
        sys.exit(1)
    print(f"retro-hunt vs hunt: identical, {len(retro)} (file, rule) pairs, "
          f"{sum(retro.values())} detections")
    if not ok_twice:
        sys.exit(1)


if __name__ == "__main__":
    main()
