"""Sessions continue across worker processes; HTTP behaviour of corral-worker.

Several corral-worker processes share one listening socket (fd 3,
LISTEN_FDS=1, LISTEN_PID=own pid, exactly as corral-agent passes it), plus a
variant with workers alone on their own ports, visited in turn, so that every
worker serves part of one session.
"""
import concurrent.futures
import json
import socket
import unittest

from pylib.http_client import Client, get, wait_http
from pylib.redis import Redis
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for
from pylib.workers import listening_socket, start_worker


def wait_redis_up(port):
    """Waits until the worker on port says in /healthz that Redis is up."""
    wait_http(port, contains=b'"redis":"up"')


def _raw(port, data, timeout=3):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out


class CrossWorker(TestCase):

    def workers_on_ports(self, redis, n):
        """n workers alone, each on a port it bound (PORT=0)."""
        env = {"REDIS_URL": redis.url}
        workers = [start_worker(self, env, worker_id=str(i)) for i in range(n)]
        ports = [w.own_port() for w in workers]
        for p in ports:
            wait_redis_up(p)
        return ports, workers

    def test_one_cookie_100_requests_round_robin_over_3_workers(self):
        with Redis() as redis:
            ports, workers = self.workers_on_ports(redis, 3)
            cookie = None
            pids = set()
            for i in range(100):
                c = Client(ports[i % 3], cookie)
                status, headers, body = c.request("/session")
                c.close()
                self.assertEqual(status, 200, (status, body))
                doc = json.loads(body)
                if cookie is None:
                    cookie = c.cookie
                    self.assertIs(doc["new"], True)
                    sc = headers["Set-Cookie"]
                    self.assertTrue("HttpOnly" in sc and "SameSite=Lax" in sc, sc)
                    self.assertNotIn("Secure", sc, sc)
                else:
                    self.assertIs(doc["new"], False, doc)
                self.assertEqual(doc["counter"], i + 1, (i, doc))
                pids.add(doc["pid"])
            self.assertEqual(pids, {w.pid for w in workers}, pids)

    def test_concurrent_requests_with_one_cookie_lose_nothing(self):
        with Redis() as redis:
            ports, _ = self.workers_on_ports(redis, 3)
            _, headers, _ = get(ports[0], "/session")
            cookie = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]

            def one(i):
                return json.loads(get(ports[i % 3], "/session", cookie)[2])

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                docs = list(pool.map(one, range(100)))
            counters = sorted(d["counter"] for d in docs)
            self.assertEqual(counters, list(range(2, 102)), counters)  # each value once
            self.assertTrue(all(not d["new"] for d in docs))
            self.assertEqual(json.loads(get(ports[1], "/session", cookie)[2])["counter"], 102)

    def test_shared_socket_workers_continue_one_session(self):
        with Redis() as redis:
            env = {"REDIS_URL": redis.url}
            sock = listening_socket(self)
            port = sock.getsockname()[1]
            workers = [start_worker(self, env, sock=sock, worker_id=str(i))
                       for i in range(3)]
            wait_redis_up(port)
            for w in workers:
                wait_for(lambda: "redis up" in w.output(), 5,
                           "worker %s to reach redis" % w.pid)
            _, headers, _ = get(port, "/session")
            cookie = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]

            def one(_):
                return json.loads(get(port, "/session", cookie)[2])

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                docs = list(pool.map(one, range(99)))
            self.assertEqual(sorted(d["counter"] for d in docs), list(range(2, 101)))
            served = {d["pid"] for d in docs}
            self.assertLessEqual(served, {w.pid for w in workers}, served)
            note(f"pids that served: {sorted(served)}")
            self.assertTrue(all(w.alive() for w in workers))

    def test_malformed_cookie_starts_a_new_session(self):
        with Redis() as redis:
            ports, _ = self.workers_on_ports(redis, 1)
            for bad in ["garbage", "A" * 43, "x" * 4000, "%00%ff",
                        "'; DROP TABLE", "a=b=c"]:
                status, headers, body = get(ports[0], "/session", bad)
                self.assertEqual(status, 200, (bad, status, body))
                doc = json.loads(body)
                self.assertTrue(doc["new"] is True and doc["counter"] == 1, doc)
                self.assertIn("Set-Cookie", headers)
            # Nothing derived from the bad cookies reached Redis as a key.
            keys = redis.cmd("KEYS", "*")
            self.assertEqual(len(keys), 6, keys)
            self.assertTrue(all(k.startswith(b"corral:sess:") and len(k) == 12 + 64
                                for k in keys), keys)

    def test_secure_cookie_when_asked(self):
        with Redis() as redis:
            w = start_worker(self, {"REDIS_URL": f"redis://127.0.0.1:{redis.port}"},
                             args=["--secure-cookie"])
            port = w.own_port()
            wait_redis_up(port)
            _, headers, _ = get(port, "/session")
            self.assertIn("; Secure", headers["Set-Cookie"], headers)

    def test_rotate_and_logout(self):
        with Redis() as redis:
            ports, _ = self.workers_on_ports(redis, 2)
            c = Client(ports[0])
            c.request("/session")
            c.request("/session")
            old = c.cookie
            status, _, _ = c.request("/session/rotate", "POST")
            self.assertTrue(status == 200 and c.cookie != old)
            self.assertEqual(json.loads(get(ports[1], "/session", c.cookie)[2])["counter"], 3)
            self.assertIs(json.loads(get(ports[1], "/session", old)[2])["new"], True)
            status, _, _ = c.request("/session", "DELETE")
            self.assertTrue(status == 200 and c.cookie is None)
            self.assertIs(json.loads(get(ports[0], "/session", old)[2])["new"], True)

    def test_http_errors_never_crash_the_worker(self):
        with Redis() as redis:
            ports, workers = self.workers_on_ports(redis, 1)
            port = ports[0]
            self.assertEqual(get(port, "/")[0], 200)
            self.assertIn(b"pid %d" % workers[0].pid, get(port, "/")[2])
            self.assertEqual(get(port, "/nope")[0], 404)
            self.assertEqual(get(port, "/heavy?n=abc")[0], 400)
            self.assertEqual(get(port, "/heavy?n=-1")[0], 400)
            self.assertEqual(get(port, "/heavy?n=99999999999999")[0], 400)
            self.assertEqual(json.loads(get(port, "/heavy?n=1000")[2])["n"], 1000)
            self.assertEqual(Client(port).request("/", "POST")[0], 405)
            big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + \
                b"\r\n\r\n"
            self.assertTrue(_raw(port, big).startswith(b"HTTP/1.1 431"), _raw(port, big)[:80])
            self.assertTrue(_raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400"))
            self.assertTrue(_raw(port, b"GET / HTTP/9.9\r\n\r\n").startswith(b"HTTP/1.1 400"))
            self.assertTrue(_raw(port, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"
                                 ).startswith(b"HTTP/1.1 400"))
            huge_body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + \
                b"999999999\r\n\r\n"
            self.assertTrue(_raw(port, huge_body).startswith(b"HTTP/1.1 413"))
            # Half a request, then the client vanishes.
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"GET / HTT")
            # Pipelined requests are answered in order.
            two = _raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertTrue(two.count(b"HTTP/1.1 200") == 1 and b"HTTP/1.1 404" in two, two)
            self.assertEqual(get(port, "/healthz")[0], 200)
            self.assertTrue(workers[0].alive())


if __name__ == "__main__":
    unittest.main()
