"""The HTTP client names every way a request can fail, exactly: each kind is
produced here by a tiny server in this process that fails that one way."""

import socket
import struct
import threading
import unittest

from pylib.http_client import (EOF_IDLE, EOF_MID_RESPONSE, EOF_NO_RESPONSE, NON_2XX, OK,
                               REFUSED, RESET, TIMEOUT, Connection, RequestFailed)
from pylib.load import LoadGenerator, one_request, send
from pylib.testcase import TestCase
from pylib.waiting import wait_for
from pylib.workers import ClosedPort, listening_socket


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data


def reset(conn):
    """Close with RST, not FIN (SO_LINGER 0)."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class Server:
    """Accepts connections on a port of its own; `handle(conn)` serves them
    one after the other in a thread (concurrent: a thread each)."""

    def __init__(self, test, handle, concurrent=False):
        self.sock = listening_socket(test)
        self.port = self.sock.getsockname()[1]
        self.handle = handle
        self.concurrent = concurrent
        self.accepted = 0
        self.done = threading.Event()  # set after each handle() returns
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.concurrent:
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
            else:
                self._serve(conn)

    def _serve(self, conn):
        with conn:
            self.handle(conn)
        self.done.set()


def keep_answering(conn, close_when):
    """Answers requests on conn until close_when(n answered so far) says
    to end it with Connection: close (or the client leaves)."""
    n = 0
    while read_request(conn) is not None:
        n += 1
        if close_when(n):
            answer(conn, extra=b"Connection: close\r\n")
            return
        answer(conn)


def answer(conn, status=200, body=b"hello", extra=b""):
    conn.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s"
                 % (status, len(body), extra, body))


class Kinds(TestCase):

    def kind_of(self, handle, timeout=5.0):
        server = Server(self, handle)
        r = one_request(server.port, "/", timeout)
        return r

    def test_ok_and_non_2xx(self):
        r = self.kind_of(lambda c: (read_request(c), answer(c, 200, b"fine")))
        self.assertEqual((r.kind, r.status, r.body), (OK, 200, "fine"))
        r = self.kind_of(lambda c: (read_request(c), answer(c, 503, b"busy")))
        self.assertEqual((r.kind, r.status, r.body), (NON_2XX, 503, "busy"))

    def test_chunked_body(self):
        def chunked(c):
            read_request(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        self.assertEqual(self.kind_of(chunked).body, "abcde")

    def test_refused(self):
        closed = ClosedPort(self)
        r = one_request(closed.port, "/", 5)
        self.assertEqual(r.kind, REFUSED, r)
        self.assertIsNone(r.local_port)

    def test_reset(self):
        r = self.kind_of(lambda c: (read_request(c), reset(c)))
        self.assertEqual(r.kind, RESET, r)

    def test_eof_before_any_byte_on_a_new_connection(self):
        r = self.kind_of(lambda c: read_request(c))  # then closed (FIN)
        self.assertEqual(r.kind, EOF_NO_RESPONSE, r)

    def test_eof_mid_response(self):
        def half(c):
            read_request(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        r = self.kind_of(half)
        self.assertEqual(r.kind, EOF_MID_RESPONSE, r)
        half_head = self.kind_of(lambda c: (read_request(c), c.sendall(b"HTTP/1.1 200 OK\r\n")))
        self.assertEqual(half_head.kind, EOF_MID_RESPONSE, half_head)

    def test_timeout(self):
        gone = threading.Event()
        self.addCleanup(gone.set)
        r = self.kind_of(lambda c: (read_request(c), gone.wait(10)), timeout=0.3)
        self.assertEqual(r.kind, TIMEOUT, r)

    def test_malformed_response(self):
        r = self.kind_of(lambda c: (read_request(c), c.sendall(b"SMTP ready\r\n\r\n")))
        self.assertTrue(r.kind.startswith("error:BadStatusLine"), r)

    def test_eof_on_idle_keep_alive_connection(self):
        # One answered request, then the server closes the idle connection.
        server = Server(self, lambda c: (read_request(c), answer(c)))
        conn = Connection(server.port, timeout=5)
        self.addCleanup(conn.close)
        first = send(conn, "/")
        self.assertEqual((first.kind, first.reused), (OK, False))
        self.assertTrue(server.done.wait(5))  # closed: its FIN is ours on loopback
        second = send(conn, "/")
        self.assertEqual((second.kind, second.reused), (EOF_IDLE, True), second)
        # The next request opens a new connection and succeeds.
        third = send(conn, "/")
        self.assertEqual((third.kind, third.reused), (OK, False), third)

    def test_connection_close_ends_the_connection(self):
        server = Server(self, lambda c: (read_request(c),
                                         answer(c, extra=b"Connection: close\r\n")))
        conn = Connection(server.port, timeout=5)
        self.addCleanup(conn.close)
        r = send(conn, "/")
        self.assertEqual((r.kind, r.closed), (OK, True))
        self.assertIsNone(conn.sock)

    def test_request_failed_is_an_oserror_with_its_kind(self):
        closed = ClosedPort(self)
        with self.assertRaises(OSError) as e:
            Connection(closed.port).request("GET", "/")
        self.assertIsInstance(e.exception, RequestFailed)
        self.assertEqual(e.exception.kind, REFUSED)


class Load(TestCase):

    def test_one_connection_threads_stop_when_the_server_closes(self):
        def three_then_close(c):
            for i in range(3):
                read_request(c)
                answer(c, extra=b"Connection: close\r\n" if i == 2 else b"")
        server = Server(self, three_then_close)
        load = self.start_load(server.port, threads=1, pace=0, one_connection=True)
        self.assertTrue(load.join(10))
        results = load.stop()
        self.assertEqual([(r.kind, r.reused, r.closed, r.tid) for r in results],
                         [(OK, False, False, 0), (OK, True, False, 0), (OK, True, True, 0)])
        self.assertEqual(load.count_ok_by_thread(), {0: 3})
        self.assertEqual(LoadGenerator.failures(results), [])

    def test_pace_per_thread(self):
        server = Server(self, lambda c: keep_answering(c, lambda n: False), concurrent=True)
        load = self.start_load(server.port, threads=2, keep_alive=True,
                               pace=lambda tid: 0 if tid == 0 else 30)
        wait_for(lambda: load.count_ok_by_thread()[0] >= 20 and load.count_ok_by_thread()[1],
                 10, lambda: f"20 answers to thread 0, 1 to thread 1: "
                             f"{load.count_ok_by_thread()}")
        # Thread 1 is in its 30 s pause after its first answer.
        self.assertEqual(load.count_ok_by_thread()[1], 1)
        self.assertEqual(LoadGenerator.failures(load.stop()), [])

    def test_stop_routing_ends_threads_with_their_connections(self):
        # The first connection ends on its 3rd answer, the next ones once
        # the gate opens: no connection ends while the test decides.
        gate = threading.Event()
        self.addCleanup(gate.set)

        def handle(conn):
            first = server.accepted == 1
            keep_answering(conn, lambda n: n == 3 if first else gate.is_set())
        server = Server(self, handle)
        load = self.start_load(server.port, threads=1, pace=0.005, keep_alive=True)
        # Routing: a new connection after the server ended the first one.
        wait_for(lambda: server.accepted == 2 and load.count_ok() > 3, 10,
                 lambda: f"answers on a second connection: {server.accepted} accepted, "
                         f"{load.count_ok()} answers")
        load.stop_routing()
        gate.set()
        self.assertTrue(load.join(10), "the thread went on after its connection ended")
        results = load.stop()
        self.assertEqual(server.accepted, 2, "a connection opened after stop_routing()")
        self.assertEqual(LoadGenerator.failures(results), [])
        self.assertEqual([i for i, r in enumerate(results) if r.closed], [2, len(results) - 1])

    def test_failures_counted_and_placed_on_the_timeline(self):
        # One answer a connection, then the server closes it while idle:
        # every second request finds it closed (eof_idle). Nothing is
        # answered before the first mark.
        marked = threading.Event()
        self.addCleanup(marked.set)
        server = Server(self, lambda c: (read_request(c), marked.wait(10), answer(c)))
        load = self.start_load(server.port, threads=1, pace=0.005, keep_alive=True)
        load.mark("before")
        marked.set()
        wait_for(lambda: load.count_failed() >= 3, 10, "3 failed requests")
        load.mark("after")
        results = load.stop()
        failed = LoadGenerator.failures(results)
        self.assertEqual({r.kind for r in failed}, {EOF_IDLE})
        lines = load.timeline(results, limit=2).split("\n")
        self.assertRegex(lines[0], r"^\+\d+\.\d{3}s --- before$")
        self.assertRegex(lines[1], r"^\+\d+\.\d{3}s thread 0 port \d+ reused eof_idle ")
        self.assertRegex(lines[2], r"^\+\d+\.\d{3}s thread 0 port \d+ reused eof_idle ")
        self.assertRegex(lines[3], r"^\+\d+\.\d{3}s --- after$")
        self.assertEqual(lines[4:], [f"(and {len(failed) - 2} more failures)"])
        offsets = [float(line[1:line.index("s ")]) for line in lines[:4]]
        self.assertEqual(offsets, sorted(offsets))
        with self.assertRaises(AssertionError) as e:
            self.assertNoFailedRequests(results, load=load)
        ok = len(results) - len(failed)
        self.assertIn(f"{len(failed)} failed requests of {len(results)} requests: "
                      f"eof_idle={len(failed)} ok={ok}", str(e.exception))
        self.assertIn("--- before", str(e.exception))


if __name__ == "__main__":
    unittest.main()
