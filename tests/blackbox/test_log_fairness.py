"""Issue 12, #7: when the agent's stdout is slower than the workers, the
loudest worker loses lines first. A worker writing as fast as it can while
stdout is not read must not cost a quiet worker a single line; the loud
one's losses are counted per worker in /metrics."""

import os
import re
import unittest

from pylib.agent import AUTO
from pylib.http_client import http_get
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for

QUIET_LINES = 200
LOUD_LINES = 40000

# Slot 0 floods 40 MB as fast as it can; slot 1 writes 200 numbered lines,
# 10 ms apart, at the same time. Both start when the file "go" appears and
# leave "done-<slot>" behind (in their working directory, the agent's).
WORKER = f"""
import os, sys, time
d = os.getcwd()
slot = os.environ["CORRAL_WORKER_ID"]
while not os.path.exists(d + "/go"):
    time.sleep(0.02)
out = sys.stdout.buffer
if slot == "0":
    line = b"x" * 990
    for i in range({LOUD_LINES}):
        out.write(b"loud-%d-" % i + line + b"\\n")
    out.flush()
else:
    for i in range({QUIET_LINES}):
        out.write(b"quiet-%d\\n" % i)
        out.flush()
        time.sleep(0.01)
open(d + "/done-" + slot, "w").close()
while True:
    time.sleep(1)
"""


class LogFairness(TestCase):

    def test_the_loud_worker_loses_lines_and_the_quiet_one_none(self):
        agent = self.start_agent(
            ["--workers=2", "--ready=delay:50ms", f"--http-port={AUTO}"],
            command=["/usr/bin/python3", "-c", WORKER])
        agent.wait_ready(2)
        go = os.path.join(agent.dir, "go")
        # Nobody reads the agent's stdout while both workers write.
        agent.log.pause()
        open(go, "w").close()
        for slot in (0, 1):
            wait_for(lambda: os.path.exists(os.path.join(agent.dir, f"done-{slot}")), 30,
                     f"worker {slot} done writing")
        agent.log.resume()

        def quiet():
            return [e["msg"] for e in agent.worker_lines(worker=1) if e["msg"].startswith("quiet-")]
        wait_for(lambda: len(quiet()) == QUIET_LINES, 20,
                 f"all {QUIET_LINES} lines of the quiet worker")
        self.assertEqual(quiet(), [f"quiet-{i}" for i in range(QUIET_LINES)])
        dropped = agent.wait_event("log_lines_dropped", timeout=15)
        note(f"log_lines_dropped: {dropped}")

        def loud():
            return len([e for e in agent.worker_lines(worker=0) if e["msg"].startswith("loud-")])

        def worker_drops():
            _, body = http_get(agent.http_port, "/metrics")
            return {int(w): int(n) for w, n in re.findall(
                r'^corral_worker_log_lines_dropped_total\{worker="(\d+)"\} (\d+)$', body, re.M)}
        # Every loud line is either logged or counted as dropped.
        wait_for(lambda: loud() + worker_drops().get(0, 0) == LOUD_LINES, 20,
                 f"slot 0's lines logged + dropped = {LOUD_LINES}")
        note(f"loud lines kept: {loud()} of {LOUD_LINES}; /metrics: {worker_drops()}")
        self.assertGreater(worker_drops()[0], 0)
        self.assertNotIn(1, worker_drops())
        self.assertEqual(agent.bad_lines, [], "a line cut in the middle")


if __name__ == "__main__":
    unittest.main()
