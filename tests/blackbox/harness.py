"""Black-box harness: runs corral-agent (as PID 1 of a new pid namespace, or
as a plain child) over corral-test-worker and watches it from outside.

Everything here is Python 3 stdlib. Rules it keeps:
  * wait for conditions with deadlines (wait_for), never sleep and hope;
  * kill only pids it started: the agent (SIGKILL on PID 1 of a namespace
    kills the whole namespace) or, when the agent is not PID 1, the agent's
    own descendants found through /proc; never by name;
  * clean up in addCleanup, so a failing test leaves nothing behind.

Binaries come from $CORRAL_AGENT and $CORRAL_TEST_WORKER (set by CMake);
agent logs are kept in $CORRAL_BB_LOG_DIR when set.
"""

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# Re-exported, so tests import everything from here.
from loadgen import LoadGenerator, http_get, one_request  # noqa: F401
from procfs import (accepted_peer_ports, children, descendants, ns_pids,  # noqa: F401
                    proc_state, socket_inodes)
from waiting import wait_for  # noqa: F401

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.environ.get("CORRAL_AGENT", os.path.join(_REPO, "build/agent/corral-agent"))
WORKER = os.environ.get(
    "CORRAL_TEST_WORKER", os.path.join(_REPO, "build/tests/worker/corral-test-worker"))
LOG_DIR = os.environ.get("CORRAL_BB_LOG_DIR")

# SIGABRT of a hung worker must not leave core files behind.
resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))

_saved_logs = set()  # test ids whose log file this process has started

IDENTITY_RE = re.compile(r"worker=(\S+) gen=(\S+) pid=(\d+)")


def note(text):
    """A line in the test's output (ctest shows it), for evidence."""
    sys.stderr.write(f"  [{text}]\n")


def check_binaries(test):
    for path, var in ((AGENT, "CORRAL_AGENT"), (WORKER, "CORRAL_TEST_WORKER")):
        if not os.access(path, os.X_OK):
            test.fail(f"{var}={path} is not an executable file; build first")


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_identity(body):
    """{'worker': '0', 'gen': '1', 'pid': 12} from a test worker's answer."""
    m = IDENTITY_RE.search(body)
    if not m:
        return None
    return {"worker": m.group(1), "gen": m.group(2), "pid": int(m.group(3))}


# --- the agent -----------------------------------------------------------------

class Agent:
    """One corral-agent run. pid1=True: under `unshare --pid --fork
    --mount-proc --kill-child`, so the agent is PID 1 of a new pid namespace;
    pid1=False: a plain child of the test (the agent must be a subreaper).

    Events (the agent's JSON stdout lines) are collected by a reader thread;
    each gets a '_t' key: time.monotonic() when the test read it."""

    def __init__(self, test, agent_args, worker_args=(), pid1=True, env=None,
                 command=None, log_format_json=True):
        check_binaries(test)
        self.test = test
        self.pid1 = pid1
        self.command = command if command is not None else [WORKER, *worker_args]
        self.argv = [AGENT] + (["--log-format=json"] if log_format_json else [])
        self.argv += list(agent_args) + ["--", *self.command]
        self.env = dict(os.environ, **(env or {}))
        self.events = []
        self.bad_lines = []      # stdout lines that are not JSON objects
        self.stderr_lines = []
        self.host_pid = None
        self.proc = None
        self._cond = threading.Condition()
        self._readers = []
        self._cleaned = False
        self._reading = threading.Event()  # cleared = stdout reader paused
        self._reading.set()

    # life cycle ----------------------------------------------------------------

    def start(self, wait_started=True):
        argv = self.argv
        if self.pid1:
            # setpriv: unshare dies with the test process, and --kill-child
            # then takes the agent (and with it the namespace) along.
            argv = ["setpriv", "--pdeathsig", "KILL", "unshare", "--pid", "--fork",
                    "--mount-proc", "--kill-child", *argv]
        self.t_start = time.monotonic()
        # The agent runs in a temp dir, so nothing it or a worker writes to
        # its working directory lands in the source tree.
        self.cwd = TempDir(self.test).path
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=self.env, cwd=self.cwd, start_new_session=True)
        self.test.addCleanup(self.cleanup)
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._readers:
            t.start()
        self.host_pid = self._find_agent_pid()
        if wait_started:
            self.wait_event("agent_started", timeout=10)
        return self

    def _find_agent_pid(self):
        if not self.pid1:
            return self.proc.pid
        agent_exe = os.path.realpath(AGENT)

        def agent_child():
            for child in children(self.proc.pid):
                try:
                    if os.readlink(f"/proc/{child}/exe") == agent_exe:
                        return child
                except OSError:
                    pass
            if self.proc.poll() is not None:
                return -1
            return None
        pid = wait_for(agent_child, 10, "the agent to run under unshare")
        return None if pid == -1 else pid

    def cleanup(self):
        """Kills what is left, collects the last lines, saves the log. Safe
        to call more than once."""
        if self.proc is None or self._cleaned:
            return
        self._cleaned = True
        self.resume_stdout()
        if self.proc.poll() is None:
            self.kill()
        for t in self._readers:
            t.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self._save_log()

    def kill(self):
        """SIGKILL the agent and everything it started."""
        if self.pid1:
            if self.host_pid:
                _kill(self.host_pid, signal.SIGKILL)  # the namespace dies with it
                try:
                    # unshare reaps the agent and exits; killing it first
                    # would leave the agent's zombie to the host's init.
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            self.proc.kill()  # a no-op once reaped, so never a reused pid
        else:
            # Freeze the agent so it forks no more, then kill its tree (it is
            # a subreaper: orphans of its workers are its children too).
            self.proc.send_signal(signal.SIGSTOP)
            for _ in range(3):
                for pid in descendants(self.proc.pid):
                    _kill(pid, signal.SIGKILL)
            self.proc.kill()
        self.proc.wait(10)

    def _save_log(self):
        if not LOG_DIR:
            return
        os.makedirs(LOG_DIR, exist_ok=True)
        name = self.test.id().replace("/", "_")
        # One file per test: the first agent of a test run starts it afresh.
        mode = "a" if name in _saved_logs else "w"
        _saved_logs.add(name)
        with open(os.path.join(LOG_DIR, name + ".log"), mode) as f:
            f.write(f"# argv: {self.argv} pid1={self.pid1} rc={self.proc.returncode}\n")
            for e in self.events:
                f.write(json.dumps({k: v for k, v in e.items() if k != "_t"}) + "\n")
            for line in self.bad_lines:
                f.write("# not json: " + line + "\n")
            for line in self.stderr_lines:
                f.write("# stderr: " + line + "\n")

    def pause_stdout(self):
        """Stop reading the agent's stdout, so its pipe fills and blocks."""
        self._reading.clear()

    def resume_stdout(self):
        self._reading.set()

    def _read_stdout(self):
        while True:
            self._reading.wait()
            raw = self.proc.stdout.readline()
            if not raw:
                return
            try:
                # JSON is UTF-8: invalid bytes make a bad line, not a guess.
                line = raw.decode().rstrip("\n")
                event = json.loads(line)
                if not isinstance(event, dict):
                    raise ValueError("not an object")
            except ValueError:  # UnicodeDecodeError and JSONDecodeError too
                with self._cond:
                    self.bad_lines.append(raw.decode(errors="replace").rstrip("\n"))
                continue
            event["_t"] = time.monotonic()
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.stderr_lines.append(raw.decode(errors="replace").rstrip("\n"))

    # looking at it ---------------------------------------------------------------

    def signal(self, sig):
        os.kill(self.host_pid, sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"agent still running {timeout}s later; last events:\n" + self.tail())

    def agent_events(self, name=None, **fields):
        """Agent events called `name` (any when None) whose fields match."""
        with self._cond:
            events = list(self.events)
        return [e for e in events if e.get("src") == "agent"
                and (name is None or e.get("event") == name)
                and all(e.get(k) == v for k, v in fields.items())]

    def worker_lines(self, **fields):
        with self._cond:
            events = list(self.events)
        return [e for e in events if e.get("src") == "worker"
                and all(e.get(k) == v for k, v in fields.items())]

    def wait_until(self, predicate, timeout, what):
        """Like wait_for, but wakes on each new event as well."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; "
                    f"last events:\n{self.tail()}")
            with self._cond:
                self._cond.wait(min(left, 0.05))

    def wait_event(self, name, timeout=10, count=1, **fields):
        """Waits for `count` agent events called `name` matching fields;
        returns the count-th one."""
        def found():
            events = self.agent_events(name, **fields)
            return events[count - 1] if len(events) >= count else None
        return self.wait_until(found, timeout, f"{count} x {name} {fields}")

    def ready_workers(self):
        """{worker id: pid} of workers that reported READY and have not
        exited, by the agent's events."""
        live = {}
        with self._cond:
            events = list(self.events)
        for e in events:
            if e.get("src") != "agent":
                continue
            if e.get("event") == "worker_ready":
                live[e["worker"]] = e["pid"]
            elif e.get("event") == "worker_exited" and live.get(e.get("worker")) == e.get("pid"):
                del live[e["worker"]]
        return live

    def wait_ready(self, n, timeout=10):
        return self.wait_until(lambda: (lambda r: r if len(r) >= n else None)(
            self.ready_workers()), timeout, f"{n} READY workers")

    def host_pid_of(self, pid):
        """The host pid of a pid the agent reports (a namespace pid when the
        agent is PID 1 of its own namespace)."""
        if not self.pid1:
            return pid
        for p in descendants(self.host_pid):
            ids = ns_pids(p)
            if ids and ids[-1] == pid:
                return p
        return None

    def tail(self, n=25):
        """The last n events (long messages cut), for failure messages."""
        def short(e):
            e = {k: v for k, v in e.items() if k != "_t"}
            if len(e.get("msg", "")) > 120:
                e["msg"] = e["msg"][:120] + f"...({len(e['msg'])} chars)"
            return json.dumps(e)
        with self._cond:
            lines = [short(e) for e in self.events[-n:]]
            lines += ["stderr: " + s for s in self.stderr_lines[-10:]]
        return "\n".join(lines)


def signal_is(value, number):
    """The contract does not fix how a signal is spelled in events: accept
    9, "9", "SIGKILL" and "KILL" for signal 9."""
    name = signal.Signals(number).name
    return value in (number, str(number), name, name[3:])


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class TempDir:
    """A temporary directory removed by the test's cleanups."""

    def __init__(self, test):
        self._dir = tempfile.TemporaryDirectory(prefix="corral-bb-")
        self.path = self._dir.name
        test.addCleanup(self._dir.cleanup)

    def join(self, *names):
        return os.path.join(self.path, *names)


class AgentTestCase(unittest.TestCase):
    """Base class: start_agent() with cleanup and a free port."""

    maxDiff = None

    def start_agent(self, agent_args, worker_args=(), **kw):
        return Agent(self, agent_args, worker_args, **kw).start()

    def listen_args(self, port, name=None):
        prefix = f"{name}=" if name else ""
        return [f"--listen={prefix}tcp://127.0.0.1:{port}"]

    def assertNoBadLines(self, agent):
        self.assertEqual(agent.bad_lines, [], "agent stdout lines that are not JSON")
