"""Live rescale in a real cgroup v1 `cpu` hierarchy.

The agent runs in a fresh cgroup `corral-sizing-<pid>` under the test's own
v1 cpu cgroup with quota 150000/100000 (1.5 CPUs -> ceil 2 workers). Under
steady HTTP load the quota goes to 50000 (0.5 CPU -> 1 worker): the agent must
rescale to 1 by draining the highest slot with SIGTERM (never SIGKILL), with
zero failed requests. Then quota -1 (no limit -> the affinity, 2).

Skips (saying why) without root, without a v1 cpu hierarchy, when the cgroup
cannot be created, or with less than 2 CPUs of affinity.
"""

import os
import time
import unittest

from pylib import cgroups
from pylib.agent import LOOPBACK, Agent
from pylib.load import sleep_paths
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for


def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def read(path):
    with open(path) as f:
        return f.read().strip()


class CgroupRescaleTest(TestCase):

    def test_quota_change_rescales_live_without_failed_requests(self):
        if len(os.sched_getaffinity(0)) < 2:
            self.skipTest(f"needs 2 CPUs of affinity, has {len(os.sched_getaffinity(0))}")
        cg = cgroups.make_v1_cgroup(self, "cpu", f"corral-sizing-{os.getpid()}",
                            [("cpu.cfs_period_us", 100000), ("cpu.cfs_quota_us", 150000)])
        quota = os.path.join(cg, "cpu.cfs_quota_us")
        procs = os.path.join(cg, "cgroup.procs")
        agent = Agent(self, ["--drain-delay=100ms", "--stop-timeout=20s"], listen=[LOOPBACK],
                      control_socket="", preexec=cgroups.join_fn(cg)).start()
        port = agent.port
        log = agent.log

        # Start: 2 workers, the decision names the quota and the cgroup.
        sizing = log.wait_event("sizing", 10)
        started = log.wait_event("agent_started", 10)
        note(f"sizing: workers={sizing.get('workers')} auto={sizing.get('auto')} "
             f"rule={sizing.get('rule')} msg={sizing['msg']}")
        self.assertIn(str(agent.host_pid), read(procs).split(), "the agent is not in the cgroup")
        self.assertEqual(sizing.get("workers"), 2, sizing)
        self.assertIs(sizing.get("auto"), True, sizing)
        self.assertEqual(sizing.get("rule"), "cpu quota", sizing)
        self.assertRegex(sizing["msg"], r"^workers=2: cgroup v1 quota 1\.50 CPUs at ")
        self.assertIn(f"/corral-sizing-{os.getpid()}", sizing["msg"])
        self.assertIn("150000/100000", sizing["msg"])
        self.assertEqual(started.get("workers"), 2, started)
        log.wait_event("worker_ready", 15, worker=0)
        log.wait_event("worker_ready", 15, worker=1)

        load = self.start_load(port, threads=6, paths=sleep_paths(), timeout=15.0)
        load.wait_ok(40, 15)
        load.wait_served_by(lambda i: i["worker"] == "1", 10, "an answer from worker 1")

        # Quota 0.5 CPU: rescale 2 -> 1 after two reads (about 2 s).
        mark = log.mark()
        t0 = time.monotonic()
        write(quota, 50000)
        down = log.wait_event("rescale", 10, after=mark, to=1)
        note(f"rescale after {time.monotonic() - t0:.1f}s: {down['msg']}")
        self.assertEqual(down.get("from"), 2, down)
        self.assertIn("quota 0.50 CPUs", down["msg"])
        self.assertIn("50000/100000", down["msg"])
        stopping = log.wait_event("worker_stopping", 10, after=down["_i"], worker=1)
        exited = log.wait_event("worker_exited", 25, after=stopping["_i"], worker=1,
                          pid=stopping["pid"])
        self.assertIs(exited.get("expected"), True, exited)
        note("drained worker: " + " | ".join(
            l for l in log.worker_text(stopping["pid"]) if "drain" in l))
        self.assertEqual(exited.get("code"), 0, exited)
        self.assertEqual(log.agent_events("worker_killed"), [], log.excerpt())
        self.assertEqual(log.agent_events("worker_stopping", after=down["_i"], worker=0), [],
                         "slot 0 must keep running:\n" + log.excerpt())
        # After the drain only worker 0 answers.
        # (Requests sent after the exit was seen: one sent before may end later.)
        load.wait_ok(30, 15)
        late = [r for r in load.snapshot() if r.kind == "ok" and r.t_start > exited["_t"]]
        self.assertTrue(late, "no request answered after the drain")
        self.assertEqual([r.body for r in late if "worker=0 " not in r.body][:3], [])

        # No limit: back to the affinity, 2 workers.
        mark = log.mark()
        t0 = time.monotonic()
        write(quota, -1)
        up = log.wait_event("rescale", 10, after=mark, to=2)
        note(f"rescale after {time.monotonic() - t0:.1f}s: {up['msg']}")
        self.assertEqual(up.get("from"), 1, up)
        self.assertRegex(up["msg"], r"workers=2: affinity 2")
        ready = log.wait_event("worker_ready", 15, after=up["_i"], worker=1)
        load.wait_served_by(lambda i: i["worker"] == "1" and i["gen"] == str(ready["gen"]),
                            15, f"an answer from worker 1 gen {ready['gen']}")

        results = load.stop()

        self.assertNoFailedRequests(results, log.excerpt())
        self.assertEqual(log.agent_events("worker_killed"), [], log.excerpt())

        code = agent.stop()
        self.assertEqual(code, 0, f"agent exit {code}; stderr {agent.stderr_lines[-5:]}")
        wait_for(lambda: read(procs) == "", 10, lambda: f"{cg} empty, has {read(procs)}")


if __name__ == "__main__":
    unittest.main()
