"""corral-loadgen counts each failure kind exactly (ctest traffic.loadgen).

Each test runs the real binary against a tiny scripted HTTP server on
loopback that misbehaves in one way, and checks the counts against what the
server did. Needs CORRAL_LOADGEN (the binary).
"""
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

LOADGEN = os.environ.get("CORRAL_LOADGEN", "corral-loadgen")


def ok_response(worker="7", close=False, status="200 OK"):
    return ("HTTP/1.1 %s\r\nContent-Length: 2\r\nX-Worker: %s\r\n%s\r\nok" % (
        status, worker, "Connection: close\r\n" if close else "")).encode()


class Server:
    """Accepts connections; `handle(conn, index)` is called per request
    (index counts from 0 on each connection) and returns False to stop."""

    def __init__(self, handle, accept=True):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.handle, self.requests, self.lock = handle, 0, threading.Lock()
        self.stopped, self.accepted = False, 0
        if accept:
            threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self.serve, args=(conn,),
                             daemon=True).start()

    def serve(self, conn):
        try:
            self.serve_requests(conn)
        except OSError:
            pass  # the client reset the connection: its business here

    def serve_requests(self, conn):
        index = 0
        with conn:
            while True:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                with self.lock:
                    self.requests += 1
                if not self.handle(conn, index):
                    return
                index += 1

    def close(self):
        self.stopped = True
        self.sock.close()


def run(port, *extra, duration=1.0, timeout=5.0, connections=1):
    out = subprocess.run(
        [LOADGEN, "--url", "http://127.0.0.1:%d/" % port, "--connections",
         str(connections), "--threads", "1", "--duration", str(duration),
         "--timeout", str(timeout), "--retry-delay", "0.02"] + list(extra),
        capture_output=True, text=True, check=True, timeout=duration + 30)
    return json.loads(out.stdout)


def only(result, kind):
    """The failures of `result` are all of `kind`; returns their count."""
    others = {k: v for k, v in result["failures"].items()
              if v and k != kind}
    assert not others, "unexpected failures: %s" % others
    assert result["failed"] == result["failures"][kind]
    assert len(result["events"]) == result["failed"]
    return result["failed"]


class LoadgenTest(unittest.TestCase):
    def test_counts_successes_and_workers(self):
        bodies = [b'{"n":1,"pid":4242}', b"hello from corral-worker 0 (pid 99)"]

        def handle(conn, index):
            body = bodies[index % 2]
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            return True
        srv = Server(handle)
        r = run(srv.port, connections=2)
        srv.close()
        self.assertEqual(r["failed"], 0)
        self.assertGreater(r["ok"], 10)
        ids = {w["id"]: w for w in r["workers"]}
        self.assertEqual(set(ids), {"4242", "99"})
        self.assertEqual(ids["4242"]["requests"] + ids["99"]["requests"],
                         r["ok"])
        # Each connection's first answer came from 4242.
        self.assertEqual(ids["4242"]["connections"], 2)
        self.assertEqual(ids["99"]["connections"], 0)
        self.assertGreater(r["latency_ms"]["p99"], 0)
        self.assertEqual(sum(r["ok_per_tick"]), r["ok"])

    def test_refused(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, not listening: refused
            r = run(port, duration=0.5)
        self.assertGreater(only(r, "refused"), 5)
        self.assertEqual(r["ok"], 0)

    def test_close_before_second_answer_is_eof_idle(self):
        # Answers once, then closes when the next request arrives: the race
        # a draining server loses.
        srv = Server(lambda conn, i: i == 0 and not conn.sendall(
            ok_response()))
        r = run(srv.port)
        srv.close()
        n = only(r, "eof_idle")
        self.assertGreater(n, 5)
        self.assertLessEqual(abs(r["ok"] - n), 1)  # one ok, one eof each
        self.assertTrue(all(e["reused"] and not e["rst"] and e["worker"] == "7"
                            for e in r["events"]))

    def test_reset_before_second_answer_is_eof_idle_rst(self):
        def handle(conn, index):
            if index == 0:
                conn.sendall(ok_response())
                return True
            # SO_LINGER 0: close() sends RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            return False
        srv = Server(handle)
        r = run(srv.port)
        srv.close()
        self.assertGreater(only(r, "eof_idle"), 5)
        self.assertTrue(all(e["rst"] for e in r["events"]))

    def test_close_on_new_connection_is_eof_new(self):
        srv = Server(lambda conn, i: False)
        r = run(srv.port, duration=0.5)
        srv.close()
        self.assertGreater(only(r, "eof_new"), 5)

    def test_partial_answer_is_eof_mid(self):
        srv = Server(lambda conn, i: conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") and False)
        r = run(srv.port, duration=0.5)
        srv.close()
        self.assertGreater(only(r, "eof_mid"), 5)

    def test_no_answer_is_timeout(self):
        srv = Server(lambda conn, i: time.sleep(5))
        r = run(srv.port, duration=1.0, timeout=0.2)
        srv.close()
        n = only(r, "timeout")
        self.assertGreaterEqual(n, 3)
        self.assertLessEqual(n, 5)  # 1 s / (0.2 s + 0.02 s)

    def test_non2xx_is_counted_and_connection_kept(self):
        srv = Server(lambda conn, i: not conn.sendall(
            ok_response(status="503 Service Unavailable")))
        r = run(srv.port, duration=0.5)
        srv.close()
        n = only(r, "non2xx")
        self.assertLessEqual(abs(n - srv.requests), 1)  # last one in flight
        self.assertEqual(r["ok"], 0)

    def test_connection_close_answer_is_not_a_failure(self):
        srv = Server(lambda conn, i: conn.sendall(ok_response(close=True)))
        r = run(srv.port, duration=0.5)
        srv.close()
        self.assertEqual(r["failed"], 0)
        self.assertGreater(r["ok"], 5)
        self.assertEqual(r["workers"][0]["connections"], r["ok"])

    def test_drain_mode_ends_when_the_server_closes(self):
        closing = threading.Event()
        srv = Server(lambda conn, i: not conn.sendall(
            ok_response(close=closing.is_set())))
        p = subprocess.Popen(
            [LOADGEN, "--url", "http://127.0.0.1:%d/" % srv.port,
             "--connections", "4", "--duration", "30"],
            stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            p.send_signal(signal.SIGUSR1)  # no new connections from now on
            closing.set()                  # every next answer says close
            out, _ = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        srv.close()
        r = json.loads(out)
        self.assertEqual(r["failed"], 0)
        self.assertGreater(r["drain_start"], 0)
        self.assertLess(r["end"] - r["start"], 10)

    def test_drain_ack_means_no_new_connection(self):
        closing = threading.Event()
        srv = Server(lambda conn, i: not conn.sendall(
            ok_response(close=closing.is_set())))
        ack = os.path.join(tempfile.mkdtemp(prefix="loadgen-test-"), "ack")
        p = subprocess.Popen(
            [LOADGEN, "--url", "http://127.0.0.1:%d/" % srv.port,
             "--connections", "4", "--threads", "2", "--duration", "30",
             "--drain-ack", ack], stdout=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: srv.requests > 20, "requests to flow")
            self.assertFalse(os.path.exists(ack))
            p.send_signal(signal.SIGUSR1)
            wait_for(lambda: os.path.exists(ack), "the drain ack")
            accepted = srv.accepted
            closing.set()  # every next answer says close: nobody reconnects
            out, _ = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            if os.path.exists(ack):
                os.unlink(ack)
            os.rmdir(os.path.dirname(ack))
        srv.close()
        r = json.loads(out)
        self.assertEqual(srv.accepted, accepted)
        self.assertEqual(r["failed"], 0)
        self.assertGreater(r["drain_start"], 0)


def wait_for(condition, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


if __name__ == "__main__":
    unittest.main()
