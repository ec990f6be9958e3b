#!/usr/bin/python3
"""Control-plane benchmark: health Check and GetStatus latency (p50/p99)
while 64 workers serve HTTP load, and the agent's added RSS from gRPC.

    bench/control/bench.py [--build DIR] [--workers 64] [--calls 5000]
                           [--clients 1] [--load-seconds 60]

Runs, in order:
  1. an agent with the control plane off (--control-socket='', no probe
     port) over N corral-test-workers: its RSS once every worker is READY;
  2. the same agent with the control socket and a probe port: its RSS at the
     same point, then under wrk load on the workers, corral-control-bench
     measures health Check (probe port) and GetStatus (control socket);
     then its RSS again.
Goals: health p99 < 1 ms, GetStatus p99 < 2 ms with 64 workers. Exit 1 when
one is missed. Runs from any directory; temp dirs under $TMPDIR, removed;
processes started here are stopped by pid. No port is guessed: the agent
binds port 0 and --probe-port=auto and says in its log what it got.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests"))  # tests/pylib, from any directory

from pylib import paths, procfs  # noqa: E402
from pylib.agent import AUTO, LOOPBACK, Agent  # noqa: E402
from pylib.testcase import Cleanups  # noqa: E402
from pylib.waiting import wait_for  # noqa: E402

# The agent's RSS is read this long after every worker is READY, so the
# usage sampler and the allocator have settled: a measurement window.
SETTLE_S = 3


def start_agent(scope, build, workers, control, nice=0):
    """The agent over `workers` corral-test-workers on a port it binds; with
    `control`, a control socket and a probe port it picks (auto)."""
    flags = [f"--workers={workers}", "--drain-delay=0s", "--stop-timeout=5s"]
    if control:
        flags += [f"--probe-port={AUTO}", "--probe-address=127.0.0.1"]
    worker = paths.binary("CORRAL_TEST_WORKER", build)
    # The agent at another priority than its workers (they reset theirs to 0
    # through `nice`): what a priority edge buys under load.
    command, prefix = [worker], []
    if nice:
        command, prefix = ["nice", "-n", str(-nice), worker], ["nice", "-n", str(nice)]
    agent = Agent(scope, flags, command=command, listen=[LOOPBACK], prefix=prefix,
                  control_socket=None if control else "").start()
    agent.wait_ready(workers, 60)
    return agent


def connections_to(port):
    """Established connections to a local port (the server's ends)."""
    return sum(1 for s in procfs.tcp_sockets()
               if s.local_port == port and s.state == procfs.ESTABLISHED)


def settled_rss(pid):
    time.sleep(SETTLE_S)
    return procfs.rss_kib(pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", help="build directory (default: build/ of this repository); "
                    "relative to the current directory, else to the repository")
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--load-seconds", type=int, default=60)
    ap.add_argument("--nice", type=int, default=0,
                    help="run the agent at this nice value, workers at 0")
    ap.add_argument("--connections", type=int, default=32,
                    help="wrk connections on the workers (0 = no load)")
    args = ap.parse_args()
    build = paths.build_dir(args.build)
    os.environ.setdefault("CORRAL_AGENT", paths.binary("CORRAL_AGENT", build))
    bench = paths.binary("CORRAL_CONTROL_BENCH", build)
    ctl = paths.binary("CORRALCTL", build)
    bad = paths.missing(bench, os.environ["CORRAL_AGENT"], ctl,
                        paths.binary("CORRAL_TEST_WORKER", build))
    if bad:
        raise SystemExit(f"bench: not an executable file: {', '.join(bad)}; build them "
                         f"(cmake --build {build} --target corral-agent corralctl "
                         f"corral-test-worker corral-control-bench) or pass --build DIR")

    print(f"# {args.workers} workers of corral-test-worker, {os.cpu_count()} CPUs")
    with Cleanups("bench.control.plain") as scope:
        plain = start_agent(scope, build, args.workers, control=False)
        base_rss = settled_rss(plain.host_pid)
        base_threads = procfs.thread_count(plain.host_pid)
        plain.stop()

    load = None
    with Cleanups("bench.control") as scope:
        agent = start_agent(scope, build, args.workers, control=True, nice=args.nice)
        try:
            idle_rss = settled_rss(agent.host_pid)
            if args.connections > 0 and shutil.which("wrk"):
                load = subprocess.Popen(
                    ["wrk", "-t1", f"-c{args.connections}", f"-d{args.load_seconds}s",
                     f"http://127.0.0.1:{agent.port}/"],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                # The load is on once every wrk connection is established.
                wait_for(lambda: connections_to(agent.port) >= args.connections, 10,
                         f"{args.connections} wrk connections")
            else:
                print("# no HTTP load (wrk missing or --connections 0)")
            result = subprocess.run(
                [bench, "--socket", agent.socket, "--probe", f"127.0.0.1:{agent.probe_port}",
                 "--calls", str(args.calls), "--clients", str(args.clients)],
                capture_output=True, text=True)
            busy_rss = procfs.rss_kib(agent.host_pid)
            control_threads = procfs.thread_count(agent.host_pid)
            status = subprocess.run([ctl, "--socket", agent.socket, "status", "-o", "json"],
                                    capture_output=True, text=True)
            ready = json.loads(status.stdout)["ready_workers"] if status.returncode == 0 else "?"
        finally:
            if load and load.poll() is None:
                load.send_signal(signal.SIGINT)
            load_out = load.communicate(timeout=30)[0] if load else ""
            agent.stop()

    print(result.stdout, end="")
    if result.returncode not in (0, 1):
        print(result.stderr, file=sys.stderr)
    for line in load_out.splitlines():
        if "Requests/sec" in line:
            print(f"# HTTP load during the run (wrk -c{args.connections}): "
                  f"{line.strip()}")
    print(f"# workers READY at the end: {ready}")
    print(f"agent RSS, control plane off:        {base_rss / 1024:7.1f} MiB "
          f"({base_threads} threads)")
    print(f"agent RSS, control plane on, idle:   {idle_rss / 1024:7.1f} MiB "
          f"(+{(idle_rss - base_rss) / 1024:.1f} MiB)")
    print(f"agent RSS, after {2 * args.calls * args.clients} calls:       "
          f"{busy_rss / 1024:7.1f} MiB (+{(busy_rss - base_rss) / 1024:.1f} MiB, "
          f"{control_threads} threads)")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
