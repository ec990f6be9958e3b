"""Zero failed requests under keep-alive load while corral-agent drains
corral-worker processes: rolling reloads, a scale-down and an agent SIGTERM.

The client is what a proxy or a pooled HTTP client looks like to a worker:
CONNECTIONS keep-alive connections, most sending their next request as soon
as the last answer is read and every third one pausing PAUSE between
requests (so the drain finds it idle), never retrying, reconnecting only
after an answer that said `Connection: close` (pylib.load.LoadGenerator).
Every request is counted by outcome; the tests require 0 failures of any
kind, and a failure is reported with every kind counted and its timeline
against the reloads and signals.

Loopback only, real processes; every wait has a deadline. Skipped while
corral-agent, corral-worker or corralctl is not built.
"""
import signal
import time
import unittest

from pylib import paths
from pylib.http_client import OK, request, wait_http
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for
from pylib.workers import ClosedPort

CONNECTIONS = 24
# Shorter than the worker's drain idle window (1 s), as a client that keeps
# sending is.
PAUSE = 0.3


def every_third_pauses(tid):
    return PAUSE if tid % 3 == 0 else 0


class KeepAliveDrain(TestCase):

    def setUp(self):
        self.worker = paths.binary("CORRAL_WORKER")
        missing = paths.missing(paths.binary("CORRAL_AGENT"), self.worker,
                                paths.binary("CORRALCTL"))
        if missing:
            self.skipTest(f"not built: {', '.join(missing)}")
        # / needs no Redis: "down", a loopback port held by us that refuses.
        self.no_redis = {"REDIS_URL": f"redis://127.0.0.1:{ClosedPort(self).port}/0"}

    def start(self, workers, drain_delay="0s"):
        """The agent with `workers` corral-workers, READY and /readyz 200."""
        agent = self.start_agent(
            [f"--workers={workers}", "--http-port=auto", "--probe-address=127.0.0.1",
             f"--drain-delay={drain_delay}", "--stop-timeout=10s"],
            command=[self.worker], env=self.no_redis)
        agent.wait_ready(workers, 20)
        wait_http(agent.http_port, "/readyz", timeout=10)
        return agent

    def start_keep_alive_load(self, agent):
        return self.start_load(agent.port, threads=CONNECTIONS, pace=every_third_pauses,
                               keep_alive=True, timeout=10)

    def assertAllServed(self, results, load, agent):
        """0 failed requests of any kind, and every answer the worker's."""
        self.assertNoFailedRequests(results, agent.tail(), load=load)
        wrong = [r for r in results if r.kind == OK and not r.body.startswith("hello")]
        self.assertEqual(wrong[:5], [], f"{len(wrong)} answers not from corral-worker's /")
        note(f"{sum(r.closed for r in results)} answers said Connection: close")

    def assertNoUnexpectedExits(self, agent):
        exits = agent.agent_events("worker_exited")
        unexpected = [e for e in exits if e.get("code") != 0 or e.get("expected") is not True]
        self.assertEqual(unexpected, [], f"of {len(exits)} worker exits")

    def test_rolling_reloads_under_keep_alive_load_lose_nothing(self):
        agent = self.start(2)
        load = self.start_keep_alive_load(agent)
        load.wait_ok(500, 30)
        per_reload = []
        for k in range(1, 6):
            before = load.count_failed()
            load.mark(f"SIGHUP {k}")
            agent.signal(signal.SIGHUP)
            agent.wait_event("reload_finished", 30, count=k)
            # Both old workers have drained and exited.
            agent.wait_event("worker_exited", 30, count=2 * k)
            load.mark(f"reload {k}: old workers exited")
            load.wait_ok(300, 30)
            per_reload.append(load.count_failed() - before)
        results = load.stop()
        note(f"5 reloads, failed per reload {per_reload}")
        self.assertAllServed(results, load, agent)
        self.assertNoUnexpectedExits(agent)
        # Connections were told to close as their workers drained.
        self.assertGreaterEqual(sum(r.closed for r in results), 5)

    def test_scale_down_under_keep_alive_load_loses_nothing(self):
        agent = self.start(4)
        load = self.start_keep_alive_load(agent)
        load.wait_ok(800, 30)
        load.mark("scale 2")
        code, out, err = agent.ctl("scale", "2")
        self.assertEqual(code, 0, f"corralctl scale 2: {out}{err}")
        agent.wait_event("worker_exited", 30, count=2)
        load.mark("2 workers exited")
        load.wait_ok(500, 30)
        results = load.stop()
        note("scale 4 -> 2")
        self.assertAllServed(results, load, agent)
        self.assertNoUnexpectedExits(agent)
        # The two that stayed were not replaced.
        self.assertEqual(len(agent.agent_events("worker_ready")), 4)

    def readyz_ok(self, port):
        try:
            return request(port, "/readyz", timeout=0.5).status == 200
        except OSError:
            return False

    def test_agent_sigterm_drain_under_keep_alive_load_loses_nothing(self):
        # The drain delay stands for endpoint propagation: readiness goes
        # false at once and the client (like a Service) stops opening new
        # connections when it sees that; the connections it has keep sending
        # until an answer says Connection: close.
        agent = self.start(2, drain_delay="1s")
        http_port = agent.http_port
        load = self.start_keep_alive_load(agent)
        load.wait_ok(500, 30)
        load.mark("SIGTERM")
        t0 = time.monotonic()
        agent.signal(signal.SIGTERM)
        wait_for(lambda: not self.readyz_ok(http_port), 5, "/readyz to fail after SIGTERM")
        load.mark("/readyz failed: no new connections")
        load.stop_routing()
        self.assertTrue(load.join(30), "a client connection never ended")
        code = agent.wait_exit(30)
        took = time.monotonic() - t0
        results = load.stop()
        note(f"agent SIGTERM drain in {took:.2f}s")
        self.assertEqual(code, 0, agent.tail())
        self.assertAllServed(results, load, agent)
        # Every connection ended on an answer that said Connection: close.
        last = {}
        for r in results:
            last[r.tid] = r
        self.assertEqual(sorted(t for t, r in last.items() if r.closed),
                         list(range(CONNECTIONS)), "threads whose last answer closed")
        exits = agent.agent_events("worker_exited")
        self.assertEqual([e.get("code") for e in exits], [0, 0], exits)


if __name__ == "__main__":
    unittest.main()
