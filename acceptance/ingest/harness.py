"""Shared pieces of the ingest acceptance checks and the ingest benchmark: a `koban serve`
under our control (start, kill -9, restart on the same data dir, RSS sampling), the
senders (HTTP NDJSON batches, syslog/TCP connections) that record what the server
acknowledged, and the read-back of every stored test id through `/api/v1/search`.

What counts as acknowledged:
- HTTP: the ids of a batch whose `POST /api/v1/ingest` was answered 200 (the server
  answers only once the batch is durable in the WAL). 429/503 means "not taken": the
  same batch is sent again. A batch whose answer was lost (connection broken, server
  killed) has unknown fate: it is never re-sent and counts as "in flight at kill".
- syslog/TCP: there is no app-level ack; a record is taken once the server has read it
  (it reads more only after the append is durable). A connection sends a bounded chunk
  of lines, half-closes (SHUT_WR) and waits for the server's close: the server closes
  only after it read EOF, i.e. after every line before it was appended. A FIN caused by
  a kill looks the same, so the driver bumps a kill generation *before* each kill -9 and
  a chunk counts as acked only if no kill happened between its connect and the close.
  Every other chunk is "in flight at kill" (unknown fate, never re-sent).
"""

import collections
import http.client
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import threading
import time

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, binary, work, backlog_records=2_000_000, backlog_bytes=1 << 30, fsync="always"):
        self.bin = binary
        self.work = work
        self.https = free_port()
        self.tcp = free_port()
        self.conf = os.path.join(work, "koban.toml")
        with open(self.conf, "w") as f:
            f.write(f"""[server]
https = "127.0.0.1:{self.https}"
data_dir = "{work}/data"
[syslog.udp]
listen = "off"
[syslog.tcp]
listen = "127.0.0.1:{self.tcp}"
[syslog.tls]
listen = "off"
[wal]
fsync = "{fsync}"
segment_mb = {os.environ.get("SEGMENT_MB", "64")}
[backpressure]
max_backlog_records = {backlog_records}
max_backlog_bytes = {backlog_bytes}
retry_after_secs = 1
""")
        self.proc = None
        self.starts = 0
        self.peak_rss_kb = 0
        self._sampler = None
        self._stop_sampler = threading.Event()

    def cli(self, *args):
        out = subprocess.run([self.bin, "--config", self.conf, *args], check=True,
                             capture_output=True, text=True).stdout
        return out.strip().splitlines()[-1].strip()

    def start(self, timeout=60):
        self.starts += 1
        out = open(os.path.join(self.work, f"out.{self.starts}.txt"), "w")
        err = open(os.path.join(self.work, f"err.{self.starts}.txt"), "w")
        self.proc = subprocess.Popen([self.bin, "--config", self.conf, "serve"], stdout=out,
                                     stderr=err, env={**os.environ, "KOBAN_LOG": os.environ.get("KOBAN_LOG", "warn")})
        with open(os.path.join(self.work, "server.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")
        path = os.path.join(self.work, f"out.{self.starts}.txt")
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"koban serve exited with {self.proc.returncode}; see {err.name}")
            with open(path) as f:
                if any(l.startswith("listening:") for l in f):
                    self._start_sampler()
                    return
            time.sleep(0.05)
        raise RuntimeError("koban serve did not start listening")

    def _start_sampler(self):
        self._stop_sampler = threading.Event()
        proc, stop = self.proc, self._stop_sampler

        def sample():
            while not stop.is_set():
                self.sample_rss(proc)
                stop.wait(0.1)
        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def sample_rss(self, proc=None):
        proc = proc or self.proc
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            pass

    def kill9(self):
        self.sample_rss()
        self._stop_sampler.set()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._forget_pid()

    def _forget_pid(self):
        try:
            os.remove(os.path.join(self.work, "server.pid"))
        except FileNotFoundError:
            pass

    def term(self, timeout=120):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.sample_rss()
        self._stop_sampler.set()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._forget_pid()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def request(self, method, path, body=None, headers=None, timeout=300):
        c = http.client.HTTPSConnection("127.0.0.1", self.https, context=CTX, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def metrics(self):
        status, body = self.request("GET", "/metrics", timeout=30)
        out = collections.defaultdict(float)
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            out[name.split("{", 1)[0]] += float(value)
        return out

    def wait_drained(self, timeout):
        """Waits until the WAL backlog is 0 (everything durable is applied to the store)."""
        t0 = time.time()
        last = None
        while time.time() - t0 < timeout:
            try:
                m = self.metrics()
                last = m
                if m["koban_wal_backlog_records"] == 0:
                    return m
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"backlog not drained after {timeout}s: {dict(last or {})}")

    def search(self, admin, query):
        status, data = self.request("POST", "/api/v1/search", json.dumps(query).encode(),
                                    {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
        if status != 200:
            raise RuntimeError(f"search answered {status}: {data[:300]!r}")
        return json.loads(data)

    def count_ids(self, admin, prefix, upto, field="koban_test_id"):
        """Every stored value of `field` among ids `{prefix}-000000000` .. `upto`, with its
        number of stored events: count_by over blocks of 100,000 ids (a wildcard filter
        per block), so no one answer — and no server-side group table — gets large."""
        out = {}
        for block in range((upto + 99_999) // 100_000):
            q = {"tenant": "default", "count_by": field, "limit": 0,
                 "filters": {field: f"{prefix}-{block:04d}*"}}
            for g in self.search(admin, q)["groups"]:
                out[g["value"]] = out.get(g["value"], 0) + g["count"]
        return out

    def total_events(self, admin):
        return self.search(admin, {"tenant": "default", "limit": 0})["total"]


class Ids:
    """Hands out unique ids in chunks; remembers what was acked and what is unknown."""

    def __init__(self, prefix, total):
        self.prefix, self.total = prefix, total
        self.next = 0
        self.lock = threading.Lock()
        self.acked = []        # ranges (start, end)
        self.unknown = []      # ranges in flight at a kill
        self.retries = 0       # 429/503 answers (HTTP) or refused connects (TCP)

    def take(self, n):
        with self.lock:
            if self.next >= self.total:
                return None
            a, self.next = self.next, min(self.total, self.next + n)
            return a, self.next

    def ack(self, r):
        with self.lock:
            self.acked.append(r)

    def lost_fate(self, r):
        with self.lock:
            self.unknown.append(r)

    def names(self, ranges):
        return {f"{self.prefix}-{i:09d}" for a, b in ranges for i in range(a, b)}

    def count(self, ranges):
        return sum(b - a for a, b in ranges)


HTTP_DOC = ('{{"@timestamp":"2025-10-24T23:41:{s:02d}.{ms:03d}Z","koban_test_id":"{id}",'
            '"host":{{"name":"web{h:02d}"}},"event":{{"dataset":"nginx.access"}},'
            '"message":"10.1.{h}.{s} - - GET /api/v1/items/{n} HTTP/1.1 200 {ms} \\"curl/8.5.0\\""}}\n')


def http_body(ids, a, b):
    return "".join(HTTP_DOC.format(id=f"{ids.prefix}-{i:09d}", n=i, s=i % 60, ms=i % 1000, h=i % 17)
                   for i in range(a, b)).encode()


SYSLOG_LINE = ('<189>date=2025-10-24 time=23:41:{s:02d} devname="fw{h:02d}" devid="FGT60E{h:04d}" '
               'logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" '
               'srcip=10.0.{h}.{s} srcport={sp} srcintf="port1" dstip=192.0.2.{h} dstport=443 '
               'dstintf="wan1" proto=6 action="accept" policyid=7 service="HTTPS" '
               'sentbyte={n} rcvdbyte=4242 koban_test_id={id}\n')


def syslog_body(ids, a, b):
    return "".join(SYSLOG_LINE.format(id=f"{ids.prefix}-{i:09d}", n=i, s=i % 60, h=i % 17,
                                      sp=1024 + i % 60000) for i in range(a, b)).encode()


class Killer:
    """The kill generation: bumped before every kill -9 so a sender can tell whether a
    close it saw might have come from a kill."""

    def __init__(self):
        self.gen = 0
        self.up = threading.Event()
        self.up.set()


def http_sender(srv, ids, token, batch, killer, stop, retry_codes):
    hdr = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    conn = None
    while not stop.is_set():
        r = ids.take(batch)
        if r is None:
            return
        body = http_body(ids, *r)
        while not stop.is_set():
            killer.up.wait()
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection("127.0.0.1", srv.https, context=CTX, timeout=120)
                    conn.connect()
            except OSError:
                conn = None
                time.sleep(0.1)
                continue  # nothing sent yet: safe to try again
            try:
                conn.request("POST", "/api/v1/ingest", body=body, headers=hdr)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                # The request may or may not have reached the WAL: unknown fate.
                conn.close()
                conn = None
                ids.lost_fate(r)
                break
            if resp.status == 200:
                ids.ack(r)
                break
            if resp.status in (429, 503):
                retry_codes[resp.status] += 1
                ids.retries += 1
                time.sleep(float(resp.getheader("Retry-After") or 1) * random.uniform(0.2, 1.0))
                continue
            raise RuntimeError(f"ingest answered {resp.status}")
    if conn:
        conn.close()


def syslog_sender(srv, ids, chunk, killer, stop):
    while not stop.is_set():
        r = ids.take(chunk)
        if r is None:
            return
        body = syslog_body(ids, *r)
        while not stop.is_set():
            killer.up.wait()
            gen = killer.gen
            try:
                s = socket.create_connection(("127.0.0.1", srv.tcp), timeout=5)
            except OSError:
                ids.retries += 1
                time.sleep(0.1)
                continue  # nothing sent: safe to try again
            try:
                s.settimeout(300)
                s.sendall(body)
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
                ok = killer.gen == gen
            except OSError:
                ok = False
            finally:
                s.close()
            (ids.ack if ok else ids.lost_fate)(r)
            break


def readback(srv, admin, sets):
    """Compares stored ids with what each sender acked. Returns a dict of figures."""
    stored = {}
    for ids in sets:
        stored.update(srv.count_ids(admin, ids.prefix, ids.next))
    fig = {"stored_ids": len(stored), "stored_events": sum(stored.values()),
           "duplicates": sum(1 for c in stored.values() if c > 1)}
    acked_all, unknown_all = set(), set()
    for ids in sets:
        acked, unknown = ids.names(ids.acked), ids.names(ids.unknown)
        k = ids.prefix
        fig[f"{k}_acked"] = len(acked)
        fig[f"{k}_lost"] = sum(1 for i in acked if i not in stored)
        fig[f"{k}_dup"] = sum(1 for i in acked | unknown if stored.get(i, 0) > 1)
        fig[f"{k}_inflight"] = len(unknown)
        fig[f"{k}_inflight_stored"] = sum(1 for i in unknown if i in stored)
        fig[f"{k}_sent"] = ids.next
        acked_all |= acked
        unknown_all |= unknown
    known = acked_all | unknown_all
    fig["acked"] = len(acked_all)
    fig["lost"] = sum(1 for i in acked_all if i not in stored)
    fig["stored_acked"] = sum(1 for i in acked_all if i in stored)
    # Events stored that no sender handed out: ids in a block that were never sent, and
    # anything else in the tenant (the total count covers what the blocks cannot see).
    fig["total_events"] = srv.total_events(admin)
    fig["strangers"] = sum(1 for i in stored if i not in known) + fig["total_events"] - fig["stored_events"]
    fig["lost_sample"] = sorted(i for i in acked_all if i not in stored)[:5]
    fig["dup_sample"] = sorted(i for i, c in stored.items() if c > 1)[:5]
    return fig
