"""100 rolling reloads back to back under keep-alive load, with
corral-worker (the SDK's drain): 0 failed requests of any kind, every old
worker drains and exits 0, nothing leaks in the agent, all within
MAX_SECONDS.

Each SIGHUP is sent as soon as the previous reload_finished (every
replacement READY); old workers still draining overlap with the next
reload, which is the hard case. The client is the one of
tests/sessions/test_keepalive_drain.py (5 reloads, scale-down, SIGTERM):
keep-alive connections, a third of them pausing between requests so the
drain finds them idle, never retrying.
"""
import signal
import time
import unittest

from pylib import paths, procfs
from pylib.http_client import wait_http
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for
from pylib.workers import ClosedPort

RELOADS = 100
WORKERS = 2
CONNECTIONS = 12
MAX_SECONDS = 90


def every_third_pauses(tid):
    return 0.3 if tid % 3 == 0 else 0.002


class ReloadStorm(TestCase):

    def setUp(self):
        self.worker = paths.binary("CORRAL_WORKER")
        missing = paths.missing(paths.binary("CORRAL_AGENT"), self.worker)
        if missing:
            self.skipTest(f"not built: {', '.join(missing)}")

    def test_100_reloads_under_keep_alive_load_fail_nothing(self):
        no_redis = {"REDIS_URL": f"redis://127.0.0.1:{ClosedPort(self).port}/0"}
        agent = self.start_agent(
            [f"--workers={WORKERS}", "--http-port=auto", "--probe-address=127.0.0.1",
             "--drain-delay=0s", "--stop-timeout=10s"],
            command=[self.worker], env=no_redis)
        agent.wait_ready(WORKERS, 20)
        wait_http(agent.http_port, "/readyz", timeout=10)
        load = self.start_load(agent.port, threads=CONNECTIONS, pace=every_third_pauses,
                               keep_alive=True, timeout=10)
        load.wait_ok(300, 30)
        fds0, threads0 = procfs.fd_count(agent.host_pid), procfs.thread_count(agent.host_pid)

        t0 = time.monotonic()
        per_reload = []
        for k in range(1, RELOADS + 1):
            t = time.monotonic()
            load.mark(f"SIGHUP {k}")
            agent.signal(signal.SIGHUP)
            agent.wait_event("reload_finished", 20, count=k)
            per_reload.append(time.monotonic() - t)
            self.assertLess(time.monotonic() - t0, MAX_SECONDS,
                            f"only {k} reloads in {MAX_SECONDS}s")
        took = time.monotonic() - t0
        load.mark("last reload finished")
        # Every old worker has drained and exited.
        agent.wait_event("worker_exited", 30, count=RELOADS * WORKERS)
        load.wait_ok(200, 30)
        results = load.stop()

        note(f"{RELOADS} reloads in {took:.1f}s (each {min(per_reload) * 1000:.0f}-"
             f"{max(per_reload) * 1000:.0f} ms)")
        self.assertNoFailedRequests(results, agent.tail(), load=load)
        exits = agent.agent_events("worker_exited")
        bad = [e for e in exits if e.get("code") != 0 or e.get("expected") is not True]
        self.assertEqual(bad, [], f"of {len(exits)} worker exits")
        self.assertEqual(agent.agent_events("reload_aborted"), [])
        self.assertEqual(agent.agent_events("reload_refused"), [])
        wait_for(lambda: procfs.fd_count(agent.host_pid) <= fds0, 10,
                 lambda: f"agent fds back to {fds0}: {procfs.fd_count(agent.host_pid)}")
        self.assertEqual(procfs.thread_count(agent.host_pid), threads0, "agent threads")
        note(f"agent fds {fds0} -> {procfs.fd_count(agent.host_pid)}, threads {threads0}")


if __name__ == "__main__":
    unittest.main()
