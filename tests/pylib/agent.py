"""One corral-agent run, watched from outside.

pid1=True runs it under `unshare --pid --fork --mount-proc --kill-child`, so
it is PID 1 of a new pid namespace (what a container gives it); pid1=False
runs it as a plain child (it must then be a subreaper).

No port is guessed: listeners are given as tcp://127.0.0.1:0 and the agent
binds them itself; the addresses it got come from its agent_started event,
and the probe, HTTP and mTLS ports (--probe-port=auto, --http-port=auto,
--control-tls-listen=127.0.0.1:0) from its control_listening event.

Its control socket lives in its own temp dir (never the shared
/run/corral/agent.sock). Cleanup (registered with the test) kills what is
left by pid, even when the test failed: SIGKILL of PID 1 takes the whole
namespace; a plain agent is frozen first and its descendants killed by pid.
"""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

from . import paths, procfs
from .events import EventLog
from .processes import die_with_parent, kill_quietly
from .waiting import Timeout, wait_for

LOOPBACK = "tcp://127.0.0.1:0"
# A worker that needs nothing (no port, no notify): prints a line, exits 0 on
# SIGTERM. For tests of the control plane.
SHELL_WORKER = ["/bin/sh", "-c",
                "echo \"worker $CORRAL_WORKER_ID gen $CORRAL_WORKER_GENERATION up\"; "
                "trap 'exit 0' TERM; while :; do sleep 0.2 & wait $!; done"]
AUTO = "auto"  # --probe-port / --http-port: the kernel picks the port
# The first line of a sanitizer report (a build with CORRAL_SANITIZE, see
# scripts/test.sh --sanitize): ASan, LeakSanitizer, TSan, and UBSan's
# "file.cc:12:5: runtime error: ...".
SANITIZER_REPORT = re.compile(
    r"(ERROR|WARNING): (Address|Leak|Thread|UndefinedBehavior)Sanitizer"
    r"|:\d+:\d+: runtime error: ")
_LOG_DIR = os.environ.get("CORRAL_TEST_LOG_DIR")
_saved_logs = set()  # log files this process has started (first agent truncates)


def agent_env(env=None):
    """This process's environment without CORRAL_* variables (a stray
    CORRAL_WORKERS would change the agent under test), plus `env`."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    out.update(env or {})
    return out


class Agent:
    """Build with the arguments, start(), then look at .log (an EventLog),
    .port, .probe_port, ... `test` is a unittest.TestCase: cleanups go to
    it. `name` names the saved log (default: the test's id). `prefix`: a
    command that execs the agent (e.g. nice -n 5), pid1=False only."""

    def __init__(self, test, args=(), command=None, worker_args=(), pid1=False, env=None,
                 listen=(), log_format="json", control_socket=None, preexec=None,
                 dir_mode=0o700, name=None, prefix=()):
        if preexec and pid1:
            raise ValueError("preexec runs in a plain agent's child only (pid1=False)")
        self.agent_path = paths.binary("CORRAL_AGENT")
        if command is None:
            worker = paths.binary("CORRAL_TEST_WORKER")
            paths.require(("CORRAL_AGENT", self.agent_path), ("CORRAL_TEST_WORKER", worker))
            command = [worker, *worker_args]
        else:
            paths.require(("CORRAL_AGENT", self.agent_path))
        self.test = test
        self.pid1 = pid1
        self.name = name or test.id()
        self.preexec = preexec
        self.dir = tempfile.mkdtemp(prefix="corral-agent-")
        os.chmod(self.dir, dir_mode)
        test.addCleanup(_remove_tree, self.dir)
        # The agent and its workers run in the temp dir: nothing they write
        # to their working directory lands in the source tree.
        self.cwd = self.dir
        if control_socket is None:
            control_socket = os.path.join(self.dir, "agent.sock")
        self.socket = control_socket or None
        self.command = list(command)
        self.argv = [*prefix, self.agent_path]
        if log_format:
            self.argv.append(f"--log-format={log_format}")
        self.argv.append(f"--control-socket={control_socket}")
        self.argv += [f"--listen={spec}" for spec in listen]
        self.argv += list(args) + ["--", *self.command]
        self.env = agent_env(env)
        self.log = EventLog()
        self.stderr_lines = []
        self.proc = None
        self.host_pid = None
        self.listen = []     # bound addresses, from agent_started
        self._readers = []
        self._cleaned = False

    # --- life cycle ----------------------------------------------------------------

    def start(self, wait_started=True, timeout=10):
        argv = self.argv
        if self.pid1:
            # setpriv: unshare dies with the test process, and --kill-child
            # then takes the agent (and with it the namespace) along.
            argv = ["setpriv", "--pdeathsig", "KILL", "unshare", "--pid", "--fork",
                    "--mount-proc", "--kill-child", *argv]
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.env, cwd=self.cwd, start_new_session=True,
            preexec_fn=None if self.pid1 else self._before_exec)
        self.test.addCleanup(self.cleanup)
        self._readers = [self.log.feed(self.proc.stdout),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        self._readers[1].start()
        self.host_pid = self._find_agent_pid()
        if wait_started:
            self.wait_started(timeout)
        return self

    def _before_exec(self):
        """In the child (plain agent): die with the test, then `preexec`."""
        die_with_parent()
        if self.preexec:
            self.preexec()

    def wait_started(self, timeout=10):
        """Waits for agent_started (failing at once if the agent exits) and
        reads the addresses it bound."""
        started = self.log.wait_until(
            lambda: self.log.agent_events("agent_started") or self.proc.poll() is not None,
            timeout, "agent_started")
        if started is True:
            raise AssertionError(f"the agent exited {self.proc.returncode} before "
                                 f"agent_started:\n{self.tail()}")
        listen = started[0].get("listen", "")
        self.listen = [a for a in listen.split(",") if a]
        return started[0]

    def _read_stderr(self):
        for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode(errors="replace").rstrip("\n"))

    def _find_agent_pid(self):
        if not self.pid1:
            return self.proc.pid
        agent_exe = os.path.realpath(self.agent_path)

        def agent_child():
            for child in procfs.children(self.proc.pid):
                try:
                    if os.readlink(f"/proc/{child}/exe") == agent_exe:
                        return child
                except OSError:
                    pass
            return -1 if self.proc.poll() is not None else None
        pid = wait_for(agent_child, 10, "the agent to run under unshare")
        return None if pid == -1 else pid

    def cleanup(self):
        """Kills what is left, collects the last lines, saves the log. Safe
        to call more than once."""
        if self.proc is None or self._cleaned:
            return
        self._cleaned = True
        self.log.resume()
        if self.proc.poll() is None:
            self.kill()
        self.log.eof.wait(5)
        self._readers[1].join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self._save_log()
        # The agent checks every event against its registry
        # (agent/supervisor/event_registry.cc) and reports a mismatch as
        # event_invalid: any test run that meets one fails.
        invalid = self.log.agent_events("event_invalid")
        if invalid:
            raise AssertionError(f"the agent emitted events its registry does not "
                                 f"declare: {invalid}")
        # In a sanitized build a report from the agent (stderr) or a worker
        # (its output, logged by the agent) fails the test that met it.
        reports = self.sanitizer_reports()
        if reports:
            raise AssertionError(f"sanitizer report(s) in this run: {reports[:3]}"
                                 f" (the whole log: {self.name})")

    def sanitizer_reports(self):
        """Lines that start a sanitizer report, from the agent's stderr, the
        workers' output, and lines that are not JSON."""
        worker_lines = [e.get("msg", "") for e in self.log.snapshot()
                        if e.get("src") == "worker"]
        return [line for line in (self.stderr_lines + worker_lines + self.log.bad_lines)
                if isinstance(line, str) and SANITIZER_REPORT.search(line)]

    def kill(self):
        """SIGKILL the agent and everything it started, by pid."""
        if self.pid1:
            if self.host_pid:
                kill_quietly(self.host_pid)  # the namespace dies with it
                try:
                    # unshare reaps the agent and exits; killing it first
                    # would leave the agent's zombie to the host's init.
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            self.proc.kill()  # a no-op once reaped, so never a reused pid
        else:
            # Freeze the agent so it forks and reaps no more (its dead
            # children stay zombies: their pids cannot be reused), then kill
            # its tree; it is a subreaper, so orphans are in it too.
            self.proc.send_signal(signal.SIGSTOP)
            for _ in range(3):
                for pid in procfs.descendants(self.proc.pid):
                    kill_quietly(pid)
            self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout=30):
        """SIGTERM to the agent; waits for it to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        code = self.wait_exit(timeout)
        self.log.eof.wait(5)
        return code

    def _save_log(self):
        if not _LOG_DIR:
            return
        name = re.sub(r"[^\w.-]", "_", self.name)
        path = os.path.join(_LOG_DIR, name + ".log")
        if path not in _saved_logs and os.path.exists(path):
            os.remove(path)  # one file per test: its first agent starts it afresh
        _saved_logs.add(path)
        self.log.write(path, f"argv: {self.argv} pid1={self.pid1} rc={self.proc.returncode}",
                       ["# stderr: " + s for s in self.stderr_lines])

    # --- what it bound -----------------------------------------------------------

    @property
    def port(self):
        """The port of the first TCP listener."""
        ports = self.ports()
        if not ports:
            raise AssertionError(f"no TCP listener in agent_started: {self.listen}")
        return ports[0]

    def ports(self):
        return [int(a.rsplit(":", 1)[1]) for a in self.listen if a.startswith("tcp://")]

    def control_listening(self, timeout=10):
        """The control_listening event (where the control plane listens)."""
        return self.log.wait_event("control_listening", timeout)

    @property
    def probe_port(self):
        return self._control_port("probe_port")

    @property
    def http_port(self):
        return self._control_port("http_port")

    @property
    def tls_port(self):
        return self._control_port("tls_port")

    def _control_port(self, field):
        e = self.control_listening()
        if field not in e:
            raise AssertionError(f"control_listening has no {field}: {e}")
        return e[field]

    # --- looking at it -----------------------------------------------------------

    def signal(self, sig):
        os.kill(self.host_pid, sig)

    def wait_exit(self, timeout):
        """Waits for the agent to exit and for its last lines to be read: a
        test that asks about events next sees every one it wrote."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout(f"agent still running {timeout}s later; last events:\n"
                          + self.tail()) from None
        # Its stdout ends when the agent (and every worker sharing it) is
        # gone; a paused log is not read, so do not wait for one.
        if not self.log.paused:
            self.log.eof.wait(5)
        return code

    def host_pid_of(self, pid):
        """The host pid of a pid the agent reports (a namespace pid when it
        is PID 1 of its own namespace)."""
        if not self.pid1:
            return pid
        for p in procfs.descendants(self.host_pid):
            ids = procfs.ns_pids(p)
            if ids and ids[-1] == pid:
                return p
        return None

    def tail(self, n=25):
        return self.log.tail(n) + "".join(f"\nstderr: {s}" for s in self.stderr_lines[-10:])

    # The EventLog's questions, asked of the agent.
    def agent_events(self, name=None, after=-1, **fields):
        return self.log.agent_events(name, after, **fields)

    def worker_lines(self, **fields):
        return self.log.worker_lines(**fields)

    def ready_workers(self):
        return self.log.ready_workers()

    def wait_steered(self, slots, timeout=10):
        """Waits until new connections go to READY workers `slots` (comma
        separated), as the last balance_steering event says."""
        def steered():
            last = self.agent_events("balance_steering")
            return bool(last) and last[-1]["slots"] == slots and last[-1]["ready"] is True
        self.wait_until(steered, timeout, f"new connections steered to READY workers {slots}")

    def wait_event(self, name, timeout=10, count=1, after=-1, **fields):
        return self.log.wait_event(name, timeout, count, after, **fields)

    def wait_until(self, predicate, timeout, what):
        return self.log.wait_until(predicate, timeout, what)

    def wait_ready(self, n, timeout=10):
        return self.log.wait_ready(n, timeout)

    @property
    def bad_lines(self):
        return self.log.bad_lines

    @property
    def events(self):
        return self.log.snapshot()

    # --- its control socket ------------------------------------------------------

    def ctl(self, *args, user=None, env=None, timeout=20):
        """corralctl against this agent's socket: (code, stdout, stderr)."""
        return corralctl("--socket", self.socket, *args, user=user, env=env, timeout=timeout)

    def status(self):
        code, out, err = self.ctl("status", "-o", "json")
        if code != 0:
            raise AssertionError(f"corralctl status: exit {code}: {err}")
        return json.loads(out)

    def wait_status_ready(self, count, timeout=10):
        """Waits until `corralctl status` says running with exactly `count`
        workers READY (the control plane's view, not the log's)."""
        def ready():
            s = self.status()
            return s["state"] == "running" and s["ready_workers"] == count
        wait_for(ready, timeout, f"corralctl status: running, {count} workers READY")


def corralctl(*args, user=None, env=None, timeout=20):
    """Runs corralctl (as `user` when given); returns (code, stdout, stderr).
    CORRAL_SOCKET is taken from `env` only."""
    ctl = paths.binary("CORRALCTL")
    paths.require(("CORRALCTL", ctl))
    cmd = [ctl, *args]
    if user:
        group = "nogroup" if user == "nobody" else user
        cmd = ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", *cmd]
    full_env = dict(os.environ)
    full_env.pop("CORRAL_SOCKET", None)
    full_env.update(env or {})
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    return p.returncode, p.stdout, p.stderr


def _remove_tree(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def signal_is(value, number):
    """The contract does not fix how a signal is spelled in events: accept
    9, "9", "SIGKILL" and "KILL" for signal 9."""
    name = signal.Signals(number).name
    return value in (number, str(number), name, name[3:])
