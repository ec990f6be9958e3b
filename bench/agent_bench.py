#!/usr/bin/env python3
"""corral-agent benchmarks: fork-to-READY, kill-to-READY, idle RSS and CPU.

Runs the real agent (not as PID 1: these figures do not depend on it) with
the test worker, reads its JSON event log, and prints figures. Usage:

    bench/agent_bench.py [--agent build/agent/corral-agent]
                         [--worker build/tests/worker/corral-test-worker]
                         [--kills 100] [--idle-seconds 10]

From any directory: the defaults are the binaries in build/ of this
repository ($CORRAL_AGENT / $CORRAL_TEST_WORKER override them).

fork-to-READY: the agent's own `ready_ms` (fork to the READY=1 datagram,
monotonic clock) for every spawn in the run.
kill-to-READY: SIGKILL sent by this script (wall clock) to the replacement's
`worker_ready` event timestamp (the agent's wall clock: same machine).
RSS / CPU: /proc/<agent>/status VmRSS (and its anonymous / file-backed
split) and utime+stime over an idle window with 1, 16 and 64 workers, with
the control plane on (the default: a control socket, here in a temp dir
under $TMPDIR) and, for comparison, off (--control-socket='').
"""
import argparse
import os
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))  # tests/pylib, from any directory

from pylib import paths, procfs  # noqa: E402
from pylib.agent import LOOPBACK, Agent  # noqa: E402
from pylib.events import parse_ts  # noqa: E402
from pylib.testcase import Cleanups  # noqa: E402
from pylib.workers import NotifySocket  # noqa: E402

# Measurement windows (not waits for a condition): how long the agent idles
# before and while its CPU time is measured.
SETTLE_S = 1.0
# Pacing between two kills, so each replacement is measured alone.
KILL_GAP_S = 0.02


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def start_agent(scope, args, workers, control=True):
    """The agent (not PID 1: these figures do not depend on it) over the
    test worker, READY; with `control`, its control socket is on (the
    default), else off."""
    agent = Agent(scope, [f"--workers={workers}", "--drain-delay=0", "--stop-timeout=5s"],
                  command=[args.worker], listen=[LOOPBACK],
                  control_socket=None if control else "").start()
    agent.wait_ready(workers, 120)
    return agent


def bench_kill(args):
    # Each slot is killed once: a first failure restarts at once. (A second
    # kill of the same slot within the stable period would measure the
    # backoff delay instead, by design.)
    with Cleanups("bench.kill") as scope:
        a = start_agent(scope, args, args.kills)
        kill_ms = []
        first_kill = a.log.mark()
        for slot in range(args.kills):
            pid = a.ready_workers()[slot]
            mark = a.log.mark()
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            e = a.log.wait_until(
                lambda: next((e for e in a.agent_events("worker_ready", after=mark, worker=slot)
                              if e["pid"] != pid), None), 30, f"slot {slot} READY again")
            kill_ms.append((parse_ts(e["ts"]) - t0) * 1000)
            time.sleep(KILL_GAP_S)
        # Sequential spawns only: the initial burst of N simultaneous starts
        # measures CPU contention on a small machine, not the agent.
        spawn_ms = [e["ready_ms"] for e in a.agent_events("worker_ready", after=first_kill)]
        a.stop(15)
        return spawn_ms, kill_ms


def bench_baseline(args, n):
    """Spawn-to-READY of the same worker started directly by this script
    (posix_spawn, READY=1 on our own socket): the floor any supervisor pays,
    measured in the same run so the agent's figures can be read against it."""
    out = []
    with Cleanups("bench.baseline") as scope:
        notify = NotifySocket(scope)
        notify.sock.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET=notify.path, PORT="0")
        for _ in range(n):
            t0 = time.monotonic()
            pid = os.posix_spawn(args.worker, [args.worker], env,
                                 file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                                               (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)])
            while b"READY=1" not in notify.sock.recv(4096):
                pass
            out.append((time.monotonic() - t0) * 1000)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return out


def memory(pid):
    """VmRSS, RssAnon and RssFile (MiB) and the thread count, from
    /proc/<pid>/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()[0] if value.split() else ""
    mib = {k: int(fields[k]) / 1024.0 for k in ("VmRSS", "RssAnon", "RssFile")}
    return mib, int(fields["Threads"])


def bench_idle(args, workers, control):
    with Cleanups("bench.idle") as scope:
        a = start_agent(scope, args, workers, control)
        time.sleep(SETTLE_S)
        pid = a.host_pid
        t0, c0 = time.time(), procfs.cpu_seconds([pid])
        time.sleep(args.idle_seconds)
        t1, c1 = time.time(), procfs.cpu_seconds([pid])
        cpu_pct = 100.0 * (c1 - c0) / (t1 - t0)
        mem = memory(pid)
        a.stop(15)
        return mem, cpu_pct


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agent", default=paths.binary("CORRAL_AGENT"))
    p.add_argument("--worker", default=paths.binary("CORRAL_TEST_WORKER"))
    p.add_argument("--kills", type=int, default=50,
                   help="workers started, each killed once")
    p.add_argument("--idle-seconds", type=float, default=10)
    args = p.parse_args()
    args.agent, args.worker = os.path.abspath(args.agent), os.path.abspath(args.worker)
    bad = paths.missing(args.agent, args.worker)
    if bad:
        raise SystemExit(f"bench: not an executable file: {', '.join(bad)}; build them "
                         f"(cmake --build {paths.BUILD_DIR} --target corral-agent "
                         f"corral-test-worker) or pass --agent / --worker")
    os.environ["CORRAL_AGENT"] = args.agent  # what pylib.agent starts

    base_ms = bench_baseline(args, args.kills)
    spawn_ms, kill_ms = bench_kill(args)
    print(f"baseline spawn-to-READY without corral  n={len(base_ms):4d}  "
          f"p50={pct(base_ms, 50):6.2f} ms  p99={pct(base_ms, 99):6.2f} ms")
    print(f"fork-to-READY  n={len(spawn_ms):4d}  p50={pct(spawn_ms, 50):6.2f} ms"
          f"  p99={pct(spawn_ms, 99):6.2f} ms   (goal p50 < 5 ms)")
    print(f"kill-to-READY  n={len(kill_ms):4d}  p50={pct(kill_ms, 50):6.2f} ms"
          f"  p99={pct(kill_ms, 99):6.2f} ms   (goal p50 < 10 ms)")
    for control in (True, False):
        for n in (1, 16, 64):
            (mib, threads), cpu = bench_idle(args, n, control)
            print(f"idle workers={n:2d}  control plane {'on ' if control else 'off'}  "
                  f"agent RSS={mib['VmRSS']:5.1f} MiB (anon {mib['RssAnon']:4.1f}, "
                  f"file {mib['RssFile']:4.1f}, {threads:2d} threads)  agent CPU="
                  f"{cpu:5.2f}% over {args.idle_seconds:.0f} s"
                  + ("   (goal RSS < 15 MiB at 64, CPU ~0)" if control and n == 64 else ""))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
