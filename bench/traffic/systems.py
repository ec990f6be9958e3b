"""The supervisors the traffic benchmark compares, behind one small interface.

Each System starts 2 workers serving HTTP on a loopback port, reports its
worker pids, and (where it can) reloads, replaces a killed worker, scales and
drains. Every process is started by `spawn` (it dies with this script,
PR_SET_PDEATHSIG) or, for PM2's detached daemon, found by pid; cleanup kills
by pid only, after checking the pid still runs what we started.
"""
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
APP_JS = os.path.join(HERE, "app.js")
TUTORIAL_JS = os.path.join(HERE, "tutorial-app.js")
REGISTER_JS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "worker",
                           "node", "register.js")
CLUSTER_JS = os.path.join(HERE, "node-cluster.js")
_libc = ctypes.CDLL(None)
PROCS = []  # every Popen this script started, for the final cleanup


def spawn(argv, **kw):
    # prctl(PR_SET_PDEATHSIG, SIGKILL): gone if this script dies.
    p = subprocess.Popen(argv, preexec_fn=lambda: _libc.prctl(1, 9),
                         start_new_session=True, **kw)
    PROCS.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """Child pids of `pid` (every thread's children), [] if it is gone."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return sorted(set(out))


def alive(pid):
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_checked(pid, marker, sig=signal.SIGKILL):
    """Signals `pid` only if its command line still contains `marker` (or
    one of them, given a tuple)."""
    markers = marker if isinstance(marker, tuple) else (marker,)
    line = cmdline(pid)
    if any(m and m in line for m in markers):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def cpu_seconds(pids):
    """utime + stime of `pids` from /proc (0 for a pid that is gone)."""
    ticks = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def http_ok(port, path="/"):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def poll(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout,
                                                                  what))


class System:
    """2 workers behind one port. Subclasses fill in the mechanisms."""
    events = True     # reload, kill and drain apply
    scalable = False  # corralctl scale applies
    marker = ""       # what every worker's command line contains

    def __init__(self, name, workers, tmp, env, log):
        self.name, self.workers, self.tmp = name, workers, tmp
        self.env, self.log = env, log
        self.port = None
        self.seen = set()  # every worker pid ever seen, for cleanup

    def supervisor(self):
        """The supervisor's pid, None without one."""
        return None

    def worker_pids(self):
        pids = children(self.supervisor())
        self.seen.update(pids)
        return pids

    def serving(self, count=None):
        return (len(self.worker_pids()) == (count or self.workers)
                and http_ok(self.port))

    def wait_serving(self, count=None, timeout=30):
        poll(lambda: self.serving(count), timeout,
             "%s to serve with %d workers" % (self.name,
                                              count or self.workers))

    def reload(self):
        raise NotImplementedError

    def scale(self, count):
        raise NotImplementedError

    def terminate(self):
        os.kill(self.supervisor(), signal.SIGTERM)

    def running(self):
        sup = self.supervisor()
        return (sup is not None and alive(sup)) or any(
            alive(p) for p in self.seen)

    def cleanup(self):
        for pid in self.seen:
            kill_checked(pid, self.marker)


class Corral(System):
    """corral-agent with corral-worker (notify) or the Node app (ipc)."""
    scalable = True

    def __init__(self, name, workers, tmp, env, log, paths, node_app,
                 agent_flags, register=False):
        super().__init__(name, workers, tmp, env, log)
        self.paths, self.node_app = paths, node_app
        self.agent_flags = agent_flags
        self.register = register
        self.sock = os.path.join(tmp, "%s.sock" % name)
        self.marker = (TUTORIAL_JS if register else
                       APP_JS if node_app else paths["worker"])
        self.proc = None

    def start(self):
        self.port = free_port()
        flags = {"--workers": str(self.workers),
                 "--listen": "tcp://127.0.0.1:%d" % self.port,
                 "--control-socket": self.sock,
                 # The load generator's drain mode stops new connections at
                 # once (an instant endpoint removal): no need to wait.
                 "--drain-delay": "0s"}
        if self.node_app:
            flags["--ready"] = "ipc"
        given = {f.split("=", 1)[0] for f in self.agent_flags}
        argv = [self.paths["agent"]]
        argv += ["%s=%s" % kv for kv in flags.items() if kv[0] not in given]
        argv += self.agent_flags + ["--"]
        if self.register:
            argv += ["node", "-r", REGISTER_JS, TUTORIAL_JS]
        else:
            argv += (["node", APP_JS] if self.node_app
                     else [self.paths["worker"]])
        self.proc = spawn(argv, env=self.env, stdout=self.log,
                          stderr=subprocess.STDOUT)
        self.wait_serving()

    def supervisor(self):
        return self.proc.pid if self.proc else None

    def ctl(self, *args):
        return subprocess.run([self.paths["ctl"], "--socket", self.sock]
                              + list(args), capture_output=True, text=True,
                              timeout=120, check=True).stdout

    def serving(self, count=None):
        # READY per the agent, not merely forked.
        try:
            workers = json.loads(self.ctl("ps", "-o", "json"))
        except (subprocess.CalledProcessError, ValueError):
            return False
        ready = [w for w in workers if w.get("state") == "ready"]
        return (len(ready) == (count or self.workers)
                and len(self.worker_pids()) == (count or self.workers)
                and http_ok(self.port))

    def reload(self):
        self.ctl("reload")  # returns when every slot has rolled

    def scale(self, count):
        self.ctl("scale", str(count))


class Pm2(System):
    """PM2 cluster mode: `pm2 start app.js -i 2`, `pm2 reload`."""
    # A cluster worker runs PM2's wrapper, which loads app.js.
    marker = (APP_JS, os.path.join("pm2", "lib", "ProcessContainer.js"))

    def __init__(self, name, workers, tmp, env, log, pm2):
        super().__init__(name, workers, tmp, env, log)
        self.pm2 = pm2
        self.env = dict(env, PM2_HOME=os.path.join(tmp, "pm2-" + name))
        self.daemon = None

    def run(self, *args):
        subprocess.run([self.pm2] + list(args), env=self.env,
                       stdout=self.log, stderr=subprocess.STDOUT,
                       timeout=120, check=True)

    def start(self):
        self.port = free_port()
        self.env["PORT"] = str(self.port)
        # PM2 phones home on its first run in a PM2_HOME without this file
        # (lib/Client.js); the daily check is off by PM2_DISABLE_VERSION_CHECK.
        os.makedirs(self.env["PM2_HOME"], exist_ok=True)
        open(os.path.join(self.env["PM2_HOME"], "touch"), "w").close()
        self.run("start", APP_JS, "-i", str(self.workers), "--name", "traffic")
        with open(os.path.join(self.env["PM2_HOME"], "pm2.pid")) as f:
            self.daemon = int(f.read())
        self.wait_serving()

    def supervisor(self):
        return self.daemon

    def reload(self):
        self.run("reload", "traffic")

    def cleanup(self):
        super().cleanup()
        try:  # also when start() failed half way
            with open(os.path.join(self.env["PM2_HOME"], "pm2.pid")) as f:
                self.daemon = self.daemon or int(f.read())
        except (OSError, ValueError):
            pass
        if self.daemon:
            for pid in children(self.daemon):
                kill_checked(pid, self.marker)
            kill_checked(self.daemon, "PM2")


class NodeCluster(System):
    """A tutorial Node cluster primary (node-cluster.js)."""
    marker = APP_JS

    def __init__(self, name, workers, tmp, env, log):
        super().__init__(name, workers, tmp, env, log)
        self.proc = None

    def start(self):
        self.port = free_port()
        env = dict(self.env, PORT=str(self.port), WORKERS=str(self.workers))
        # Its own log: reload() waits for the primary's "done" line in it.
        self.own_log = os.path.join(self.tmp, "node-cluster-%d.log" % id(self))
        with open(self.own_log, "w") as log:
            self.proc = spawn(["node", CLUSTER_JS, APP_JS], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
        self.wait_serving()

    def supervisor(self):
        return self.proc.pid if self.proc else None

    def restarts_done(self):
        with open(self.own_log) as f:
            return f.read().count("rolling restart done")

    def reload(self):
        # The last replacement may still be booting when the pids already
        # look right, and a SIGHUP during a restart is ignored: wait for
        # the primary to say it is done.
        done = self.restarts_done()
        os.kill(self.proc.pid, signal.SIGHUP)
        poll(lambda: self.restarts_done() > done, 60, "the rolling restart")


class Bare(System):
    """No supervisor: N copies on one socket this script opens (fd 3)."""
    events = False

    def __init__(self, name, workers, tmp, env, log, argv):
        super().__init__(name, workers, tmp, env, log)
        self.argv, self.marker = argv, argv[-1]
        self.procs = []

    def start(self):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        self.port = sock.getsockname()[1]
        env = dict(self.env, LISTEN_FDS="1")
        for i in range(self.workers):
            # fd 3 = the shared socket; LISTEN_PID = the worker's own pid.
            self.procs.append(spawn(
                ["/bin/sh", "-c",
                 'exec 3<&0 0</dev/null; LISTEN_PID=$$ exec "$@"', "sh"]
                + self.argv, env=dict(env, CORRAL_WORKER_ID=str(i)),
                stdin=sock.fileno(), stdout=self.log,
                stderr=subprocess.STDOUT))
        sock.close()  # the workers hold it now
        self.wait_serving()

    def worker_pids(self):
        pids = [p.pid for p in self.procs if p.poll() is None]
        self.seen.update(pids)
        return pids

    def running(self):
        return any(p.poll() is None for p in self.procs)

    def terminate(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
