"""Sessions continue across worker processes; HTTP behaviour of corral-worker.

Several corral-worker processes share one listening socket (fd 3,
LISTEN_FDS=1, LISTEN_PID=own pid, exactly as corral-agent passes it), plus a
variant with workers alone on their own ports, visited in turn, so that every
worker serves part of one session.
"""
import concurrent.futures
import json
import socket
import time

import harness as h


def _workers_on_ports(redis, n):
    env = {"REDIS_URL": "redis://127.0.0.1:%d/0" % redis.port}
    ports = [h.free_port() for _ in range(n)]
    workers = [h.start_worker(env, port=p, worker_id=str(i))
               for i, p in enumerate(ports)]
    for p in ports:
        h.wait_redis_up(p)
    return ports, workers


def test_one_cookie_100_requests_round_robin_over_3_workers():
    with h.Redis() as redis:
        ports, workers = _workers_on_ports(redis, 3)
        cookie = None
        pids = set()
        for i in range(100):
            c = h.Client(ports[i % 3], cookie)
            status, headers, body = c.request("/session")
            c.close()
            assert status == 200, (status, body)
            doc = json.loads(body)
            if cookie is None:
                cookie = c.cookie
                assert doc["new"] is True
                sc = headers["Set-Cookie"]
                assert "HttpOnly" in sc and "SameSite=Lax" in sc, sc
                assert "Secure" not in sc, sc
            else:
                assert doc["new"] is False, doc
            assert doc["counter"] == i + 1, (i, doc)
            pids.add(doc["pid"])
        assert pids == {w.pid for w in workers}, pids


def test_concurrent_requests_with_one_cookie_lose_nothing():
    with h.Redis() as redis:
        ports, _ = _workers_on_ports(redis, 3)
        _, headers, _ = h.get(ports[0], "/session")
        cookie = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]

        def one(i):
            return json.loads(h.get(ports[i % 3], "/session", cookie)[2])

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            docs = list(pool.map(one, range(100)))
        counters = sorted(d["counter"] for d in docs)
        assert counters == list(range(2, 102)), counters  # each value once
        assert all(not d["new"] for d in docs)
        assert json.loads(h.get(ports[1], "/session", cookie)[2])["counter"] \
            == 102


def test_shared_socket_workers_continue_one_session():
    with h.Redis() as redis:
        env = {"REDIS_URL": "redis://127.0.0.1:%d/0" % redis.port}
        sock = h.listening_socket()
        port = sock.getsockname()[1]
        workers = [h.start_worker(env, sock=sock, worker_id=str(i))
                   for i in range(3)]
        h.wait_redis_up(port)
        for w in workers:
            h.wait_for(lambda: "redis up" in w.output(), 5,
                       "worker %s to reach redis" % w.pid)
        _, headers, _ = h.get(port, "/session")
        cookie = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]

        def one(_):
            return json.loads(h.get(port, "/session", cookie)[2])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            docs = list(pool.map(one, range(99)))
        assert sorted(d["counter"] for d in docs) == list(range(2, 101))
        served = {d["pid"] for d in docs}
        assert served <= {w.pid for w in workers}, served
        print("  pids that served: %s" % sorted(served))
        assert all(w.alive() for w in workers)


def test_malformed_cookie_starts_a_new_session():
    with h.Redis() as redis:
        ports, _ = _workers_on_ports(redis, 1)
        for bad in ["garbage", "A" * 43, "x" * 4000, "%00%ff",
                    "'; DROP TABLE", "a=b=c"]:
            status, headers, body = h.get(ports[0], "/session", bad)
            assert status == 200, (bad, status, body)
            doc = json.loads(body)
            assert doc["new"] is True and doc["counter"] == 1, doc
            assert "Set-Cookie" in headers
        # Nothing derived from the bad cookies reached Redis as a key.
        keys = redis.cmd("KEYS", "*")
        assert len(keys) == 6, keys
        assert all(k.startswith(b"corral:sess:") and len(k) == 12 + 64
                   for k in keys), keys


def test_secure_cookie_when_asked():
    with h.Redis() as redis:
        port = h.free_port()
        h.start_worker({"REDIS_URL": "redis://127.0.0.1:%d" % redis.port},
                       port=port, args=["--secure-cookie"])
        h.wait_redis_up(port)
        _, headers, _ = h.get(port, "/session")
        assert "; Secure" in headers["Set-Cookie"], headers


def test_rotate_and_logout():
    with h.Redis() as redis:
        ports, _ = _workers_on_ports(redis, 2)
        c = h.Client(ports[0])
        c.request("/session")
        c.request("/session")
        old = c.cookie
        status, _, _ = c.request("/session/rotate", "POST")
        assert status == 200 and c.cookie != old
        assert json.loads(h.get(ports[1], "/session", c.cookie)[2])[
            "counter"] == 3
        assert json.loads(h.get(ports[1], "/session", old)[2])["new"] is True
        status, _, _ = c.request("/session", "DELETE")
        assert status == 200 and c.cookie is None
        assert json.loads(h.get(ports[0], "/session", old)[2])["new"] is True


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


def test_http_errors_never_crash_the_worker():
    with h.Redis() as redis:
        ports, workers = _workers_on_ports(redis, 1)
        port = ports[0]
        assert h.get(port, "/")[0] == 200
        assert b"pid %d" % workers[0].pid in h.get(port, "/")[2]
        assert h.get(port, "/nope")[0] == 404
        assert h.get(port, "/heavy?n=abc")[0] == 400
        assert h.get(port, "/heavy?n=-1")[0] == 400
        assert h.get(port, "/heavy?n=99999999999999")[0] == 400
        assert json.loads(h.get(port, "/heavy?n=1000")[2])["n"] == 1000
        assert h.Client(port).request("/", "POST")[0] == 405
        big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + \
            b"\r\n\r\n"
        assert _raw(port, big).startswith(b"HTTP/1.1 431"), _raw(port, big)[:80]
        assert _raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert _raw(port, b"GET / HTTP/9.9\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert _raw(port, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"
                    ).startswith(b"HTTP/1.1 400")
        huge_body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + \
            b"999999999\r\n\r\n"
        assert _raw(port, huge_body).startswith(b"HTTP/1.1 413")
        # Half a request, then the client vanishes.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET / HTT")
        # Pipelined requests are answered in order.
        two = _raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert two.count(b"HTTP/1.1 200") == 1 and b"HTTP/1.1 404" in two, two
        assert h.get(port, "/healthz")[0] == 200
        assert workers[0].alive()


if __name__ == "__main__":
    h.run([
        test_one_cookie_100_requests_round_robin_over_3_workers,
        test_concurrent_requests_with_one_cookie_lose_nothing,
        test_shared_socket_workers_continue_one_session,
        test_malformed_cookie_starts_a_new_session,
        test_secure_cookie_when_asked,
        test_rotate_and_logout,
        test_http_errors_never_crash_the_worker,
    ])
