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
one is missed. Processes started here are stopped by pid; temp dirs removed.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.05)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def ready_workers_from_log(path):
    with open(path, errors="replace") as f:
        return f.read().count("agent info worker_ready:")


class Agent:
    def __init__(self, build, workers, control, nice=0):
        self.dir = tempfile.mkdtemp(prefix="corral-bench-")
        self.socket = os.path.join(self.dir, "agent.sock")
        self.port = free_port()
        self.probe = free_port()
        self.log = os.path.join(self.dir, "agent.log")
        flags = [f"--workers={workers}", f"--listen=tcp://127.0.0.1:{self.port}",
                 "--drain-delay=0s", "--stop-timeout=5s"]
        if control:
            flags += [f"--control-socket={self.socket}", f"--probe-port={self.probe}",
                      "--probe-address=127.0.0.1"]
        else:
            flags += ["--control-socket="]
        worker = os.path.join(build, "tests/worker/corral-test-worker")
        # The agent at another priority than its workers (they reset theirs
        # to 0 through `nice` below): what a priority edge buys under load.
        command = [os.path.join(build, "agent/corral-agent"), *flags, "--"]
        if nice:
            command = ["nice", "-n", str(nice), *command, "nice", "-n", str(-nice)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [*command, worker],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(lambda: ready_workers_from_log(self.log) >= workers, 60,
                 f"{workers} workers READY")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def settled_rss(pid):
    """RSS after the usage sampler and allocator have settled (3 s)."""
    time.sleep(3)
    return rss_kib(pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--load-seconds", type=int, default=60)
    ap.add_argument("--nice", type=int, default=0,
                    help="run the agent at this nice value, workers at 0")
    ap.add_argument("--connections", type=int, default=32,
                    help="wrk connections on the workers (0 = no load)")
    args = ap.parse_args()
    bench = os.path.join(args.build, "bench/control/corral-control-bench")
    for path in (bench, os.path.join(args.build, "agent/corral-agent"),
                 os.path.join(args.build, "tests/worker/corral-test-worker")):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"bench: {path} is missing; build first "
                             f"(cmake --build {args.build})")

    print(f"# {args.workers} workers of corral-test-worker, {os.cpu_count()} CPUs")
    plain = Agent(args.build, args.workers, control=False)
    try:
        base_rss = settled_rss(plain.proc.pid)
        base_threads = threads(plain.proc.pid)
    finally:
        plain.stop()

    agent = Agent(args.build, args.workers, control=True, nice=args.nice)
    load = None
    try:
        idle_rss = settled_rss(agent.proc.pid)
        load = None
        if args.connections > 0 and shutil.which("wrk"):
            load = subprocess.Popen(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{args.load_seconds}s",
                 f"http://127.0.0.1:{agent.port}/"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(1)  # let the load ramp up
        else:
            print("# no HTTP load (wrk missing or --connections 0)")
        result = subprocess.run(
            [bench, "--socket", agent.socket, "--probe", f"127.0.0.1:{agent.probe}",
             "--calls", str(args.calls), "--clients", str(args.clients)],
            capture_output=True, text=True)
        busy_rss = rss_kib(agent.proc.pid)
        control_threads = threads(agent.proc.pid)
        status = subprocess.run(
            [os.path.join(args.build, "ctl/corralctl"), "--socket", agent.socket,
             "status", "-o", "json"], capture_output=True, text=True)
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
