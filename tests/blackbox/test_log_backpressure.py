"""Hard rule 8: a blocked agent stdout never stalls the loop. Output is
buffered to a bound, the excess dropped and counted (log_lines_dropped), and
workers are still supervised meanwhile."""

import os
import signal
import unittest

from pylib.http_client import http_get, parse_identity
from pylib.procfs import descendants, proc_state
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for


class LogBackpressure(TestCase):
    agent_pid1 = True

    def test_blocked_stdout_drops_lines_and_keeps_supervising(self):
        agent = self.start_agent(["--workers=2"])
        port = agent.port
        ready = agent.wait_ready(2)
        agent.log.pause()

        # 40 MB of worker output while nobody reads the agent's stdout: the
        # worker must not block on its pipe (the agent keeps reading it).
        status, body = http_get(port, "/log?n=40000&len=1000&tag=flood", timeout=30)
        self.assertEqual(status, 200, body)
        flooder = parse_identity(body)["pid"]

        # The loop still supervises: kill the other worker, a new one serves.
        other = next(p for p in ready.values() if p != flooder)
        os.kill(agent.host_pid_of(other), signal.SIGKILL)
        new_pid = wait_for(
            lambda: next((i["pid"] for i in [parse_identity(http_get(port, "/")[1])]
                          if i["pid"] not in ready.values()), None),
            10, "an answer from a replacement worker while stdout is blocked")
        self.assertNotIn(new_pid, ready.values())
        zombies = [p for p in descendants(agent.host_pid) if proc_state(p) == "Z"]
        self.assertEqual(zombies, [])

        agent.log.resume()
        dropped = agent.wait_event("log_lines_dropped", timeout=15)
        note(f"log_lines_dropped: {dropped}")
        self.assertGreater(dropped.get("count", 0), 0)
        got = len([e for e in agent.worker_lines(pid=flooder) if e.get("msg", "").startswith("flood-")])
        self.assertLess(got, 40000)
        self.assertEqual(agent.bad_lines, [], "a line cut in the middle")


if __name__ == "__main__":
    unittest.main()
