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
    """Accepts connections on a port of its own; `handle(conn)` serves each
    one in a thread."""

    def __init__(self, test, handle):
        self.sock = listening_socket(test)
        self.port = self.sock.getsockname()[1]
        self.handle = handle
        self.done = threading.Event()  # set after each handle() returns
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.handle(conn)
            self.done.set()


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


if __name__ == "__main__":
    unittest.main()
