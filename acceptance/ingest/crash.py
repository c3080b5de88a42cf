"""Crash test driver (see crash.sh)."""
import collections, random, sys, threading, time
sys.path.insert(0, __import__("os").path.dirname(__file__))
from harness import Server, Ids, Killer, http_sender, syslog_sender, readback

binary, work, events, kills = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
seed = int(sys.argv[5]) if len(sys.argv) > 5 else random.randrange(1 << 30)
random.seed(seed)
DEADLINE = 12 * 60  # the whole run stops by itself
t_start = time.time()

srv = Server(binary, work, backlog_records=200_000)
token = srv.cli("token", "create", "--tenant", "default", "--source", "crash-http")
admin = srv.cli("token", "create", "--admin")
srv.start()
print(f"crash: {events} events, {kills} kills, seed {seed}, https :{srv.https}, syslog/tcp :{srv.tcp}", flush=True)

h = Ids("h", events // 2)
s = Ids("s", events - events // 2)
killer, stop = Killer(), threading.Event()
codes = collections.Counter()
threads = [threading.Thread(target=http_sender, args=(srv, h, token, 500, killer, stop, codes)) for _ in range(2)]
threads += [threading.Thread(target=syslog_sender, args=(srv, s, 2000, killer, stop)) for _ in range(2)]
for t in threads:
    t.start()

kill_log = []
for k in range(kills):
    time.sleep(random.uniform(0.5, 6.0))
    killer.up.clear()
    killer.gen += 1
    srv.kill9()
    kill_log.append((round(time.time() - t_start, 1), h.next + s.next))
    print(f"  kill -9 #{k + 1} at {kill_log[-1][0]}s, {h.next + s.next} ids handed out so far", flush=True)
    time.sleep(random.uniform(0.0, 0.5))
    srv.start()
    killer.up.set()

while any(t.is_alive() for t in threads) and time.time() - t_start < DEADLINE - 180:
    time.sleep(0.5)
if any(t.is_alive() for t in threads):
    print("crash: deadline reached, stopping the senders", flush=True)
    stop.set()
for t in threads:
    t.join()
t_sent = time.time() - t_start
print(f"  senders done at {t_sent:.1f}s; waiting for the backlog to drain", flush=True)
m = srv.wait_drained(max(60, DEADLINE - (time.time() - t_start)))
print(f"  backlog 0 at {time.time() - t_start:.1f}s (applied seq {m['koban_pipeline_applied_seq']:.0f})", flush=True)
fig = readback(srv, admin, [h, s])
# One more kill -9 with nothing left to store, a restart, and a second read-back: the
# replay of the WAL's remaining records must add nothing.
killer.gen += 1
srv.kill9()
srv.start()
srv.wait_drained(120)
again = readback(srv, admin, [h, s])
same = all(again[k] == fig[k] for k in ("stored_ids", "stored_events", "duplicates", "lost"))
print(f"  after a final kill -9 and restart with the store caught up: stored events {again['stored_events']} "
      f"({'unchanged' if same else 'CHANGED'})", flush=True)
fig = again
srv.term()
print(f"http: sent {fig['h_sent']}, acked {fig['h_acked']}, unacked (answer lost at a kill, never re-sent) "
      f"{fig['h_inflight']} of which stored {fig['h_inflight_stored']}, 429/503 answers {codes[429]}/{codes[503]}")
print(f"syslog/tcp: sent {fig['s_sent']}, acked {fig['s_acked']}, in flight at kill {fig['s_inflight']} "
      f"of which stored {fig['s_inflight_stored']}")
print(f"stored ids {fig['stored_ids']}, stored events {fig['stored_events']}, ids stored that were never sent {fig['strangers']}")
if fig["lost_sample"]:
    print(f"lost sample: {fig['lost_sample']}")
if fig["dup_sample"]:
    print(f"duplicate sample: {fig['dup_sample']}")
ok = fig["lost"] == 0 and fig["duplicates"] == 0 and fig["strangers"] == 0 and same
print(f"acked {fig['acked']}, stored {fig['stored_acked']}, duplicates {fig['duplicates']}, lost {fig['lost']}"
      f" — {kills} kills, {time.time() - t_start:.0f}s, {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
