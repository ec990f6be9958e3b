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
                          [--rounds 3] [--build DIR] [--balance MODE,...]
--balance adds one more corral setup per mode (corral-MODE, agent flag
--balance=MODE), measured on / only, interleaved with the others.
Runs from any directory; temp files under $TMPDIR. Ports: the agent and this
script bind port 0 and read what they got.
env: CORRAL_AGENT, CORRAL_WORKER (default: --build DIR, else build/ of this
repository: agent/corral-agent, worker/corral-worker)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests"))  # tests/pylib, from any directory

from pylib import paths, procfs  # noqa: E402
from pylib.agent import LOOPBACK, Agent  # noqa: E402
from pylib.http_client import get, wait_http  # noqa: E402
from pylib.processes import stop  # noqa: E402
from pylib.redis import Redis  # noqa: E402
from pylib.testcase import Cleanups  # noqa: E402
from pylib.workers import listening_socket, start_worker  # noqa: E402


def cookie(port):
    return get(port, "/session")[1]["Set-Cookie"].split(";")[0]


def wrk(url, args, headers=(), cpu_pids=(), redis_pids=(), sup_pids=()):
    cmd = ["wrk", "-t%d" % args.threads, "-c%d" % args.connections,
           "-d%ds" % args.duration, "--latency"]
    for hdr in headers:
        cmd += ["-H", hdr]
    each0 = [procfs.cpu_seconds([p]) for p in cpu_pids]
    ctx0 = context_switches(cpu_pids)
    r0, s0 = procfs.cpu_seconds(redis_pids), procfs.cpu_seconds(sup_pids)
    out = subprocess.run(cmd + [url], capture_output=True, text=True,
                         check=True).stdout
    each = [procfs.cpu_seconds([p]) - c for p, c in zip(cpu_pids, each0)]
    ctx = context_switches(cpu_pids) - ctx0
    r1, s1 = procfs.cpu_seconds(redis_pids), procfs.cpu_seconds(sup_pids)
    w0, w1 = 0, sum(each)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock_err = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale,
            "worker_us": 1e6 * (w1 - w0) / max(total, 1),
            "redis_us": 1e6 * (r1 - r0) / max(total, 1),
            # The agent's own CPU (it is off the data path: ~0 expected).
            "sup_us": 1e6 * (s1 - s0) / max(total, 1),
            "ctx": ctx / max(total, 1),
            # How the work split over the workers: max/min of their CPU.
            "split": max(each) / max(min(each), 1e-9) if each else 0,
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sock_err.group(1) if sock_err else ""}


def context_switches(pids):
    """Voluntary + involuntary context switches of `pids` (gone ones: 0)."""
    n = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if "ctxt_switches:" in line:
                        n += int(line.split()[-1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return n


def start_corral(scope, env, worker, flags=()):
    """corral-agent over 2 workers on a port it binds; (port, [agent proc],
    worker pids, agent pids)."""
    agent = Agent(scope, ["--workers=2", "--drain-delay=0s", *flags],
                  command=[worker], listen=[LOOPBACK], control_socket="",
                  env=env).start()
    agent.wait_ready(2, 15)
    return (agent.port, [agent.proc], lambda: procfs.children(agent.host_pid),
            [agent.host_pid])


def start_bare(scope, env, worker):
    """The same two workers sharing a socket this script opened, no agent."""
    sock = listening_socket(scope)
    workers = [start_worker(scope, env, sock=sock, worker_id=str(i), command=[worker])
               for i in range(2)]
    return (sock.getsockname()[1], [w.proc for w in workers],
            lambda: [w.pid for w in workers], [])


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--balance", default="",
                    help="comma separated --balance modes to measure on / "
                    "as extra corral setups (e.g. reuseport,shared)")
    ap.add_argument("--build", help="build directory (default: build/ of this "
                    "repository, or $CORRAL_BUILD_DIR); CORRAL_AGENT and CORRAL_WORKER "
                    "override single binaries")
    args = ap.parse_args()
    build = paths.build_dir(args.build)
    agent_path = paths.binary("CORRAL_AGENT", build)
    worker = paths.binary("CORRAL_WORKER", build)
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk not found (apt-get install wrk)")
    bad = paths.missing(agent_path, worker)
    if bad:
        raise SystemExit(f"bench: not an executable file: {', '.join(bad)}; build them "
                         f"(cmake --build {build} --target corral-agent corral-worker) "
                         f"or pass --build DIR")
    os.environ["CORRAL_AGENT"] = agent_path  # what pylib.agent starts
    env = {"REDIS_URL": os.environ["REDIS_URL"]} if os.environ.get("REDIS_URL") else {}
    with Cleanups("bench.http") as scope:
        redis = None
        if not env:
            redis = Redis()
            scope.addCleanup(redis.close)
            env["REDIS_URL"] = redis.url
        setups = {"corral": start_corral(scope, env, worker),
                  "bare": start_bare(scope, env, worker)}
        for mode in filter(None, args.balance.split(",")):
            setups["corral-" + mode] = start_corral(
                scope, env, worker, ["--balance=" + mode])
        cookies = {}
        for name, (port, _, _, _) in setups.items():
            wait_http(port, contains=b'"redis":"up"', timeout=15)
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
                    if path == "/session" and name not in ("corral", "bare"):
                        continue
                    port, _, worker_pids, sup_pids = setups[name]
                    hdr = ["Cookie: " + cookies[name]] if path == "/session" else []
                    runs.setdefault((name, path), []).append(
                        wrk("http://127.0.0.1:%d%s" % (port, path), args, headers=hdr,
                            cpu_pids=worker_pids(),
                            redis_pids=[redis.proc.pid] if redis else [],
                            sup_pids=sup_pids))
        for _, procs, _, _ in setups.values():
            for p in procs:
                stop(p, timeout=25)

    print("wrk -t%d -c%d -d%ds, 2 workers, %s, %d CPUs, median of %d "
          "interleaved rounds" % (args.threads, args.connections,
                                  args.duration, env["REDIS_URL"],
                                  os.cpu_count(), args.rounds))
    print("%-16s %-9s %10s %8s %6s %9s %9s %9s %7s %6s   %s" % (
        "setup", "path", "requests/s", "p99 ms", "errors", "worker us", "redis us",
        "agent us", "split", "ctx", "requests/s of each round"))
    best = {}
    for (name, path), rs in runs.items():
        rps = median([r["rps"] for r in rs])
        p99 = median([r["p99_ms"] for r in rs])
        errs = sum(r["non2xx"] for r in rs) or \
            ";".join(r["socket_errors"] for r in rs if r["socket_errors"]) or 0
        best[(name, path)] = rps
        print("%-16s %-9s %10.0f %8.2f %6s %9.1f %9.1f %9.2f %7.2f %6.3f   %s" % (
            name, path, rps, p99, errs,
            median([r["worker_us"] for r in rs]),
            median([r["redis_us"] for r in rs]),
            median([r["sup_us"] for r in rs]),
            median([r["split"] for r in rs]),
            median([r["ctx"] for r in rs]),
            " ".join("%.0f" % r["rps"] for r in rs)))
    print("(us = CPU microseconds per request; split = max/min of the two "
          "workers' CPU; ctx = the workers' context switches per request)")
    print("/session vs / under corral: %.0f%% (goal >= 60%%)" %
          (100 * best[("corral", "/session")] / best[("corral", "/")]))
    for name in [n for n, p in runs if p == "/" and n.startswith("corral")]:
        # Each round's pair ran back to back: its ratio shows the noise.
        pairs = sorted(100 * c["rps"] / b["rps"] for c, b in
                       zip(runs[(name, "/")], runs[("bare", "/")]))
        verdict = ("met in every round" if pairs[0] >= 95 else
                   "missed in every round" if pairs[-1] < 95 else
                   "undecided: the rounds fall on both sides; the machine's "
                   "noise is larger than the gap")
        print("/ under %s vs bare: %.1f%% of the medians; each round %s; "
              "goal >= 95%%: %s" % (name, 100 * best[(name, "/")] /
                                    best[("bare", "/")],
                                    " ".join("%.0f%%" % x for x in pairs),
                                    verdict))
    print("(CPU per request is the steadier figure on a shared machine: "
          "requests/s moves with other load.)")


if __name__ == "__main__":
    main()
