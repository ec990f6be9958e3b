"""Load for tests: threads sending GETs and recording every outcome as a
Result whose kind is one of http_client's (ok, refused, reset, eof_idle,
eof_no_response, eof_mid_response, timeout, non_2xx, error:...)."""

import collections
import threading
import time

from .http_client import NON_2XX, OK, Connection, RequestFailed, ends_connection, parse_identity
from .waiting import wait_for

# closed: the server ended the connection with this response (Connection:
# close); tid: the LoadGenerator thread that sent it.
Result = collections.namedtuple(
    "Result", "t_start t_end path kind status body local_port reused detail closed tid",
    defaults=(False, None))


def _kind(status):
    return OK if 200 <= status < 300 else NON_2XX


def send(conn, path, headers=None):
    """One GET on `conn`; a Result, never raises for a failed request."""
    t0 = time.monotonic()
    reused = conn.reused
    try:
        r = conn.request("GET", path, headers)
        return Result(t0, time.monotonic(), path, _kind(r.status), r.status,
                      r.body.decode(errors="replace"), conn.local_port, reused,
                      "", ends_connection(r))
    except RequestFailed as e:
        return Result(t0, time.monotonic(), path, e.kind, None, "", conn.local_port, reused,
                      e.detail)
    except OSError as e:  # every failure is data here
        conn.close()
        return Result(t0, time.monotonic(), path, f"error:{type(e).__name__}: {e}", None, "",
                      conn.local_port, reused, str(e))


def one_request(port, path, timeout=10.0):
    """One GET on a new connection (Connection: close); a Result."""
    conn = Connection(port, timeout=timeout)
    try:
        return send(conn, path, {"Connection": "close"})
    finally:
        conn.close()


class LoadGenerator:
    """`threads` threads, each sending GETs in a loop, recording every
    Result. paths(tid, i) is the path of a thread's i-th request. pace:
    seconds a thread waits after each answer, or pace(tid) for a per-thread
    pause. keep_alive: one connection per thread, reused while the server
    keeps it (a new one after it ends); otherwise a new connection per
    request (Connection: close). Threads never retry: a failed request is
    recorded and the next one sent.

    stop_routing() is a Service taking this endpoint out: from then on no
    thread opens a new connection; each stops when its connection ends (an
    answer saying Connection: close, or a failure). one_connection: so from
    the start, as a client draining with a server would. mark() puts a
    moment of the test on the timeline() that failures are reported
    against. It stops by itself after `max_seconds`, so a forgotten
    generator cannot run on."""

    def __init__(self, port, threads=4, paths=None, pace=0.005, timeout=10.0,
                 keep_alive=False, one_connection=False, max_seconds=300):
        self.port = port
        self.paths = paths or (lambda tid, i: f"/?t={tid}&i={i}")
        self.pace = pace if callable(pace) else (lambda tid: pace)
        self.timeout = timeout
        self.keep_alive = keep_alive or one_connection
        self.max_seconds = max_seconds
        self.results = []
        self.marks = []  # (monotonic time, label)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._routing = threading.Event()
        if not one_connection:
            self._routing.set()
        self._threads = [threading.Thread(target=self._run, args=(t,), daemon=True)
                         for t in range(threads)]

    def start(self):
        self.t_start = time.monotonic()
        self._deadline = self.t_start + self.max_seconds
        for t in self._threads:
            t.start()
        return self

    def stop_routing(self):
        """No new connections from now on (see the class comment)."""
        self._routing.clear()

    def mark(self, label):
        """Notes a moment of the test (a reload sent, SIGTERM) on the timeline."""
        with self._lock:
            self.marks.append((time.monotonic(), label))

    def _ended(self, conn, i):
        """True when the thread must stop: its connection has ended and no
        new one may be opened (its first one always may)."""
        return i > 0 and conn.sock is None and not self._routing.is_set()

    def _run(self, tid):
        conn = Connection(self.port, timeout=self.timeout)
        headers = {} if self.keep_alive else {"Connection": "close"}
        pace = self.pace(tid)
        i = 0
        try:
            # Checked again right before a new connection: routing may have
            # stopped during the pause.
            while (not self._stop.is_set() and time.monotonic() < self._deadline
                   and not self._ended(conn, i)):
                r = send(conn, self.paths(tid, i), headers)._replace(tid=tid)
                if not self.keep_alive:
                    conn.close()
                with self._lock:
                    self.results.append(r)
                i += 1
                if self._ended(conn, i):
                    return
                self._stop.wait(pace)
        finally:
            conn.close()

    def stop(self):
        """Stops the threads (each ends its request first); every Result."""
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        return self.snapshot()

    def join(self, timeout):
        """Waits for every thread to end by itself (one_connection); False
        when some are still running after `timeout` s."""
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def count_ok_by_thread(self):
        """{thread number: successful requests}, every thread included."""
        counts = {t: 0 for t in range(len(self._threads))}
        for r in self.snapshot():
            if r.kind == OK:
                counts[r.tid] += 1
        return counts

    def count_ok(self):
        with self._lock:
            return sum(1 for r in self.results if r.kind == OK)

    def count_failed(self):
        with self._lock:
            return sum(1 for r in self.results if r.kind != OK)

    def wait_ok(self, n, timeout=10):
        """Waits until at least n more requests than now have succeeded."""
        target = self.count_ok() + n
        wait_for(lambda: self.count_ok() >= target, timeout,
                 lambda: f"{n} more ok requests; so far {self.summary(self.snapshot())}")

    def wait_served_by(self, pred, timeout, what):
        """Waits for a successful answer whose identity matches pred; returns
        the identity."""
        def seen():
            for r in self.snapshot():
                ident = parse_identity(r.body) if r.kind == OK else None
                if ident and pred(ident):
                    return ident
            return None
        return wait_for(seen, timeout, what)

    def timeline(self, results, limit=20):
        """The marks and the first `limit` failures of `results` in time
        order, one a line, each at its offset from start():
        '+3.402s thread 7 port 40112 reused eof_idle (0.001s): ...'."""
        failures = sorted(self.failures(results), key=lambda r: r.t_start)
        rows = [(t, f"--- {label}") for t, label in self.marks]
        rows += [(r.t_start, f"thread {r.tid} port {r.local_port} "
                             f"{'reused ' if r.reused else ''}{r.kind} "
                             f"({r.t_end - r.t_start:.3f}s): {r.detail}")
                 for r in failures[:limit]]
        lines = [f"+{t - self.t_start:.3f}s {text}" for t, text in sorted(rows)]
        if len(failures) > limit:
            lines.append(f"(and {len(failures) - limit} more failures)")
        return "\n".join(lines)

    @staticmethod
    def failures(results):
        return [r for r in results if r.kind != OK]

    @staticmethod
    def summary(results):
        """'1234 requests: eof_no_response=1 ok=1233; ok by worker {...}'."""
        kinds = collections.Counter(r.kind for r in results)
        by_worker = collections.Counter((parse_identity(r.body) or {}).get("worker")
                                        for r in results if r.kind == OK)
        return (f"{len(results)} requests: "
                + " ".join(f"{k}={n}" for k, n in sorted(kinds.items()))
                + f"; ok by worker {dict(sorted(by_worker.items(), key=str))}")


def idle_third(tid):
    """A pace for keep-alive load: every third thread waits 0.3 s after each
    answer (its connection sits idle when a worker starts to drain), the
    others send back to back."""
    return 0.3 if tid % 3 == 0 else 0


def sleep_paths(sleep_ms=(20, 40, 80, 120)):
    """paths() for LoadGenerator: GET /?sleep_ms=N cycling through sleep_ms,
    so some requests are always in flight in the workers."""
    return lambda tid, i: f"/?sleep_ms={sleep_ms[(tid + i) % len(sleep_ms)]}&t={tid}&i={i}"
