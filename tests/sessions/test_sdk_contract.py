"""The worker SDK's contract with the agent, checked black-box on
corral-worker: LISTEN_FDS/LISTEN_PID, sd_notify messages, watchdog, and the
SIGTERM drain under keep-alive load."""
import os
import signal
import socket
import time
import unittest

from pylib import procfs
from pylib.http_client import EOF_IDLE, OK, Connection, wait_http
from pylib.load import LoadGenerator
from pylib.testcase import TestCase, note
from pylib.waiting import hold, wait_for
from pylib.workers import ClosedPort, NotifySocket, listening_socket, start_worker


class SdkContract(TestCase):

    def setUp(self):
        # Redis "down": a loopback port that refuses connections, held by us.
        self.no_redis = {"REDIS_URL": f"redis://127.0.0.1:{ClosedPort(self).port}/0"}

    def test_wrong_listen_pid_is_ignored(self):
        sock = listening_socket(self)
        shared_port = sock.getsockname()[1]
        w = start_worker(self, self.no_redis, sock=sock, wrong_pid=True)
        own_port = w.own_port()
        wait_http(own_port)
        self.assertIn("ignoring inherited sockets: LISTEN_PID=1 is not this process", w.output())
        # The inherited socket is not ours: nothing accepts on it.
        with socket.create_connection(("127.0.0.1", shared_port)) as s:
            s.settimeout(0.5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(100)
            except socket.timeout:
                data = None
            self.assertIsNone(data)
        self.assertEqual(w.stop(), 0)

    def test_right_listen_pid_uses_the_socket_not_port(self):
        sock = listening_socket(self)
        port = sock.getsockname()[1]
        w = start_worker(self, self.no_redis, sock=sock)  # with PORT=0 set
        wait_http(port)
        # It listens on the inherited socket only: it did not bind $PORT.
        self.assertEqual(procfs.listening_ports(w.pid), [port], w.output())
        self.assertEqual(w.stop(), 0)

    def test_inherited_unix_socket(self):
        path = os.path.join(self.temp_dir("corral-unix-"), "http.sock")
        sock = listening_socket(self, unix_path=path)
        w = start_worker(self, self.no_redis, sock=sock)

        def answer():
            try:
                with socket.socket(socket.AF_UNIX) as c:
                    c.settimeout(1)
                    c.connect(path)
                    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    return c.makefile("rb").read()
            except OSError:
                return None
        body = wait_for(answer, 5, "an answer on the unix socket")
        self.assertTrue(body.startswith(b"HTTP/1.1 200") and b"hello" in body, body)
        self.assertEqual(w.stop(), 0)

    def test_notify_ready_status_watchdog_stopping(self):
        n = NotifySocket(self)
        w = start_worker(self, self.no_redis,
                         extra_env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "200000"})
        n.wait(lambda msgs: "READY=1" in msgs, 5, "READY=1")
        t_ready = n.times("READY=1")[0]
        # Pings every 100 ms (half of WATCHDOG_USEC): 3 within 0.5 s of READY.
        pings = n.wait(lambda msgs: (lambda t: t if len(t) >= 3 else None)(
            n.times("WATCHDOG=1")), 5, "3 x WATCHDOG=1")
        note(f"pings {[round(t - t_ready, 3) for t in pings[:5]]} s after READY")
        self.assertLessEqual(pings[2] - t_ready, 0.5, "fewer than 3 pings in 0.5 s")
        msgs = n.wait(lambda msgs: any(m.startswith("STATUS=serving; sessions unavailable, "
                                                     "redis down") for m in msgs) and msgs,
                      5, "STATUS=serving; sessions unavailable, redis down")
        self.assertEqual(w.stop(), 0)
        msgs = n.drain()
        self.assertIn("STOPPING=1", msgs)

    def test_watchdog_pid_of_another_process_means_off(self):
        n = NotifySocket(self)
        w = start_worker(self, self.no_redis,
                         extra_env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "100000",
                                    "WATCHDOG_PID": "1"})
        n.wait(lambda msgs: "READY=1" in msgs, 5, "READY=1")
        # Eight periods of 50 ms pings: not one.
        hold(lambda: "WATCHDOG=1" not in n.drain(), 0.4, "no WATCHDOG=1")
        self.assertEqual(w.stop(), 0)

    def test_drain_under_keep_alive_load_finishes_in_flight_requests(self):
        sock = listening_socket(self)  # stays open, as the agent's copy does
        port = sock.getsockname()[1]
        w = start_worker(self, self.no_redis, sock=sock)
        wait_http(port)
        # Idle keep-alive connections: must be closed promptly by the drain.
        idle = []
        for _ in range(5):
            c = Connection(port, timeout=5)
            self.addCleanup(c.close)
            c.request("GET", "/")
            idle.append(c)
        # Six clients each sending /heavy back to back on one keep-alive
        # connection until the server ends it.
        load = self.start_load(port, threads=6, paths=lambda t, i: "/heavy?n=3000000", pace=0,
                             one_connection=True, timeout=10)
        wait_for(lambda: min(load.count_ok_by_thread().values()) >= 2, 15,
                 lambda: f"2 answers on each of 6 busy connections: "
                         f"{load.count_ok_by_thread()}")
        t_term = time.monotonic()
        w.proc.send_signal(signal.SIGTERM)
        self.assertTrue(load.join(15), "busy clients still running 15 s after SIGTERM")
        code = w.proc.wait(15)
        took = time.monotonic() - t_term
        results = load.stop()
        note(f"drained in {took:.2f}s; {LoadGenerator.summary(results)}")
        self.assertEqual(code, 0)
        self.assertLess(took, 5)
        broken = [r for r in results if r.kind not in (OK, EOF_IDLE)]
        self.assertEqual(broken, [])
        oks = [r for r in results if r.kind == OK]
        self.assertTrue(all('"n":3000000' in r.body for r in oks), oks[:3])
        self.assertGreater(len(oks), 6)
        # Every busy client ended on an answered request saying Connection:
        # close (or was closed while idle), never on a lost request.
        self.assertEqual(sum(1 for r in oks if r.closed)
                         + sum(1 for r in results if r.kind == EOF_IDLE), 6, results)
        for c in idle:
            # The server closed the idle ones: the next request fails to get
            # an answer rather than hanging.
            c.sock.settimeout(2)
            self.assertEqual(c.sock.recv(1), b"", "idle keep-alive connection left open")
        # The listening socket survives the worker: a new worker serves it.
        w2 = start_worker(self, self.no_redis, sock=sock)
        wait_http(port)
        self.assertEqual(w2.stop(), 0)

    def test_sigterm_with_nothing_in_flight_exits_at_once(self):
        w = start_worker(self, self.no_redis)
        wait_http(w.own_port())
        start = time.monotonic()
        self.assertEqual(w.stop(), 0)
        self.assertLess(time.monotonic() - start, 1.0)

    def test_drain_deadline_exits_1(self):
        w = start_worker(self, self.no_redis, args=["--drain-timeout=300ms"])
        port = w.own_port()
        wait_http(port)
        # A request still arriving (half its header) keeps the drain waiting.
        s = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(s.close)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        # The worker has accepted it and read those bytes: it is in its hands.
        wait_for(lambda: procfs.server_has_read(port, [s.getsockname()[1]]), 5,
                 "the worker to read the half request")
        start = time.monotonic()
        w.proc.send_signal(signal.SIGTERM)
        self.assertEqual(w.proc.wait(10), 1)
        took = time.monotonic() - start
        self.assertTrue(0.25 < took < 2, took)
        self.assertIn("drain did not finish within 300ms", w.output())


if __name__ == "__main__":
    unittest.main()
