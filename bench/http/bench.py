#!/usr/bin/env python3
"""Requests/s and p99 latency of corral-worker's / and /session, with wrk.

Two workers, two ways, on this machine's loopback:
  corral   corral-agent --workers=2 --listen=... -- corral-worker
  bare     the same two corral-worker processes sharing one listening socket
           that this script opens and passes to them (LISTEN_FDS), with no
           supervisor at all.
/session is measured with one cookie (an existing session: one Redis round
trip per request). Redis: $REDIS_URL, else a redis-server this script starts.

usage: bench/http/bench.py [--duration 5] [--connections 32] [--threads 2]
                          [--rounds 3]
env: CORRAL_AGENT, CORRAL_WORKER (default build/agent/..., build/worker/...)
"""
import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
AGENT = os.environ.get("CORRAL_AGENT",
                       os.path.join(ROOT, "build", "agent", "corral-agent"))
WORKER = os.environ.get("CORRAL_WORKER",
                        os.path.join(ROOT, "build", "worker", "corral-worker"))
_libc = ctypes.CDLL(None)
_procs = []


def spawn(argv, **kw):
    p = subprocess.Popen(argv, preexec_fn=lambda: _libc.prctl(1, 9),
                         start_new_session=True, **kw)
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(25)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                        timeout=0.5) as r:
                if b'"redis":"up"' in r.read():
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("workers on port %d did not come up" % port)


def cookie(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/session" % port) as r:
        return r.headers["Set-Cookie"].split(";")[0]


def wrk(url, args, headers=(), cpu_pids=(), redis_pids=()):
    cmd = ["wrk", "-t%d" % args.threads, "-c%d" % args.connections,
           "-d%ds" % args.duration, "--latency"]
    for hdr in headers:
        cmd += ["-H", hdr]
    w0, r0 = cpu_seconds(cpu_pids), cpu_seconds(redis_pids)
    out = subprocess.run(cmd + [url], capture_output=True, text=True,
                         check=True).stdout
    w1, r1 = cpu_seconds(cpu_pids), cpu_seconds(redis_pids)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_err = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale,
            "worker_us": 1e6 * (w1 - w0) / max(total, 1),
            "redis_us": 1e6 * (r1 - r0) / max(total, 1),
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sock_err.group(1) if sock_err else ""}


def start_corral(env, log):
    port = free_port()
    p = spawn([AGENT, "--workers=2", "--listen=tcp://127.0.0.1:%d" % port,
               "--drain-delay=0s", "--", WORKER], env=env, stdout=log,
              stderr=subprocess.STDOUT)
    return port, [p]


def start_bare(env, log):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    workers = []
    for i in range(2):
        e = dict(env, LISTEN_FDS="1", CORRAL_WORKER_ID=str(i))
        # fd 3 = the shared socket; LISTEN_PID = the worker's own pid.
        workers.append(spawn(
            ["/bin/sh", "-c",
             'exec 3<&0 0</dev/null; LISTEN_PID=$$ exec "$@"', "sh", WORKER],
            env=e, stdin=sock.fileno(), stdout=log, stderr=subprocess.STDOUT))
    sock.close()
    return port, workers


def cpu_seconds(pids):
    """utime + stime of `pids` (workers, redis), from /proc."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def worker_pids(name, procs):
    if name == "bare":
        return [p.pid for p in procs]
    pid = procs[0].pid  # the agent: its children are the workers
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for tool, path in (("wrk", shutil.which("wrk")), ("agent", AGENT),
                       ("worker", WORKER)):
        if not path or not os.access(path, os.X_OK):
            raise SystemExit("bench: %s not found (%s); build first" %
                             (tool, path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    tmp = tempfile.mkdtemp(prefix="corral-bench-")
    redis_proc = None
    try:
        if not env.get("REDIS_URL"):
            rport = free_port()
            redis_proc = spawn(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                   "--save", "", "--dir", tmp], stdout=subprocess.DEVNULL)
            env["REDIS_URL"] = "redis://127.0.0.1:%d/0" % rport
        with open(os.path.join(tmp, "workers.log"), "w") as log:
            setups = {"corral": start_corral(env, log),
                      "bare": start_bare(env, log)}
            cookies = {}
            for name, (port, _) in setups.items():
                wait_ready(port)
                cookies[name] = cookie(port)
                wrk("http://127.0.0.1:%d/" % port, argparse.Namespace(
                    threads=1, connections=4, duration=1))  # warm-up
            # Interleaved rounds, alternating the order, so that drift in
            # the machine's load does not favour one setup.
            runs = {}
            for r in range(args.rounds):
                order = list(setups) if r % 2 == 0 else list(setups)[::-1]
                for path in ("/", "/session"):
                    for name in order:
                        port = setups[name][0]
                        hdr = ["Cookie: " + cookies[name]] \
                            if path == "/session" else []
                        runs.setdefault((name, path), []).append(
                            wrk("http://127.0.0.1:%d%s" % (port, path), args,
                                headers=hdr,
                                cpu_pids=worker_pids(name, setups[name][1]),
                                redis_pids=[redis_proc.pid] if redis_proc
                                else []))
            for _, procs in setups.values():
                for p in procs:
                    stop(p)
    finally:
        for p in _procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    print("wrk -t%d -c%d -d%ds, 2 workers, %s, %d CPUs, median of %d "
          "interleaved rounds" % (args.threads, args.connections,
                                  args.duration, env["REDIS_URL"],
                                  os.cpu_count(), args.rounds))
    print("%-8s %-9s %12s %10s %8s %12s %10s   %s" % (
        "setup", "path", "requests/s", "p99 ms", "errors", "worker us/req",
        "redis us/req", "requests/s of each round"))
    best = {}
    for (name, path), rs in runs.items():
        rps = median([r["rps"] for r in rs])
        p99 = median([r["p99_ms"] for r in rs])
        errs = sum(r["non2xx"] for r in rs) or \
            ";".join(r["socket_errors"] for r in rs if r["socket_errors"]) or 0
        best[(name, path)] = rps
        print("%-8s %-9s %12.0f %10.2f %8s %12.1f %10.1f   %s" % (
            name, path, rps, p99, errs,
            median([r["worker_us"] for r in rs]),
            median([r["redis_us"] for r in rs]),
            " ".join("%.0f" % r["rps"] for r in rs)))
    print("/session vs / under corral: %.0f%% (goal >= 60%%)" %
          (100 * best[("corral", "/session")] / best[("corral", "/")]))
    print("/ under corral vs bare:     %.1f%% (goal >= 95%%)" %
          (100 * best[("corral", "/")] / best[("bare", "/")]))
    print("(CPU per request is the steadier figure on a shared machine: "
          "requests/s moves with other load.)")


if __name__ == "__main__":
    main()
