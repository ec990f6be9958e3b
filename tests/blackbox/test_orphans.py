"""Scenario 1: an orphan storm leaves no zombie, as PID 1 and as subreaper."""

import re
import unittest

from pylib.http_client import http_get
from pylib.procfs import descendants, proc_state
from pylib.testcase import TestCase

N_ORPHANS = 120


class OrphanStorm(TestCase):

    def run_storm(self, pid1):
        agent = self.start_agent(["--workers=2"], pid1=pid1)
        port = agent.port
        started = agent.agent_events("agent_started")[0]
        self.assertIs(started.get("pid1"), pid1, started)
        ready = agent.wait_ready(2)

        status, body = http_get(port, f"/orphans?n={N_ORPHANS}", timeout=30)
        self.assertEqual(status, 200, body)
        orphans = {int(p) for p in re.search(r"pids=([\d,]*)", body).group(1).split(",") if p}
        self.assertEqual(len(orphans), N_ORPHANS, body)

        # Every grandchild was re-parented to the agent and reaped by it.
        def reaped():
            return orphans <= {e.get("pid") for e in agent.agent_events("orphan_reaped")}
        agent.wait_until(reaped, 15, f"orphan_reaped for all {N_ORPHANS} orphans")
        codes = {e.get("code") for e in agent.agent_events("orphan_reaped")
                 if e.get("pid") in orphans}
        self.assertEqual(codes, {0, 1, 2, 3}, "orphans exit with index % 4")

        # Nothing is left but the two workers, and nothing is a zombie.
        worker_host_pids = {agent.host_pid_of(pid) for pid in ready.values()}
        left = descendants(agent.host_pid)
        zombies = [p for p in left if proc_state(p) == "Z"]
        self.assertEqual(zombies, [], "zombies under the agent")
        self.assertEqual(set(left), worker_host_pids)

        # Orphans (some exiting 1, 2, 3) never count as workers.
        self.assertEqual(agent.agent_events("worker_exited"), [])
        self.assertEqual(agent.ready_workers(), ready)
        status, body = http_get(port, "/")
        self.assertEqual(status, 200)

    def test_as_pid1(self):
        self.run_storm(pid1=True)

    def test_as_subreaper(self):
        self.run_storm(pid1=False)


if __name__ == "__main__":
    unittest.main()
