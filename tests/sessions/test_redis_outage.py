"""Redis killed and restarted under load.

Two workers share one socket; client threads hammer /session (each with its
own cookie) and / while redis-server is SIGKILLed and restarted on the same
port and dir. Redis runs with appendfsync always, so a write Redis answered
is on disk. Checks: the workers stay up, / keeps answering 200, /session
answers 503 with a clear body during the outage, every session works again
within a second of Redis answering PING, and no acknowledged increment is
lost (each cookie's counter resumes above the last value a client saw).
"""
import json
import threading
import time

import harness as h

CLIENTS = 4


class Load:
    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.events = []  # (time, kind, client, value)
        self.errors = []
        self.threads = []

    def _session_loop(self, n):
        c = h.Client(self.port, timeout=5)
        while not self.stop.is_set():
            try:
                status, _, body = c.request("/session")
            except Exception as e:  # noqa: BLE001
                self.errors.append("client %d: %r" % (n, e))
                time.sleep(0.01)
                continue
            now = time.monotonic()
            with self.lock:
                if status == 200:
                    self.events.append((now, "ok", n,
                                        json.loads(body)["counter"], c.cookie))
                elif status == 503:
                    assert b"session store unavailable" in body, body
                    self.events.append((now, "503", n, None, c.cookie))
                else:
                    self.errors.append("client %d: status %d %r" %
                                       (n, status, body))
            time.sleep(0.002)

    def _root_loop(self):
        c = h.Client(self.port, timeout=5)
        while not self.stop.is_set():
            try:
                status, _, _ = c.request("/")
                kind = "root" if status == 200 else "root-bad"
            except Exception as e:  # noqa: BLE001
                kind = "root-error %r" % e
            with self.lock:
                self.events.append((time.monotonic(), kind, -1, None, None))
            time.sleep(0.005)

    def start(self):
        for n in range(CLIENTS):
            self.threads.append(threading.Thread(target=self._session_loop,
                                                 args=(n,), daemon=True))
        self.threads.append(threading.Thread(target=self._root_loop,
                                             daemon=True))
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def test_redis_killed_and_restarted_under_load():
    with h.Redis("--appendonly", "yes", "--appendfsync", "always") as redis:
        env = {"REDIS_URL": "redis://127.0.0.1:%d/0" % redis.port}
        sock = h.listening_socket()
        port = sock.getsockname()[1]
        workers = [h.start_worker(env, sock=sock, worker_id=str(i))
                   for i in range(2)]
        for w in workers:
            h.wait_for(lambda: "redis up" in w.output(), 5, "redis up")
        load = Load(port)
        load.start()
        time.sleep(1.0)
        t_kill = time.monotonic()
        redis.kill()
        time.sleep(1.5)
        redis.start()  # same port, same dir: reloads the AOF
        t_back = time.monotonic()  # redis answers PING from here on
        time.sleep(2.0)
        load.finish()

        assert not load.errors, load.errors[:5]
        assert all(w.alive() for w in workers), "a worker died"
        ev = load.events
        roots_during = [e for e in ev if t_kill < e[0] < t_back and
                        e[1].startswith("root")]
        assert roots_during and all(e[1] == "root" for e in roots_during), \
            "/ failed while redis was down: %r" % roots_during[:3]
        n503 = [e for e in ev if e[1] == "503"]
        assert n503, "no 503 while redis was down"
        assert all(t_kill <= e[0] <= t_back + 1.0 for e in n503), \
            "503 outside the outage"
        for n in range(CLIENTS):
            mine = [e for e in ev if e[2] == n]
            oks_before = [e for e in mine if e[1] == "ok" and e[0] < t_kill]
            oks_after = [e for e in mine if e[1] == "ok" and e[0] > t_back]
            assert oks_before and oks_after, "client %d: %d/%d" % (
                n, len(oks_before), len(oks_after))
            recovery = oks_after[0][0] - t_back
            print("  client %d: %d ok before, first ok %.0f ms after redis "
                  "came back" % (n, len(oks_before), recovery * 1000))
            assert recovery < 1.0, "client %d recovered after %.2fs" % (
                n, recovery)
            # The same session continues (not a new one) ...
            assert oks_after[0][4] == oks_before[0][4], "session was lost"
            # ... and every acknowledged increment is still counted.
            acked = max(e[3] for e in mine if e[1] == "ok" and e[0] < t_back)
            assert oks_after[0][3] > acked, (n, acked, oks_after[0][3])
            values = [e[3] for e in mine if e[1] == "ok"]
            assert values == sorted(values) and len(set(values)) == \
                len(values), "counter went back or repeated"
        for w in workers:
            out = w.output()
            assert "redis down" in out and out.count("redis up") >= 2, out
        assert [h.stop_worker(w) for w in workers] == [0, 0]


if __name__ == "__main__":
    h.run([test_redis_killed_and_restarted_under_load])
