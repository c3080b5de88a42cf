"""Overload test driver (see overload.sh)."""
import collections, os, sys, threading, time
sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, Ids, Killer, http_sender, syslog_sender, readback

binary, work, secs, bound_mb = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
t_start = time.time()
srv = Server(binary, work)  # default backpressure: 2,000,000 records / 1 GiB of WAL backlog
token = srv.cli("token", "create", "--tenant", "default", "--source", "overload-http")
admin = srv.cli("token", "create", "--admin")
srv.start()
print(f"overload: {secs:.0f}s of HTTPS NDJSON (4 connections, 1000 events per request) + syslog/TCP "
      f"(2 connections, 5000 lines per connection), default backpressure; RSS bound {bound_mb} MiB", flush=True)
h, s = Ids("h", 10**9), Ids("s", 10**9)
killer, stop, codes = Killer(), threading.Event(), collections.Counter()
threads = [threading.Thread(target=http_sender, args=(srv, h, token, 1000, killer, stop, codes)) for _ in range(4)]
threads += [threading.Thread(target=syslog_sender, args=(srv, s, 5000, killer, stop)) for _ in range(2)]
for t in threads:
    t.start()
peak_backlog = 0
while time.time() - t_start < secs:
    time.sleep(1)
    try:
        m = srv.metrics()
        peak_backlog = max(peak_backlog, m["koban_wal_backlog_records"])
    except OSError:
        pass
stop.set()
for t in threads:
    t.join()
t_send = time.time() - t_start
acked_now = h.count(h.acked) + s.count(s.acked)
print(f"  sending stopped after {t_send:.1f}s: {acked_now} acked ({acked_now / t_send:,.0f}/s), "
      f"peak WAL backlog {peak_backlog:,.0f} records; draining", flush=True)
m = srv.wait_drained(600)
t_drain = time.time() - t_start
srv.sample_rss()
rss_intake = srv.peak_rss_kb
print(f"  backlog 0 after {t_drain:.1f}s; stored events counter {m['koban_events_stored_total']:.0f} (this run of the server)", flush=True)
fig = readback(srv, admin, [h, s])
srv.sample_rss()
rss_all = srv.peak_rss_kb
srv.term()
print(f"http: acked {fig['h_acked']}, 429 answers {codes[429]}, 503 answers {codes[503]}, "
      f"unanswered {fig['h_inflight']}")
print(f"syslog/tcp: acked {fig['s_acked']}, connections refused/retried {s.retries}, not closed cleanly {fig['s_inflight']}")
print(f"peak RSS (VmHWM) until drained: {rss_intake / 1024:.0f} MiB (bound {bound_mb} MiB); "
      f"including the read-back of {fig['stored_ids']} ids: {rss_all / 1024:.0f} MiB")
if fig["lost_sample"]:
    print(f"lost sample: {fig['lost_sample']}")
ok = fig["lost"] == 0 and fig["duplicates"] == 0 and rss_intake <= bound_mb * 1024
print(f"overload: acked {fig['acked']}, stored {fig['stored_acked']}, lost {fig['lost']}, duplicates {fig['duplicates']}, "
      f"429/503 {codes[429]}/{codes[503]}, peak RSS {rss_intake / 1024:.0f} MiB <= {bound_mb} MiB: "
      f"{'yes' if rss_intake <= bound_mb * 1024 else 'NO'} — {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
