#!/usr/bin/env python3
"""Replays log files into a running `koban serve` over HTTPS, one ingest token per file.

usage: replay.py URL CERT ADMIN_TOKEN DATA_DIR OUT_DIR FILE... (FILE relative to DATA_DIR)

- `.evtx` files go to /api/v1/ingest/evtx whole;
- `.zip` archives are opened and each member posted: JSON lines as NDJSON (in bodies
  of at most 8 MiB), other members (Zeek logs) whole to /api/v1/ingest;
- other files are posted as NDJSON / text.

Each file gets its own source name (`f<N>`), so alerts name the file they came from;
OUT_DIR/sources.json maps them back. 429/503 answers are retried after Retry-After.
Prints one line: files, records posted, seconds.
"""
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
import zipfile

CHUNK = 8 << 20


class Client:
    def __init__(self, url, cert, admin):
        self.url = url.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=cert)
        self.admin = admin

    def call(self, method, path, body=None, token=None, ctype="application/json"):
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        if body is not None:
            headers["Content-Type"] = ctype
        for attempt in range(600):
            req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, context=self.ctx, timeout=300) as r:
                    data = r.read()
                    return json.loads(data) if data else None
            except urllib.error.HTTPError as e:
                if e.code in (429, 503):
                    time.sleep(float(e.headers.get("Retry-After", "1")))
                    continue
                raise SystemExit(f"{method} {path}: HTTP {e.code}: {e.read()[:300]!r}")
        raise SystemExit(f"{method} {path}: still throttled after 600 tries")


def ndjson_bodies(data):
    """Splits NDJSON bytes into bodies of whole lines, each at most CHUNK bytes."""
    start = 0
    while start < len(data):
        end = min(start + CHUNK, len(data))
        if end < len(data):
            nl = data.rfind(b"\n", start, end)
            end = nl + 1 if nl >= start else end
        yield data[start:end]
        start = end


def post_member(client, token, name, data):
    """Posts one file's bytes; returns the number of records sent (lines or 1)."""
    if name.lower().endswith(".evtx"):
        client.call("POST", "/api/v1/ingest/evtx", data, token, "application/octet-stream")
        return 1
    stripped = data.lstrip()
    if stripped.startswith(b"{") or stripped.startswith(b"["):
        n = 0
        for body in ndjson_bodies(data):
            client.call("POST", "/api/v1/ingest", body, token, "application/x-ndjson")
            n += body.count(b"\n")
        return n
    # Text (Zeek TSV with its header, syslog lines): posted whole.
    client.call("POST", "/api/v1/ingest", data, token, "text/plain")
    return data.count(b"\n")


def main():
    url, cert, admin, data_dir, out_dir = sys.argv[1:6]
    files = sys.argv[6:]
    client = Client(url, cert, admin)
    os.makedirs(out_dir, exist_ok=True)
    sources = {}
    posted = 0
    start = time.time()
    for i, rel in enumerate(files):
        source = f"f{i}"
        sources[source] = rel
        token = client.call(
            "POST", "/api/v1/tokens", json.dumps({"tenant": "replay", "source": source}).encode()
        )["token"]
        path = os.path.join(data_dir, rel)
        if rel.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                for m in z.infolist():
                    if not m.is_dir():
                        posted += post_member(client, token, m.filename, z.read(m))
        else:
            with open(path, "rb") as f:
                posted += post_member(client, token, rel, f.read())
    with open(os.path.join(out_dir, "sources.json"), "w") as f:
        json.dump(sources, f, indent=0)
    print(f"replayed {len(files)} files, {posted} records posted in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
