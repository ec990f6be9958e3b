"""Worker processes without the agent: a corral-worker (or any command)
given a listening socket exactly as the agent passes it (fd 3, LISTEN_FDS=1,
LISTEN_PID = its own pid), or alone on PORT=0 (the kernel picks; the test
reads the port from /proc). Plus the agent's side of sd_notify, for tests of
the worker SDK."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from . import paths, procfs
from .processes import spawn, stop
from .waiting import wait_for


def listening_socket(test=None, unix_path=None):
    """A listening socket on 127.0.0.1 port 0 (or a unix path): the agent's
    shared socket, as the test holds it (closed in its cleanups when `test`
    is given). Its port: .getsockname()[1]."""
    if unix_path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(unix_path)
    else:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
    s.listen(1024)
    if test is not None:
        test.addCleanup(s.close)
    return s


class ClosedPort:
    """A loopback TCP port bound but not listening, held for the test: a
    connection to it is refused, and no other process can take it meanwhile
    (unlike a port found free and let go)."""

    def __init__(self, test=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        if test is not None:
            test.addCleanup(self.sock.close)


# Puts stdin (the shared socket) at fd 3 as the agent would, then execs the
# command with LISTEN_PID = its own pid ($$ survives exec).
_AS_AGENT = 'exec 3<&0 0</dev/null; LISTEN_PID=$$ exec "$@"'
_WRONG_PID = 'exec 3<&0 0</dev/null; exec "$@"'


class Worker:
    def __init__(self, proc, log, shared_port):
        self.proc = proc
        self.log = log
        self.shared_port = shared_port

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def own_port(self, timeout=10):
        """The port it bound itself (PORT=0), read from /proc."""
        def bound():
            ports = [p for p in procfs.listening_ports(self.pid) if p != self.shared_port]
            if not self.alive():
                raise AssertionError(f"worker {self.pid} exited {self.proc.returncode}: "
                                     f"{self.output()[-500:]}")
            return ports[0] if ports else None
        return wait_for(bound, timeout, lambda: f"worker {self.pid} to listen on its own port; "
                                                f"output: {self.output()[-300:]}")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signals it, waits; its exit code (SIGKILL after `timeout`)."""
        return stop(self.proc, sig, timeout)


def _worker_env(env, extra):
    out = {k: v for k, v in os.environ.items()
           if k != "PORT" and not k.startswith(("LISTEN_", "REDIS_", "NOTIFY_", "WATCHDOG_",
                                                 "CORRAL_"))}
    out.update(env or {})
    out.update(extra or {})
    return out


def start_worker(test, env=None, sock=None, worker_id="0", extra_env=None, args=(),
                 wrong_pid=False, command=None, pass_fds=()):
    """Starts corral-worker (or `command`) sharing `sock` as fd 3 with
    LISTEN_FDS=1 (and LISTEN_PID=1 when wrong_pid), and PORT=0 for a port
    of its own when it does not use the socket. Stopped in the test's
    cleanups; its output goes to worker.log (worker.output())."""
    if command is None:
        path = paths.binary("CORRAL_WORKER")
        paths.require(("CORRAL_WORKER", path))
        command = [path]
    logdir = tempfile.mkdtemp(prefix="corral-worker-")
    test.addCleanup(shutil.rmtree, logdir, True)
    log = os.path.join(logdir, f"worker-{worker_id}-{time.time_ns()}.log")
    full_env = _worker_env(env, extra_env)
    full_env["CORRAL_WORKER_ID"] = str(worker_id)
    full_env["PORT"] = "0"
    argv = list(command) + list(args)
    stdin = subprocess.DEVNULL
    shared_port = None
    if sock is not None:
        full_env["LISTEN_FDS"] = "1"
        full_env["LISTEN_FDNAMES"] = "http"
        if wrong_pid:
            full_env["LISTEN_PID"] = "1"
        argv = ["/bin/sh", "-c", _WRONG_PID if wrong_pid else _AS_AGENT, "sh"] + argv
        stdin = sock.fileno()
        if sock.family != socket.AF_UNIX:
            shared_port = sock.getsockname()[1]
    with open(log, "w") as out:
        proc = spawn(argv, env=full_env, stdin=stdin, stdout=out, stderr=out,
                     pass_fds=pass_fds)
    test.addCleanup(stop, proc, signal.SIGKILL, 5)
    return Worker(proc, log, shared_port)


class NotifySocket:
    """The agent's end of sd_notify: a datagram socket in a temp dir that
    records every message with the time it was read (time.monotonic())."""

    def __init__(self, test=None):
        self.dir = tempfile.mkdtemp(prefix="corral-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.received = []   # (time, message)
        self._lock = threading.Lock()
        if test is not None:
            test.addCleanup(self.close)

    def drain(self):
        """Reads what has arrived; every message so far, in order."""
        while True:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                break
            with self._lock:
                self.received.append((time.monotonic(), data.decode(errors="replace")))
        with self._lock:
            return [m for _, m in self.received]

    def times(self, message):
        """When each `message` arrived."""
        self.drain()
        with self._lock:
            return [t for t, m in self.received if m == message]

    def wait(self, predicate, timeout, what):
        """Waits until predicate(messages) is truthy; returns its value."""
        return wait_for(lambda: predicate(self.drain()), timeout, what, interval=0)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)
