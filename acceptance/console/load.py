#!/usr/bin/env python3
"""Console render latency with many alerts stored.

usage: load.py URL CERT ADMIN_TOKEN USER PASSWORD ALERTS REQUESTS

Sends ALERTS synthetic Sysmon process events (whoami.exe, each with its own account,
spread over 1000 hosts) to tenant `load` so that each becomes its own alert, waits
until all are detected, then logs in as USER and fetches each console page REQUESTS
times, printing p50/p99 latency per page.
"""
import json
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from collect import wait_caught_up


def main():
    url, cert, admin, user, password = sys.argv[1:6]
    n, reqs = int(sys.argv[6]), int(sys.argv[7])
    url = url.rstrip("/")
    ctx = ssl.create_default_context(cafile=cert)

    def call(method, path, body=None, headers=None, token=admin):
        h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        h.update(headers or {})
        req = urllib.request.Request(url + path, data=body, method=method, headers=h)
        with urllib.request.urlopen(req, context=ctx, timeout=300) as r:
            return r.read()

    try:
        call("POST", "/api/v1/tenants", json.dumps({"name": "load"}).encode())
    except urllib.error.HTTPError as e:
        if e.code != 409:
            raise
    token = json.loads(call("POST", "/api/v1/tokens", json.dumps({"tenant": "load", "source": "sysmon"}).encode()))["token"]
    start = time.time()
    batch = []
    for i in range(n):
        batch.append(json.dumps({
            "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Computer": f"ws{i % 1000:04d}.load.example", "User": f"LOAD\\user{i:06d}",
            "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all",
            "ParentImage": "C:\\Windows\\System32\\cmd.exe",
            "UtcTime": f"2026-11-30 {i % 24:02d}:{(i // 24) % 60:02d}:{i % 60:02d}.000"}))
        if len(batch) == 5000 or i == n - 1:
            for attempt in range(100):
                try:
                    call("POST", "/api/v1/ingest", ("\n".join(batch) + "\n").encode(), token=token)
                    break
                except urllib.error.HTTPError as e:
                    if e.code not in (429, 503):
                        raise
                    time.sleep(1)
            batch = []
    wait_caught_up(ctx, url, admin)
    stored = json.loads(call("GET", "/api/v1/detections/summary?tenant=load"))
    print(f"load: {n} events sent, {stored['alerts']} alerts and {stored['incidents']} incidents of tenant load "
          f"stored in {time.time() - start:.0f}s")
    total = json.loads(call("GET", "/api/v1/alerts?limit=1"))  # newest id = number of alerts overall
    print(f"load: {total['alerts'][0]['id']} alerts stored in all")

    # Log in like a browser: the session cookie comes back on the redirect.
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), NoRedirect)
    form = urllib.parse.urlencode({"user": user, "password": password}).encode()
    try:
        opener.open(urllib.request.Request(url + "/login", data=form, method="POST"))
        raise SystemExit("login did not redirect")
    except urllib.error.HTTPError as e:
        cookie = e.headers["Set-Cookie"].split(";")[0]
    incident = json.loads(call("GET", "/api/v1/incidents?tenant=load&limit=1"))["incidents"][0]["id"]
    pages = ["/alerts", "/alerts?tenant=load&verdict=none", f"/incidents/{incident}", "/incidents", "/dashboard"]
    worst = 0.0
    for p in pages:
        times = []
        for _ in range(reqs):
            t0 = time.perf_counter()
            req = urllib.request.Request(url + p, headers={"Cookie": cookie})
            with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
                body = r.read()
                assert r.status == 200, (p, r.status)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
        worst = max(worst, p99)
        print(f"render {p}: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(body)} bytes, {reqs} requests)")
    print(f"render worst p99: {worst:.1f} ms")


if __name__ == "__main__":
    main()
