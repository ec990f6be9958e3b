"""Harness for the sizing black-box tests (Python 3 stdlib only).

Runs corral-agent as a plain child (or reads a container's log), turns its
JSON stdout into events, waits for conditions with deadlines, drives HTTP load
on fresh connections and records every failure. It kills only pids it
started (the agent, and the agent's own workers when the agent is gone),
never by name.

Binaries: $CORRAL_AGENT and $CORRAL_TEST_WORKER (set by CMake). Agent logs
are copied to $CORRAL_SZ_LOG_DIR when it is set.
"""

import collections
import errno
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(HERE))
AGENT = os.environ.get("CORRAL_AGENT", os.path.join(_REPO, "build/agent/corral-agent"))
WORKER = os.environ.get(
    "CORRAL_TEST_WORKER", os.path.join(_REPO, "build/tests/worker/corral-test-worker"))
LOG_DIR = os.environ.get("CORRAL_SZ_LOG_DIR")

IDENTITY_RE = re.compile(r"worker=(\S+) gen=(\S+) pid=(\d+)")


def note(text):
    """A line of evidence in the test output (ctest shows it)."""
    sys.stderr.write(f"  [{text}]\n")
    sys.stderr.flush()


def check_binaries(test):
    for path, var in ((AGENT, "CORRAL_AGENT"), (WORKER, "CORRAL_TEST_WORKER")):
        if not os.access(path, os.X_OK):
            test.fail(f"{var}={path} is not an executable file; build it first")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it is truthy and returns its value; fails
    naming `what` (a string or a callable giving one) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {text}")
        time.sleep(interval)


def parse_identity(body):
    m = IDENTITY_RE.search(body)
    if not m:
        return None
    return {"worker": m.group(1), "gen": m.group(2), "pid": int(m.group(3))}


# --- events ------------------------------------------------------------------

class EventLog:
    """Agent JSON lines, in order, from any line source (a pipe, podman logs)."""

    def __init__(self, name):
        self.name = name
        self.lines = []    # every raw line
        self.events = []   # parsed agent events (src == agent), in order
        self._lock = threading.Lock()
        self.eof = threading.Event()

    def feed_stream(self, stream):
        """Reads `stream` (binary, line by line) in a daemon thread."""
        def run():
            try:
                for raw in iter(stream.readline, b""):
                    self.add_line(raw.decode(errors="replace").rstrip("\n"))
            finally:
                self.eof.set()
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def add_line(self, line):
        with self._lock:
            self.lines.append(line)
            try:
                obj = json.loads(line)
            except ValueError:
                return
            if isinstance(obj, dict) and obj.get("src") == "agent":
                obj["_i"] = len(self.events)
                self.events.append(obj)

    def snapshot(self):
        with self._lock:
            return list(self.events)

    def find(self, event, after=-1, **fields):
        """Events named `event` with index > after whose fields match."""
        return [e for e in self.snapshot()
                if e.get("event") == event and e["_i"] > after
                and all(e.get(k) == v for k, v in fields.items())]

    def wait(self, event, timeout, after=-1, count=1, **fields):
        """Waits for `count` matching events; returns the last of the first
        `count`."""
        def got():
            found = self.find(event, after, **fields)
            return found[count - 1] if len(found) >= count else None
        return wait_for(got, timeout,
                        lambda: f"{count} x event {event} {fields} after #{after}; "
                                f"events so far:\n{self.excerpt()}")

    def excerpt(self, last=40):
        """The last agent events, compact, for failure messages and reports."""
        out = []
        for e in self.snapshot()[-last:]:
            extra = {k: v for k, v in e.items()
                     if k not in ("ts", "src", "level", "event", "msg", "_i")}
            out.append(f"    #{e['_i']} {e.get('event')} {json.dumps(extra)} "
                       f"{e.get('msg', '')[:160]}")
        return "\n".join(out)

    def worker_lines(self, pid):
        """Output lines of the worker with this pid (src == worker)."""
        out = []
        with self._lock:
            lines = list(self.lines)
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("src") == "worker" and obj.get("pid") == pid:
                out.append(obj.get("msg", ""))
        return out

    def save(self, suffix=""):
        if not LOG_DIR:
            return
        os.makedirs(LOG_DIR, exist_ok=True)
        with open(os.path.join(LOG_DIR, f"{self.name}{suffix}.log"), "w") as f:
            with self._lock:
                f.write("\n".join(self.lines) + "\n")


# --- the agent as a child ------------------------------------------------------

class AgentProcess:
    """corral-agent started with `argv` (after the binary), stdout = JSON log.
    `preexec` runs in the child before exec (e.g. to join a cgroup)."""

    def __init__(self, test, name, args, preexec=None, env=None):
        self.log = EventLog(name)
        full_env = dict(os.environ)
        for k in list(full_env):
            if k.startswith("CORRAL_") and k not in ("CORRAL_AGENT", "CORRAL_TEST_WORKER"):
                del full_env[k]  # no CORRAL_WORKERS etc. from the caller
        full_env.update(env or {})
        self.argv = [AGENT] + list(args)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=preexec, env=full_env)
        self.pid = self.proc.pid
        self.stderr_lines = []
        self.log.feed_stream(self.proc.stdout)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        test.addCleanup(self.cleanup)

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            self.stderr_lines.append(raw.decode(errors="replace").rstrip("\n"))

    def worker_pids(self):
        return {e["pid"] for e in self.log.find("worker_spawned") if "pid" in e}

    def stop(self, timeout=30):
        """SIGTERM to the agent (by pid) and wait; returns its exit code."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.eof.wait(5)

    def cleanup(self):
        if self.proc.poll() is None:
            try:
                self.proc.wait(0.1)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.kill(self.pid, signal.SIGKILL)
                    self.proc.wait(10)
        # Workers of this agent that outlived it (only after a SIGKILL):
        # ours by pid, and checked to still be one of our binaries.
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid != self.pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.log.eof.wait(5)
        self.log.save()
        for pipe in (self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass


# --- HTTP load -----------------------------------------------------------------

Result = collections.namedtuple("Result", "t_start t_end kind status body")


def classify(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead,
                        http.client.BadStatusLine)):
        return "closed"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    return f"error:{type(exc).__name__}:{exc}"


def one_request(port, path, timeout=10.0):
    """One GET on a new connection (Connection: close); never raises."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        return Result(t0, time.monotonic(), "ok" if resp.status == 200 else "bad_status",
                      resp.status, body)
    except Exception as exc:  # every failure is data
        return Result(t0, time.monotonic(), classify(exc), None, "")
    finally:
        conn.close()


class Load:
    """`threads` threads, each a loop of GET /?sleep_ms=N on new connections,
    so some requests are always in flight in the workers."""

    def __init__(self, port, threads=4, sleep_ms=(20, 40, 80, 120), timeout=15.0):
        self.port = port
        self.sleep_ms = sleep_ms
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
            ms = self.sleep_ms[(tid + i) % len(self.sleep_ms)]
            r = one_request(self.port, f"/?sleep_ms={ms}&t={tid}&i={i}", self.timeout)
            with self._lock:
                self.results.append(r)
            i += 1
            self._stop.wait(0.005)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        return self.snapshot()

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def ok_count(self):
        with self._lock:
            return sum(1 for r in self.results if r.kind == "ok")

    def wait_ok(self, n, timeout):
        target = self.ok_count() + n
        wait_for(lambda: self.ok_count() >= target, timeout, f"{n} more ok requests")

    def wait_served_by(self, pred, timeout, what):
        """Waits for a successful answer whose identity matches pred."""
        def seen():
            with self._lock:
                for r in self.results:
                    if r.kind == "ok":
                        ident = parse_identity(r.body)
                        if ident and pred(ident):
                            return ident
            return None
        return wait_for(seen, timeout, what)

    @staticmethod
    def summary(results):
        kinds = collections.Counter(r.kind for r in results)
        by_worker = collections.Counter(
            (parse_identity(r.body) or {}).get("worker") for r in results if r.kind == "ok")
        return f"{len(results)} requests: {dict(kinds)}; ok by worker {dict(by_worker)}"


# --- real cgroup v1 directories --------------------------------------------------

def _unescape(field):
    for esc, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(esc, ch)
    return field


def v1_cgroup_dir(controller):
    """(directory of this process's v1 `controller` cgroup, mount point), found
    through /proc/self/cgroup and /proc/self/mountinfo with the path mapped
    against the mount's root; raises unittest.SkipTest saying why not."""
    cg_path = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            if hid != "0" and controller in controllers.split(","):
                cg_path = path
    if cg_path is None:
        raise unittest.SkipTest(f"no cgroup v1 hierarchy with the {controller} controller "
                                "in /proc/self/cgroup (a cgroup v2 only host?)")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            fields = left.split(" ")
            fstype, _source, superopts = right.split(" ", 2)
            if fstype != "cgroup" or controller not in superopts.split(","):
                continue
            root, mount = _unescape(fields[3]), _unescape(fields[4])
            prefix = root.rstrip("/")
            if cg_path == root or cg_path.startswith(prefix + "/"):
                return os.path.join(mount, cg_path[len(prefix):].lstrip("/")), mount
    raise unittest.SkipTest(f"the v1 {controller} cgroup {cg_path} is not visible in any "
                            "cgroup mount in /proc/self/mountinfo")


def _read(path):
    with open(path) as f:
        return f.read().strip()


def make_v1_cgroup(test, controller, name, settings):
    """Creates `name` under this process's v1 `controller` cgroup and writes
    `settings` ([(file, value)], in order); skips the test (saying why) when
    that is not possible. The cgroup is removed in a cleanup registered now,
    so it runs after cleanups registered later (the agent's): whatever is
    still in it then is one of the agent's processes, SIGKILLed by pid and
    reported, and rmdir is retried until the cgroup is empty."""
    if os.geteuid() != 0:
        test.skipTest(f"needs root to create a {controller} cgroup")
    parent, _mount = v1_cgroup_dir(controller)
    cg = os.path.join(parent, name)
    try:
        os.mkdir(cg)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            test.skipTest(f"cgroup fs not writable: mkdir {cg}: {e.strerror}")
        raise
    test.addCleanup(_remove_cgroup, cg)
    for file, value in settings:
        try:
            with open(os.path.join(cg, file), "w") as f:
                f.write(str(value))
        except OSError as e:
            test.skipTest(f"cgroup fs not writable: {cg}/{file} = {value}: {e.strerror}")
    note(f"cgroup {cg}: " + ", ".join(f"{file}={_read(os.path.join(cg, file))}"
                                      for file, _ in settings))
    return cg


def _remove_cgroup(cg):
    procs = os.path.join(cg, "cgroup.procs")
    leftovers = [int(p) for p in _read(procs).split()] if os.path.exists(procs) else []
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if leftovers:
        note(f"cleanup: processes left in {cg}: {leftovers} (SIGKILLed)")
    deadline = time.monotonic() + 15
    while True:
        try:
            os.rmdir(cg)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise AssertionError(f"cannot remove {cg}: {e}; procs {_read(procs)}") from e
            time.sleep(0.05)


def join_cgroup_fn(cg):
    """A preexec_fn that moves the child into cgroup `cg` before exec."""
    procs = os.path.join(cg, "cgroup.procs")

    def join():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    return join
