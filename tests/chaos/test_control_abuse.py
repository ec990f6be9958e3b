"""Abuse of the agent's control plane: the HTTP port (/livez /readyz
/metrics, often reachable from the whole cluster) and the control socket.

Here: malformed HTTP (each answered with an error or closed, nothing kept),
slowloris on the HTTP port (liveness keeps answering; every fd is given
back), protobuf garbage to every control method (an error status, the
agent unharmed), and many never-reading streams while workers log fast
(defect #1). Bad but well-formed
arguments (counts, signals, worker ids) are tests/rpc/agent_rpc_test.cc and
agent_stream_test.cc; the probe port's reduced surface and permissions are
tests/rpc/test_probe.py and test_permissions.py.
"""
import socket
import threading
import time
import unittest

import grpc

from pylib import procfs
from pylib.grpc_health import channel, identity
from pylib.http_client import request
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for

MALFORMED = {
    "garbage": b"\x00\xff\x13\x37" * 64,
    "tls_client_hello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 160,
    "huge_request_line": b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n",
    "huge_header": b"GET /livez HTTP/1.1\r\nX: " + b"b" * (100 << 10) + b"\r\n\r\n",
    "many_headers": b"GET /livez HTTP/1.1\r\n" + b"X-A: 1\r\n" * 10000 + b"\r\n",
    "bad_version": b"GET /livez HTTP/9.9\r\n\r\n",
    "bad_chunked": b"POST /livez HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "huge_body": b"POST /metrics HTTP/1.1\r\nContent-Length: 10000000000\r\n\r\n" + b"x" * 4096,
    "negative_length": b"GET /livez HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "nul_in_target": b"GET /liv\x00ez HTTP/1.1\r\n\r\n",
    "two_lengths": b"GET /livez HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
}

UNARY = ["GetStatus", "Scale", "Drain", "Resume", "RestartWorker", "SignalWorker"]
STREAMING = ["Reload", "WatchEvents", "StreamLogs"]


def exchange(port, data, timeout=5.0):
    """Sends data, half-closes, reads until the server closes. Returns what
    it answered; raises socket.timeout if it neither answers nor closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # it closed while we were still sending: an answer too
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk
        raise socket.timeout(f"no close within {timeout}s; got {out[:100]!r}")


def livez_seconds(port):
    t = time.monotonic()
    status = request(port, "/livez", timeout=5).status
    return status, time.monotonic() - t


class ControlAbuse(TestCase):

    def setUp(self):
        self.agent = self.start_agent(["--workers=2", "--http-port=auto",
                                       "--probe-address=127.0.0.1"])
        self.agent.wait_ready(2)
        self.http = self.agent.http_port
        self.pid = self.agent.host_pid

    def test_malformed_http_is_refused_and_nothing_kept(self):
        wait_for(lambda: livez_seconds(self.http)[0] == 200, 10, "/livez")
        fds0 = procfs.fd_count(self.pid)
        answers = {}
        for name, data in MALFORMED.items():
            out = exchange(self.http, data)
            first = out.split(b"\r\n", 1)[0].decode(errors="replace")
            answers[name] = first or "closed"
            if out and name != "many_headers":  # valid, if large: may be answered
                self.assertRegex(first, r"^HTTP/1\.1 [45]\d\d ", f"{name}: {out[:200]!r}")
        note("malformed HTTP: " + ", ".join(f"{k}: {v}" for k, v in answers.items()))
        status, took = livez_seconds(self.http)
        self.assertEqual(status, 200)
        wait_for(lambda: procfs.fd_count(self.pid) <= fds0, 5,
                 lambda: f"agent fds back to {fds0}: {procfs.fd_count(self.pid)}")

    def test_slowloris_on_the_http_port(self):
        # More connections than the agent keeps (HttpServer::kMaxConnections,
        # 128): the oldest are closed, so neither the agent's fds nor a new
        # client's /livez are taken.
        fds0 = procfs.fd_count(self.pid)
        n = 300
        conns = []
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", self.http), timeout=5)
            conns.append(c)
            self.addCleanup(c.close)
        header = b"GET /livez HTTP/1.1\r\nX-Slow: " + b"s" * 100
        worst, fds_max = 0.0, fds0
        closed = set()
        t_end = time.monotonic() + 5
        i = 0
        while time.monotonic() < t_end:
            for k, c in enumerate(conns):
                if k in closed:
                    continue
                try:
                    c.send(header[i % len(header):i % len(header) + 1])
                except OSError:
                    closed.add(k)  # the agent closed it to make room
            i += 1
            status, took = livez_seconds(self.http)
            self.assertEqual(status, 200)
            worst = max(worst, took)
            fds_max = max(fds_max, procfs.fd_count(self.pid))
            time.sleep(0.25)  # the attack's pace, not a wait for a condition
        for c in conns:
            c.close()
        wait_for(lambda: procfs.fd_count(self.pid) <= fds0, 10,
                 lambda: f"agent fds back to {fds0}: {procfs.fd_count(self.pid)}")
        note(f"{n} slowloris connections for 5s: {len(closed)} closed by the agent, slowest "
             f"/livez {worst * 1000:.0f} ms; agent fds {fds0} -> at most {fds_max} -> "
             f"{procfs.fd_count(self.pid)}")
        self.assertLess(worst, 1.0, "/livez slower than 1 s under slowloris")
        slack = 8 if procfs.sanitized(self.pid) else 2  # ASan's own fds
        self.assertLessEqual(fds_max - fds0, 128 + slack, "the agent kept every connection")

    def test_protobuf_garbage_to_every_method(self):
        ch = channel(self, f"unix:{self.agent.socket}")
        garbage = b"\xff\xff\xff\xff\x0f\x08"
        codes = {}
        for m in UNARY:
            call = ch.unary_unary(f"/corral.v1.Agent/{m}", request_serializer=identity,
                                  response_deserializer=identity)
            with self.assertRaises(grpc.RpcError, msg=m) as e:
                call(garbage, timeout=5)
            codes[m] = e.exception.code().name
        for m in STREAMING:
            call = ch.unary_stream(f"/corral.v1.Agent/{m}", request_serializer=identity,
                                   response_deserializer=identity)
            with self.assertRaises(grpc.RpcError, msg=m) as e:
                list(call(garbage, timeout=5))
            codes[m] = e.exception.code().name
        note(f"garbage requests: {codes}")
        # gRPC 1.51's callback server answers a request it cannot parse
        # UNIMPLEMENTED (no details) before our handler runs.
        for m, code in codes.items():
            self.assertIn(code, ("INTERNAL", "INVALID_ARGUMENT", "UNIMPLEMENTED"), m)
        # Unharmed: nothing was drained, scaled or restarted.
        status = self.agent.status()
        self.assertEqual(len(self.agent.ready_workers()), 2, status)
        self.assertEqual(self.agent.agent_events("worker_exited"), [])

    def test_many_never_reading_streams_while_workers_log_fast(self):
        rss0 = procfs.rss_kib(self.pid)
        target = f"unix:{self.agent.socket}"
        calls = []
        for k in range(10):
            ch = channel(self, target)
            watch = ch.unary_stream("/corral.v1.Agent/WatchEvents",
                                    request_serializer=identity, response_deserializer=identity)
            logs = ch.unary_stream("/corral.v1.Agent/StreamLogs",
                                   request_serializer=identity, response_deserializer=identity)
            for _ in range(25):
                calls.append(watch(b""))
                calls.append(logs(b"\x18\x01"))  # follow = true; never read
        for c in calls:
            self.addCleanup(c.cancel)
        stop = threading.Event()

        def log_fast():
            # ~10 MB/s of worker output, 1000-byte lines.
            while not stop.is_set():
                request(self.agent.port, "/log?n=2000&len=1000&tag=fast", timeout=30)
                stop.wait(0.2)
        flooders = [threading.Thread(target=log_fast, daemon=True) for _ in range(2)]
        for f in flooders:
            f.start()
        worst, peak = 0.0, rss0
        t_end = time.monotonic() + 15
        while time.monotonic() < t_end:
            status, took = livez_seconds(self.http)
            self.assertEqual(status, 200, "liveness failed")
            worst = max(worst, took)
            t = time.monotonic()
            self.agent.status()  # GetStatus through corralctl
            worst = max(worst, time.monotonic() - t - 0.5)  # corralctl start-up
            peak = max(peak, procfs.rss_kib(self.pid))
            time.sleep(0.2)  # sampling pace
        stop.set()
        ended = [c for c in calls if not c.running()]
        codes = {c.code().name for c in ended if c.code() is not None}
        note(f"500 streams never read, workers logging: RSS {rss0} -> {peak} KiB, slowest "
             f"/livez or status {worst * 1000:.0f} ms; {len(ended)} streams ended: {codes}")
        self.assertLess(peak - rss0, 200 * 1024, "agent memory grew with the streams")
        self.assertLess(worst, 1.0)
        for c in ended:  # a stream cut or refused says why
            self.assertNotEqual(c.code(), grpc.StatusCode.OK)
            self.assertTrue(c.details(), c.code())


if __name__ == "__main__":
    unittest.main()
