"""Scenario 9: a worker never READY is killed at --ready-timeout; a READY
worker that stops its watchdog pings is killed and replaced, and one that
keeps pinging is left alone."""

import os
import signal
import time
import unittest

from pylib.agent import signal_is
from pylib.http_client import http_get, parse_identity
from pylib.testcase import TestCase
from pylib.waiting import hold


class Timeouts(TestCase):
    agent_pid1 = True

    def test_ready_timeout(self):
        agent = self.start_agent(["--workers=1", "--ready-timeout=1s"], ["--never-ready"])
        spawned = agent.wait_event("worker_spawned", worker=0, gen=1)
        killed = agent.wait_event("worker_killed", worker=0, gen=1, timeout=6)
        self.assertEqual(killed.get("reason"), "ready_timeout", killed)
        self.assertEqual(killed.get("pid"), spawned["pid"])
        self.assertGreaterEqual(killed["_t"] - spawned["_t"], 0.9, "killed before the timeout")
        agent.wait_event("worker_exited", pid=spawned["pid"])
        self.assertEqual(agent.agent_events("worker_ready"), [])

    def test_watchdog(self):
        agent = self.start_agent(["--workers=2", "--watchdog=600ms"])
        port = agent.port
        ready = agent.wait_ready(2)
        status, env = http_get(port, "/env")
        pid = parse_identity(env)["pid"]
        self.assertIn("WATCHDOG_USEC=600000\n", env)
        self.assertIn(f"WATCHDOG_PID={pid}\n", env)

        # Pinging workers outlive several watchdog periods (a bounded look).
        hold(lambda: http_get(port, "/")[0] == 200 and not agent.agent_events("worker_killed"),
             2.0, lambda: f"pinging workers serving, none killed:\n{agent.tail()}", interval=0.05)

        status, body = http_get(port, "/hang")
        hung = parse_identity(body)
        worker, pid = int(hung["worker"]), hung["pid"]
        t_hang = time.monotonic()
        exited = agent.wait_event("worker_exited", pid=pid, timeout=5)
        self.assertGreaterEqual(exited["_t"] - t_hang, 0.4, "stopped before its watchdog ran out")
        self.assertIs(exited.get("expected"), False, exited)
        again = agent.wait_event("worker_ready", worker=worker, gen=int(hung["gen"]) + 1, timeout=10)
        self.assertNotEqual(again["pid"], pid)
        other = [p for w, p in ready.items() if w != worker]
        self.assertEqual([e["pid"] for e in agent.agent_events("worker_exited")], [pid],
                         f"only the hung worker, not {other}")
        # The contract's word for it (checked last, so the rest is known).
        killed = agent.agent_events("worker_killed", pid=pid)
        self.assertEqual([e.get("reason") for e in killed], ["watchdog"],
                         f"worker_killed reason=watchdog for pid {pid}:\n{agent.tail()}")

    def test_stopped_worker_is_killed_by_watchdog(self):
        # A SIGSTOPped worker cannot act on SIGABRT: the agent must escalate.
        agent = self.start_agent(["--workers=1", "--watchdog=500ms"])
        pid = agent.wait_ready(1)[0]
        os.kill(agent.host_pid_of(pid), signal.SIGSTOP)
        exited = agent.wait_event("worker_exited", pid=pid, timeout=15)
        self.assertTrue(signal_is(exited.get("signal"), signal.SIGKILL), exited)
        agent.wait_event("worker_ready", worker=0, gen=2, timeout=10)
        killed = agent.agent_events("worker_killed", pid=pid)
        self.assertEqual([e.get("reason") for e in killed], ["watchdog"], agent.tail())


if __name__ == "__main__":
    unittest.main()
