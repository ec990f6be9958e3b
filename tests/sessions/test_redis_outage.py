"""Redis killed and restarted under load.

Two workers share one socket; client threads hammer /session (each with its
own cookie) and / while redis-server is SIGKILLed and restarted on the same
port and dir. Redis runs with appendfsync always, so a write Redis answered
is on disk. Checks: the workers stay up, / keeps answering 200, /session
answers 503 with a clear body during the outage, every session works again
within a second of Redis answering PING, and no acknowledged increment is
lost (each cookie's counter resumes above the last value a client saw).

Each phase lasts until its condition is seen (every client served before the
kill, every client saw the outage, every client served again and both
workers reconnected), not for a fixed time.
"""
import collections
import json
import threading
import time
import unittest

from pylib.http_client import Client
from pylib.redis import Redis
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for
from pylib.workers import listening_socket, start_worker

CLIENTS = 4
ROOT = -1  # the client of /

Sample = collections.namedtuple("Sample", "t kind client counter cookie")


class Load:
    """CLIENTS threads on /session (one keep-alive connection and cookie
    each) and one on /, recording every answer as a Sample."""

    def __init__(self, port, pace=0.002):
        self.port = port
        self.pace = pace
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.samples = []
        self.errors = []
        self.threads = [threading.Thread(target=self._session_loop, args=(n,), daemon=True)
                        for n in range(CLIENTS)]
        self.threads.append(threading.Thread(target=self._root_loop, daemon=True))

    def _add(self, kind, client, counter=None, cookie=None):
        with self.lock:
            self.samples.append(Sample(time.monotonic(), kind, client, counter, cookie))

    def _session_loop(self, n):
        c = Client(self.port, timeout=5)
        while not self.stop.is_set():
            try:
                status, _, body = c.request("/session")
            except OSError as e:
                with self.lock:
                    self.errors.append(f"client {n}: {e!r}")
                self.stop.wait(0.01)
                continue
            if status == 200:
                self._add("ok", n, json.loads(body)["counter"], c.cookie)
            elif status == 503 and b"session store unavailable" in body:
                self._add("503", n, cookie=c.cookie)
            else:
                with self.lock:
                    self.errors.append(f"client {n}: status {status} {body!r}")
            self.stop.wait(self.pace)
        c.close()

    def _root_loop(self):
        c = Client(self.port, timeout=5)
        while not self.stop.is_set():
            try:
                status, _, _ = c.request("/")
                kind = "root" if status == 200 else f"root-bad {status}"
            except OSError as e:
                kind = f"root-error {e!r}"
            self._add(kind, ROOT)
            self.stop.wait(self.pace)
        c.close()

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def snapshot(self):
        with self.lock:
            return list(self.samples)

    def every_client(self, kind, after=0.0, n=1):
        """True when each session client has n samples of `kind` after time
        `after`, and / has been answered after it too."""
        samples = [s for s in self.snapshot() if s.t > after]
        counts = collections.Counter((s.client, s.kind) for s in samples)
        return (all(counts[(c, kind)] >= n for c in range(CLIENTS))
                and any(s.client == ROOT for s in samples))


class RedisOutage(TestCase):

    def test_redis_killed_and_restarted_under_load(self):
        redis = Redis("--appendonly", "yes", "--appendfsync", "always")
        self.addCleanup(redis.close)
        env = {"REDIS_URL": redis.url}
        sock = listening_socket(self)
        port = sock.getsockname()[1]
        workers = [start_worker(self, env, sock=sock, worker_id=str(i)) for i in range(2)]
        for w in workers:
            wait_for(lambda: "redis up" in w.output(), 5, "redis up")
        load = Load(port)
        self.addCleanup(load.finish)
        load.start()
        wait_for(lambda: load.every_client("ok", n=20), 10, "20 answers for each client")

        t_kill = time.monotonic()
        redis.kill()
        wait_for(lambda: load.every_client("503", after=t_kill), 10,
                 "each client to get a 503 from the outage")
        wait_for(lambda: all("redis down" in w.output() for w in workers), 10,
                 "both workers to notice redis is down")
        redis.start()  # same port, same dir: reloads the AOF
        t_back = time.monotonic()  # redis answers PING from here on
        wait_for(lambda: load.every_client("ok", after=t_back, n=5), 10,
                 "5 answers for each client after redis came back")
        wait_for(lambda: all(w.output().count("redis up") >= 2 for w in workers), 10,
                 "both workers to reconnect")
        load.finish()

        self.assertEqual(load.errors[:5], [])
        self.assertTrue(all(w.alive() for w in workers), "a worker died")
        ev = load.snapshot()
        roots_during = [e for e in ev if t_kill < e.t < t_back and e.client == ROOT]
        self.assertTrue(roots_during, "no / request during the outage")
        self.assertEqual([e for e in roots_during if e.kind != "root"], [],
                         "/ failed while redis was down")
        n503 = [e for e in ev if e.kind == "503"]
        self.assertTrue(n503, "no 503 while redis was down")
        self.assertTrue(all(t_kill <= e.t <= t_back + 1.0 for e in n503),
                        "503 outside the outage")
        for n in range(CLIENTS):
            mine = [e for e in ev if e.client == n]
            oks_before = [e for e in mine if e.kind == "ok" and e.t < t_kill]
            oks_after = [e for e in mine if e.kind == "ok" and e.t > t_back]
            self.assertTrue(oks_before and oks_after,
                            f"client {n}: {len(oks_before)}/{len(oks_after)}")
            recovery = oks_after[0].t - t_back
            note(f"client {n}: {len(oks_before)} ok before, first ok "
                 f"{recovery * 1000:.0f} ms after redis came back")
            self.assertLess(recovery, 1.0, f"client {n} recovered after {recovery:.2f}s")
            # The same session continues (not a new one) ...
            self.assertEqual(oks_after[0].cookie, oks_before[0].cookie, "session was lost")
            # ... and every acknowledged increment is still counted.
            acked = max(e.counter for e in mine if e.kind == "ok" and e.t < t_back)
            self.assertGreater(oks_after[0].counter, acked, n)
            values = [e.counter for e in mine if e.kind == "ok"]
            self.assertEqual(values, sorted(values), "counter went back")
            self.assertEqual(len(set(values)), len(values), "counter repeated")
        for w in workers:
            out = w.output()
            self.assertIn("redis down", out)
            self.assertGreaterEqual(out.count("redis up"), 2, out)
        self.assertEqual([w.stop() for w in workers], [0, 0])


if __name__ == "__main__":
    unittest.main()
