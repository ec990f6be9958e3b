"""Test harness for the sessions black-box tests (Python 3 standard library).

Starts real redis-server / redis-sentinel / corral-worker processes on free
loopback ports in temp dirs. Every child gets PR_SET_PDEATHSIG=SIGKILL and is
also killed by pid at exit, so nothing outlives a test, even a failed one.
"""
import atexit
import ctypes
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get(
    "CORRAL_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
WORKER = os.environ.get(
    "CORRAL_WORKER", os.path.join(SOURCE_DIR, "build", "worker", "corral-worker"))
AGENT = os.environ.get(
    "CORRAL_AGENT", os.path.join(SOURCE_DIR, "build", "agent", "corral-agent"))
SKIP = 77  # ctest SKIP_RETURN_CODE

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_children = []


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _kill_all():
    for p in _children:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                p.kill()
            except OSError:
                pass
            p.wait()


atexit.register(_kill_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def spawn(argv, env=None, **kw):
    """Popen that is killed by pid at exit and dies with us."""
    p = subprocess.Popen(argv, env=env, preexec_fn=_die_with_parent,
                         start_new_session=True, **kw)
    _children.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" %
                                 (timeout, what))
        time.sleep(interval)


def session_key(sid):
    return "corral:sess:" + hashlib.sha256(sid.encode()).hexdigest()


# --- a minimal RESP client for checking Redis from the tests ---------------

def resp(port, *args, timeout=1.0):
    """One command; returns the reply (bytes, int, list, None) or raises."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        f = s.makefile("rb")
        return _read_reply(f)


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
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError("bad reply %r" % line)


def pings(port):
    try:
        return resp(port, "PING", timeout=0.3) == b"PONG"
    except (OSError, RuntimeError):
        return False


class Redis:
    """redis-server on a loopback port, in its own temp dir."""

    def __init__(self, *args, port=None, binary="redis-server", config=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="corral-redis-")
        self.args = list(args)
        self.binary = binary
        self.config = config
        self.proc = None
        self.start()

    def start(self):
        argv = [self.binary]
        if self.config is not None:
            path = os.path.join(self.dir, "redis.conf")
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write(self.config)
            argv.append(path)
        argv += ["--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", self.dir, "--logfile",
                 os.path.join(self.dir, "redis.log")]
        if self.binary == "redis-server":
            argv += ["--save", ""]
        argv += self.args
        self.proc = spawn(argv, stdout=subprocess.DEVNULL)
        wait_for(lambda: pings(self.port), 10, "redis on %d" % self.port)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.kill()
        self.start()

    def cmd(self, *args):
        return resp(self.port, *args)

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- corral-worker processes -------------------------------------------------

def listening_socket():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1024)
    return s


# Puts stdin (the shared socket) at fd 3 as the agent would, then execs the
# command with LISTEN_PID = its own pid ($$ survives exec).
_AS_AGENT = 'exec 3<&0 0</dev/null; LISTEN_PID=$$ exec "$@"'
_WRONG_PID = 'exec 3<&0 0</dev/null; exec "$@"'


class Worker:
    def __init__(self, proc, log):
        self.proc = proc
        self.log = log

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        with open(self.log) as f:
            return f.read()


def _worker_env(redis_env, extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LISTEN_", "REDIS_", "NOTIFY_", "WATCHDOG_"))}
    env.update(redis_env or {})
    env.update(extra or {})
    return env


def start_worker(redis_env=None, sock=None, port=None, worker_id="0",
                 extra_env=None, args=(), wrong_pid=False, logdir=None,
                 command=None, pass_fds=()):
    """A corral-worker (or `command`) sharing `sock` (as fd 3, LISTEN_FDS=1),
    or alone on `port`."""
    logdir = logdir or tempfile.mkdtemp(prefix="corral-worker-")
    log = os.path.join(logdir, "worker-%s-%d.log" % (worker_id, time.time_ns()))
    env = _worker_env(redis_env, extra_env)
    env["CORRAL_WORKER_ID"] = str(worker_id)
    if port is not None:
        env["PORT"] = str(port)
    argv = list(command or [WORKER]) + list(args)
    stdin = subprocess.DEVNULL
    if sock is not None:
        env["LISTEN_FDS"] = "1"
        env["LISTEN_FDNAMES"] = "http"
        if wrong_pid:
            env["LISTEN_PID"] = "1"
        argv = ["/bin/sh", "-c", _WRONG_PID if wrong_pid else _AS_AGENT,
                "sh"] + argv
        stdin = sock.fileno()
    with open(log, "w") as out:
        proc = spawn(argv, env=env, stdin=stdin, stdout=out,
                     stderr=subprocess.STDOUT, pass_fds=pass_fds)
    return Worker(proc, log)


def stop_worker(w, sig=signal.SIGTERM, timeout=20):
    if w.alive():
        w.proc.send_signal(sig)
        try:
            w.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()
    return w.proc.returncode


# --- HTTP ------------------------------------------------------------------

class Client:
    """A keep-alive HTTP/1.1 client with one cookie jar entry."""

    def __init__(self, port, cookie=None, timeout=5):
        self.port = port
        self.cookie = cookie
        self.timeout = timeout
        self.conn = None

    def request(self, path, method="GET", headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=self.timeout)
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = "corral_sid=" + self.cookie
        try:
            self.conn.request(method, path, headers=h)
            r = self.conn.getresponse()
            body = r.read()
        except Exception:
            self.close()
            raise
        set_cookie = r.getheader("Set-Cookie")
        if set_cookie and set_cookie.startswith("corral_sid="):
            self.cookie = set_cookie.split(";")[0].split("=", 1)[1] or None
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return r.status, dict(r.getheaders()), body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def get(port, path, cookie=None, timeout=5):
    c = Client(port, cookie, timeout)
    try:
        return c.request(path)
    finally:
        c.close()


def wait_http(port, timeout=10):
    def ok():
        try:
            return get(port, "/healthz", timeout=0.5)[0] == 200
        except OSError:
            return False
    wait_for(ok, timeout, "HTTP on port %d" % port)


def wait_redis_up(port, timeout=10):
    def up():
        try:
            s, _, body = get(port, "/healthz", timeout=0.5)
            return s == 200 and b'"redis":"up"' in body
        except OSError:
            return False
    wait_for(up, timeout, "worker on %d to reach redis" % port)


def run(tests):
    """Runs test functions in order; prints a summary line; exits 1 on any
    failure."""
    if not os.access(WORKER, os.X_OK):
        print("FAIL: corral-worker not found at %s (set CORRAL_WORKER)" %
              WORKER)
        print("0 passed, 1 failed")
        sys.exit(1)
    passed = failed = skipped = 0
    for t in tests:
        start = time.monotonic()
        try:
            if t() == "skip":
                skipped += 1
                print("SKIP %s" % t.__name__, flush=True)
                continue
            passed += 1
            print("PASS %s (%.1fs)" % (t.__name__, time.monotonic() - start),
                  flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure kind
            failed += 1
            import traceback
            traceback.print_exc()
            print("FAIL %s: %s" % (t.__name__, e), flush=True)
        finally:
            _kill_all()
            _children.clear()
    print("%d passed, %d skipped, %d failed" % (passed, skipped, failed))
    sys.exit(1 if failed else 0)
