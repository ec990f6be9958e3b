"""redis-server / redis-sentinel for tests, and a minimal RESP client.

Redis cannot bind port 0 and report it, so the server gets a port the
kernel just handed out (bind port 0, read it, close) and, should another
process take it before redis binds, redis fails with "Address already in
use" and the start is retried on another port: a conflict costs a retry,
never a failed test. A restart keeps the port (clients keep their URL) and
retries the bind for a few seconds. Killed by pid; its temp dir removed.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from .processes import spawn, stop
from .waiting import Timeout, wait_for


def resp(port, *args, timeout=1.0):
    """One command to 127.0.0.1:port; the reply (bytes, int, list, None), or
    raises (OSError, or RuntimeError for an error reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        return _read_reply(s.makefile("rb"))


def _read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError(f"bad reply {line!r}")


def pings(port):
    try:
        return resp(port, "PING", timeout=0.3) == b"PONG"
    except (OSError, RuntimeError):
        return False


def kernel_port():
    """A port the kernel hands out now (it may be taken again before use:
    only for servers that retry on a conflict)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """redis-server (or redis-sentinel, binary=) on 127.0.0.1 in its own temp
    dir; `config` is written to redis.conf when given. Use as a context
    manager, or close()."""

    def __init__(self, *args, binary="redis-server", config=None, attempts=5):
        self.dir = tempfile.mkdtemp(prefix="corral-redis-")
        self.args = list(args)
        self.binary = binary
        self.config = config
        self.proc = None
        self.port = None
        try:
            for attempt in range(attempts):
                self.port = kernel_port()
                if self._start_once():
                    return
            raise AssertionError(f"{binary}: {attempts} ports in a row were taken")
        except BaseException:
            self.close()
            raise

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self):
        return os.path.join(self.dir, "redis.log")

    def _argv(self):
        argv = [self.binary]
        if self.config is not None:
            path = os.path.join(self.dir, "redis.conf")
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write(self.config)
            argv.append(path)
        argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                 "--logfile", self.log_path]
        if self.binary == "redis-server":
            argv += ["--save", ""]
        return argv + self.args

    def _start_once(self):
        """Starts on self.port; True when it answers PING, False when the
        port was taken; raises for anything else."""
        self.proc = spawn(self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        up = wait_for(lambda: pings(self.port) or self.proc.poll() is not None, 10,
                      lambda: f"{self.binary} on {self.port}: {self._log_tail()}")
        if self.proc.poll() is None and up:
            return True
        if "Address already in use" in self._log_tail():
            return False
        raise AssertionError(f"{self.binary} exited {self.proc.returncode}: {self._log_tail()}")

    def _log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-5:])
        except OSError:
            return "(no log)"

    def start(self, timeout=10):
        """Starts it again on the same port and dir (after kill())."""
        deadline = time.monotonic() + timeout
        while not self._start_once():
            if time.monotonic() > deadline:
                raise Timeout(f"port {self.port} stayed taken for {timeout}s")
            time.sleep(0.1)  # retry pacing: the port is held by someone else

    def kill(self):
        """SIGKILL (a crash: nothing is flushed but what is on disk)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.kill()
        self.start()

    def cmd(self, *args):
        return resp(self.port, *args)

    def close(self):
        if self.proc:
            stop(self.proc, timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
