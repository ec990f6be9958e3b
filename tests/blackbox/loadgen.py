"""HTTP for the black-box tests: one-shot GETs (TCP or unix socket) and a
load generator that records every request's outcome. Stdlib only."""

import collections
import http.client
import socket
import threading
import time

from waiting import wait_for


# --- HTTP --------------------------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def http_get(port, path, timeout=5.0, unix_path=None):
    """One request on a fresh connection (Connection: close).
    Returns (status, body text)."""
    if unix_path:
        conn = UnixHTTPConnection(unix_path, timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


Result = collections.namedtuple(
    "Result", "t_start t_end path kind status body local_port")


def classify(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead,
                        http.client.BadStatusLine)):
        return "closed"  # EOF before a whole answer
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    return f"error:{type(exc).__name__}:{exc}"


def one_request(port, path, timeout):
    """One GET on a new connection; returns a Result, never raises."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    local_port = None
    try:
        conn.connect()
        local_port = conn.sock.getsockname()[1]
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        kind = "ok" if resp.status == 200 else "bad_status"
        return Result(t0, time.monotonic(), path, kind, resp.status, body, local_port)
    except Exception as exc:  # every failure is data here
        return Result(t0, time.monotonic(), path, classify(exc), None, "", local_port)
    finally:
        conn.close()


class LoadGenerator:
    """`threads` threads each doing GETs on new connections in a loop, at most
    one every `pace` seconds, recording every result. paths(i) gives the path
    of the i-th request of a thread (its thread number is in `tid`)."""

    def __init__(self, port, threads=4, paths=None, pace=0.005, timeout=10.0):
        self.port = port
        self.paths = paths or (lambda tid, i: f"/?t={tid}&i={i}")
        self.pace = pace
        self.timeout = timeout
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(t,), daemon=True)
                         for t in range(threads)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def _run(self, tid):
        i = 0
        while not self._stop.is_set():
            r = one_request(self.port, self.paths(tid, i), self.timeout)
            with self._lock:
                self.results.append(r)
            i += 1
            self._stop.wait(self.pace)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        return self.snapshot()

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def count_ok(self):
        with self._lock:
            return sum(1 for r in self.results if r.kind == "ok")

    def wait_ok(self, n, timeout=10):
        """Waits until at least n more requests than now have succeeded."""
        target = self.count_ok() + n
        wait_for(lambda: self.count_ok() >= target, timeout, f"{n} more ok requests")

    @staticmethod
    def failures(results):
        return [r for r in results if r.kind != "ok"]

    @staticmethod
    def summary(results):
        """'1234 requests: ok=1230 reset=4' (for the test's log)."""
        kinds = collections.Counter(r.kind for r in results)
        return f"{len(results)} requests: " + " ".join(f"{k}={n}" for k, n in sorted(kinds.items()))
