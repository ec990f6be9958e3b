"""Harness for the control-plane tests in Python: a real corral-agent in a
temp dir, clients corral did not write (Debian's python3-grpcio, with the
few protobuf messages encoded by hand), and corralctl.

Rules it keeps: wait for conditions with deadlines, never sleep and hope;
stop only the processes it started, by pid; remove every temp dir and socket
file in addCleanup, so a failing test leaves nothing behind.

Binaries come from $CORRAL_AGENT and $CORRALCTL (set by CMake).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.environ.get("CORRAL_AGENT", os.path.join(_REPO, "build/agent/corral-agent"))
CORRALCTL = os.environ.get("CORRALCTL", os.path.join(_REPO, "build/ctl/corralctl"))

# A worker that needs nothing: prints a line, exits 0 on SIGTERM.
SHELL_WORKER = ["/bin/sh", "-c",
                "echo \"worker $CORRAL_WORKER_ID gen $CORRAL_WORKER_GENERATION up\"; "
                "trap 'exit 0' TERM; while :; do sleep 0.2 & wait $!; done"]

SERVING, NOT_SERVING = 1, 2


def wait_for(predicate, timeout=10, what="a condition", interval=0.02):
    """Polls predicate() until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- hand-encoded protobuf: just what these tests need -----------------------

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def health_request(service):
    """grpc.health.v1.HealthCheckRequest{service}."""
    data = service.encode()
    return b"\x0a" + _varint(len(data)) + data if data else b""


def health_status(response):
    """The status field of a HealthCheckResponse (0 when absent)."""
    return response[1] if len(response) >= 2 and response[0] == 0x08 else 0


def identity(x):
    return x


class Agent:
    """A corral-agent started by a test; stop() is registered as cleanup."""

    def __init__(self, test, flags=(), command=SHELL_WORKER, dir_mode=0o700):
        self.dir = tempfile.mkdtemp(prefix="corral-rpc-")
        test.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        os.chmod(self.dir, dir_mode)
        self.socket = os.path.join(self.dir, "agent.sock")
        self.log_path = os.path.join(self.dir, "agent.log")
        args = [AGENT, f"--control-socket={self.socket}", *flags, "--", *command]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        test.addCleanup(self.stop)
        self.channels = []
        wait_for(lambda: os.path.exists(self.socket) or self.proc.poll() is not None,
                 what="the control socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.log()}")

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def channel(self, target=None):
        ch = grpc.insecure_channel(target or f"unix:{self.socket}")
        self.channels.append(ch)
        return ch

    def stop(self):
        for ch in self.channels:
            ch.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sys.stderr.write(f"agent {self.proc.pid} ignored SIGTERM; SIGKILL\n")
                self.proc.kill()  # its workers get SIGTERM (parent death signal)
                self.proc.wait(timeout=5)

    def ctl(self, *args, user=None, env=None, timeout=20):
        """Runs corralctl against this agent; returns (code, stdout, stderr)."""
        return corralctl("--socket", self.socket, *args, user=user, env=env,
                         timeout=timeout)

    def status(self):
        code, out, err = self.ctl("status", "-o", "json")
        if code != 0:
            raise AssertionError(f"corralctl status: {code} {err}")
        return json.loads(out)

    def wait_ready(self, count):
        def ready():
            s = self.status()
            return s["state"] == "AGENT_STATE_RUNNING" and s["ready_workers"] == count
        wait_for(ready, what=f"{count} workers READY")


def corralctl(*args, user=None, env=None, timeout=20):
    cmd = [CORRALCTL, *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user_group(user)}",
               "--clear-groups", *cmd]
    full_env = dict(os.environ)
    full_env.pop("CORRAL_SOCKET", None)
    full_env.update(env or {})
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=full_env)
    return p.returncode, p.stdout, p.stderr


def user_group(user):
    return "nogroup" if user == "nobody" else user


def check_binaries(test):
    for path, var in ((AGENT, "CORRAL_AGENT"), (CORRALCTL, "CORRALCTL")):
        if not os.access(path, os.X_OK):
            test.fail(f"{var}={path} is not an executable file; build first")


class TestCase(unittest.TestCase):
    def setUp(self):
        check_binaries(self)
