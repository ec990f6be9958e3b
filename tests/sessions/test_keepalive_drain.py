"""Zero failed requests under keep-alive load while corral-agent drains
corral-worker processes: rolling reloads, a scale-down and an agent SIGTERM.

The client is what a proxy or a pooled HTTP client looks like to a worker:
many keep-alive connections, most sending their next request as soon as the
last answer is read and every third one pausing PAUSE between requests (so
the drain finds it idle), never retrying, reconnecting only after an answer
that said `Connection: close`. Every request is counted by outcome; the tests
require 0 failures of any kind.

Loopback only, real processes; each test is bounded (reloads and drains are
waited for with deadlines). Skipped (77) while corral-agent is not built.
"""
import collections
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import harness as h

CORRALCTL = os.environ.get(
    "CORRALCTL",
    os.path.join(os.path.dirname(os.path.dirname(h.AGENT)), "ctl",
                 "corralctl"))
CONNECTIONS = 24
# Shorter than the worker's drain idle window (1 s), as a client that keeps
# sending is.
PAUSE = 0.3
NO_REDIS = {"REDIS_URL": "redis://127.0.0.1:%d/0" % h.free_port()}


# --- the load ------------------------------------------------------------------

def _classify(exc, served_before):
    """The failure kinds of the traffic issue's benchmark."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        # EOF before any response byte.
        return "eof-idle-keepalive" if served_before else "eof-new-connection"
    if isinstance(exc, http.client.IncompleteRead):
        return "eof-mid-response"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    return "error:%s" % type(exc).__name__


class KeepAliveLoad:
    """`n` threads, one keep-alive connection each, sending GETs back to
    back (every third pausing PAUSE after each answer). After a `Connection: close` answer a thread reconnects while
    `routing` is set (the service still sends it new connections) and stops
    otherwise."""

    def __init__(self, port, n=None, timeout=10):
        self.port = port
        self.timeout = timeout
        self.routing = threading.Event()
        self.routing.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.outcomes = collections.Counter()
        self.failures = []  # (time, kind, detail)
        self._threads = [threading.Thread(target=self._run, args=(i,),
                                          daemon=True)
                         for i in range(n or CONNECTIONS)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def _count(self, kind, detail=None):
        with self._lock:
            self.outcomes[kind] += 1
            if kind not in ("ok", "ok-close"):
                self.failures.append((time.monotonic(), kind, detail))

    def _run(self, tid):
        conn, served, i = None, 0, 0
        pause = PAUSE if tid % 3 == 0 else 0
        while not self._stop.wait(pause if served else 0):
            if conn is None:
                if not self.routing.is_set():
                    return
                conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                  timeout=self.timeout)
                served = 0
            i += 1
            try:
                conn.request("GET", "/?c=%d&i=%d" % (tid, i))
                r = conn.getresponse()
                body = r.read()
            except Exception as e:  # noqa: BLE001 - every failure is data
                self._count(_classify(e, served), repr(e))
                conn.close()
                conn = None
                continue
            served += 1
            close = r.getheader("Connection", "").lower() == "close"
            if r.status != 200 or not body.startswith(b"hello"):
                self._count("non-2xx", (r.status, body[:80]))
            else:
                self._count("ok-close" if close else "ok")
            if close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def ok(self):
        with self._lock:
            return self.outcomes["ok"] + self.outcomes["ok-close"]

    def wait_ok(self, n, timeout=20):
        target = self.ok() + n
        h.wait_for(lambda: self.ok() >= target, timeout,
                   "%d more answered requests" % n)

    def failed(self):
        with self._lock:
            return sum(n for k, n in self.outcomes.items()
                       if k not in ("ok", "ok-close"))

    def stop(self):
        self._stop.set()
        self.join()

    def join(self, timeout=30):
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def summary(self):
        with self._lock:
            return " ".join("%s=%d" % kv for kv in sorted(self.outcomes.items()))


# --- the agent -------------------------------------------------------------------

class Agent:
    def __init__(self, workers, drain_delay="0s", env_extra=None):
        self.dir = tempfile.mkdtemp(prefix="corral-kadrain-")
        self.port = h.free_port()
        self.http_port = h.free_port()
        self.socket = os.path.join(self.dir, "agent.sock")
        self.log = os.path.join(self.dir, "agent.log")
        argv = [h.AGENT, "--workers=%d" % workers,
                "--listen=tcp://127.0.0.1:%d" % self.port,
                "--control-socket=" + self.socket,
                "--http-port=%d" % self.http_port,
                "--probe-address=127.0.0.1", "--drain-delay=" + drain_delay,
                "--stop-timeout=10s", "--log-format=json"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LISTEN_", "NOTIFY_", "CORRAL_"))}
        env.update(NO_REDIS)
        env.update(env_extra or {})
        with open(self.log, "w") as out:
            self.proc = h.spawn(argv + ["--", h.WORKER], env=env, stdout=out,
                                stderr=subprocess.STDOUT)

    def events(self, name=None):
        out = []
        with open(self.log) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("src") == "agent" and name in (None, e.get("event")):
                    out.append(e)
        return out

    def wait_events(self, name, n, timeout=20):
        h.wait_for(lambda: len(self.events(name)) >= n, timeout,
                   "%d %s events" % (n, name))

    def ready(self):
        try:
            return h.get(self.http_port, "/readyz", timeout=0.5)[0] == 200
        except OSError:
            return False

    def ctl(self, *args):
        p = subprocess.run([CORRALCTL, "--socket", self.socket] + list(args),
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
        return p.stdout

    def unexpected_exits(self):
        return [e for e in self.events("worker_exited")
                if e.get("code") != 0 or e.get("expected") is not True]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for name in ("agent.log",):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def _report(what, load):
    print("  %s: %s" % (what, load.summary()), flush=True)
    for t, kind, detail in load.failures[:10]:
        print("    failure %s: %s" % (kind, detail), flush=True)


def _started(workers, **kw):
    agent = Agent(workers, **kw)
    try:
        agent.wait_events("worker_ready", workers)
        h.wait_for(agent.ready, 10, "/readyz 200")
    except AssertionError:
        with open(agent.log) as f:
            print(f.read()[-2000:])
        agent.close()
        raise
    return agent


# --- the tests -------------------------------------------------------------------

def test_rolling_reloads_under_keep_alive_load_lose_nothing():
    agent = _started(2)
    try:
        load = KeepAliveLoad(agent.port).start()
        load.wait_ok(500)
        per_reload = []
        for k in range(1, 6):
            before = load.failed()
            agent.proc.send_signal(signal.SIGHUP)
            agent.wait_events("reload_finished", k, timeout=30)
            # Both old workers have drained and exited.
            agent.wait_events("worker_exited", 2 * k, timeout=30)
            load.wait_ok(300)
            per_reload.append(load.failed() - before)
        load.stop()
        _report("5 reloads, failed per reload %s" % per_reload, load)
        assert load.failed() == 0, load.summary()
        assert not agent.unexpected_exits(), agent.unexpected_exits()
        # Every connection was told to close at least once per reload.
        assert load.outcomes["ok-close"] >= 5, load.summary()
    finally:
        agent.close()


def test_scale_down_under_keep_alive_load_loses_nothing():
    agent = _started(4)
    try:
        load = KeepAliveLoad(agent.port).start()
        load.wait_ok(800)
        agent.ctl("scale", "2")
        agent.wait_events("worker_exited", 2, timeout=30)
        load.wait_ok(500)
        load.stop()
        _report("scale 4 -> 2", load)
        assert load.failed() == 0, load.summary()
        assert not agent.unexpected_exits(), agent.unexpected_exits()
        assert len(agent.events("worker_ready")) == 4
    finally:
        agent.close()


def test_agent_sigterm_drain_under_keep_alive_load_loses_nothing():
    # The drain delay stands for endpoint propagation: readiness goes false
    # at once and the client (like a Service) stops opening new connections
    # when it sees that; the connections it has keep sending until a
    # response says Connection: close.
    agent = _started(2, drain_delay="1s")
    try:
        load = KeepAliveLoad(agent.port).start()
        load.wait_ok(500)
        t0 = time.monotonic()
        agent.proc.send_signal(signal.SIGTERM)
        h.wait_for(lambda: not agent.ready(), 5, "/readyz to fail")
        load.routing.clear()
        assert load.join(30), "a client connection never ended"
        code = agent.proc.wait(30)
        took = time.monotonic() - t0
        _report("agent SIGTERM drain in %.2fs" % took, load)
        assert code == 0, code
        assert load.failed() == 0, load.summary()
        # Every connection ended on an answer that said Connection: close.
        assert load.outcomes["ok-close"] >= CONNECTIONS, load.summary()
        exits = agent.events("worker_exited")
        assert len(exits) == 2 and all(e.get("code") == 0 for e in exits), \
            exits
    finally:
        agent.close()


if __name__ == "__main__":
    for path, name in ((h.AGENT, "corral-agent"), (CORRALCTL, "corralctl")):
        if not os.access(path, os.X_OK):
            print("skipped: %s is not built yet (%s)" % (name, path))
            sys.exit(h.SKIP)
    tests = [test_rolling_reloads_under_keep_alive_load_lose_nothing,
             test_scale_down_under_keep_alive_load_loses_nothing,
             test_agent_sigterm_drain_under_keep_alive_load_loses_nothing]
    only = sys.argv[1:]
    h.run([t for t in tests if not only or t.__name__ in only])
