#!/usr/bin/env python3
"""corral-agent benchmarks: fork-to-READY, kill-to-READY, idle RSS and CPU.

Runs the real agent (not as PID 1: these figures do not depend on it) with
the test worker, reads its JSON event log, and prints figures. Usage:

    bench/agent_bench.py [--agent build/agent/corral-agent]
                         [--worker build/tests/worker/corral-test-worker]
                         [--kills 100] [--idle-seconds 10]

fork-to-READY: the agent's own `ready_ms` (fork to the READY=1 datagram,
monotonic clock) for every spawn in the run.
kill-to-READY: SIGKILL sent by this script (wall clock) to the replacement's
`worker_ready` event timestamp (the agent's wall clock: same machine).
RSS / CPU: /proc/<agent>/status VmRSS and utime+stime over an idle window
with 1, 16 and 64 workers.
"""
import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def parse_ts(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Agent:
    def __init__(self, agent, worker, workers):
        self.events = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [agent, "--log-format=json", f"--workers={workers}",
             "--listen=tcp://127.0.0.1:0", "--drain-delay=0",
             "--stop-timeout=5s", "--control-socket=", "--", worker],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append(e)
                self.cond.notify_all()

    def wait_for(self, pred, timeout=30, start=0):
        """The first event from index `start` on that matches `pred`."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for e in self.events[start:]:
                    if pred(e):
                        return e
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError("event not seen")
                self.cond.wait(left)

    def ready_workers(self):
        """slot -> pid of the latest READY process."""
        out = {}
        with self.cond:
            for e in self.events:
                if e.get("event") == "worker_ready":
                    out[e["worker"]] = e["pid"]
        return out

    def wait_ready(self, n, timeout=60):
        deadline = time.time() + timeout
        while len(self.ready_workers()) < n:
            if time.time() > deadline:
                raise TimeoutError(f"only {len(self.ready_workers())}/{n} ready")
            time.sleep(0.01)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def bench_kill(args):
    # Each slot is killed once: a first failure restarts at once. (A second
    # kill of the same slot within the stable period would measure the
    # backoff delay instead, by design.)
    a = Agent(args.agent, args.worker, args.kills)
    try:
        a.wait_ready(args.kills, timeout=120)
        kill_ms = []
        with a.cond:
            first_kill = len(a.events)
        for slot in range(args.kills):
            pid = a.ready_workers()[slot]
            with a.cond:
                start = len(a.events)
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            e = a.wait_for(lambda e: e.get("event") == "worker_ready"
                           and e["worker"] == slot and e["pid"] != pid,
                           start=start)
            kill_ms.append((parse_ts(e["ts"]) - t0) * 1000)
            time.sleep(0.02)
        # Sequential spawns only: the initial burst of N simultaneous starts
        # measures CPU contention on a small machine, not the agent.
        spawn_ms = [e["ready_ms"] for e in a.events[first_kill:]
                    if e.get("event") == "worker_ready"]
        return spawn_ms, kill_ms
    finally:
        a.stop()


def bench_baseline(args, n):
    """Spawn-to-READY of the same worker started directly by this script
    (posix_spawn, READY=1 on our own socket): the floor any supervisor pays,
    measured in the same run so the agent's figures can be read against it."""
    import socket
    path = f"/tmp/corral-bench-notify-{os.getpid()}.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    out = []
    try:
        env = dict(os.environ, NOTIFY_SOCKET=path, PORT="0")
        for _ in range(n):
            t0 = time.monotonic()
            pid = os.posix_spawn(args.worker, [args.worker], env,
                                 file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                                               (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)])
            while b"READY=1" not in s.recv(4096):
                pass
            out.append((time.monotonic() - t0) * 1000)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    finally:
        s.close()
        os.unlink(path)
    return out


def bench_idle(args, workers):
    a = Agent(args.agent, args.worker, workers)
    try:
        a.wait_ready(workers, timeout=120)
        time.sleep(1.0)
        pid = a.proc.pid
        t0, c0 = time.time(), proc_cpu_ticks(pid)
        time.sleep(args.idle_seconds)
        t1, c1 = time.time(), proc_cpu_ticks(pid)
        hz = os.sysconf("SC_CLK_TCK")
        cpu_pct = 100.0 * (c1 - c0) / hz / (t1 - t0)
        return proc_rss_kb(pid) / 1024.0, cpu_pct
    finally:
        a.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agent", default=os.path.join(ROOT, "build/agent/corral-agent"))
    p.add_argument("--worker", default=os.path.join(
        ROOT, "build/tests/worker/corral-test-worker"))
    p.add_argument("--kills", type=int, default=50,
                   help="workers started, each killed once")
    p.add_argument("--idle-seconds", type=float, default=10)
    args = p.parse_args()

    base_ms = bench_baseline(args, args.kills)
    spawn_ms, kill_ms = bench_kill(args)
    print(f"baseline spawn-to-READY without corral  n={len(base_ms):4d}  "
          f"p50={pct(base_ms, 50):6.2f} ms  p99={pct(base_ms, 99):6.2f} ms")
    print(f"fork-to-READY  n={len(spawn_ms):4d}  p50={pct(spawn_ms, 50):6.2f} ms"
          f"  p99={pct(spawn_ms, 99):6.2f} ms   (goal p50 < 5 ms)")
    print(f"kill-to-READY  n={len(kill_ms):4d}  p50={pct(kill_ms, 50):6.2f} ms"
          f"  p99={pct(kill_ms, 99):6.2f} ms   (goal p50 < 10 ms)")
    for n in (1, 16, 64):
        rss, cpu = bench_idle(args, n)
        print(f"idle workers={n:2d}  agent RSS={rss:5.1f} MiB  agent CPU="
              f"{cpu:5.2f}% over {args.idle_seconds:.0f} s   "
              f"(goal RSS < 15 MiB at 64, CPU ~0)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
