"""A CPU-limit rescale that lands while a memory replacement is starting.

Slot 1 leaks and is replaced (--max-worker-memory=64Mi); its replacement
takes 8 s to become READY. While it is still starting, the cgroup quota drops
to 0.5 CPU and the agent scales 2 -> 1, retiring slot 1: the old process and
the candidate both get SIGTERM and exit expected, with no failed request, and
the quota back to none brings slot 1 back.

Then the interrupted replacement must be over: a SIGHUP reload has to run.
(Regression test: Scale used to retire the candidate without aborting the
roll, which left it "in progress" for good and refused every later reload
and memory replacement.)
"""

import os
import signal
import unittest

from pylib import cgroups
from pylib.agent import LOOPBACK, Agent
from pylib.load import sleep_paths
from pylib.testcase import TestCase, note

LEAKY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "leaky_worker.py")


def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


class RescaleDuringReplaceTest(TestCase):

    def scenario(self):
        """Runs up to slot 1 being READY again after the scale 2 -> 1 -> 2;
        returns (agent, load)."""
        if len(os.sched_getaffinity(0)) < 2:
            self.skipTest(f"needs 2 CPUs of affinity, has {len(os.sched_getaffinity(0))}")
        cg = cgroups.make_v1_cgroup(self, "cpu", f"corral-sizing-rr-{os.getpid()}",
                            [("cpu.cfs_period_us", 100000), ("cpu.cfs_quota_us", 150000)])
        quota = os.path.join(cg, "cpu.cfs_quota_us")
        once = self.temp_dir("corral-sizing-once-")
        agent = Agent(self, ["--max-worker-memory=64Mi", "--drain-delay=100ms",
                             "--stop-timeout=20s"],
                      command=["/usr/bin/python3", LEAKY, f"--once-dir={once}",
                               "--leak-mib-per-s=16", "--leak-slot=1", "--leak-max-mib=160",
                               "--ready-delay-ms=8000", "--ready-delay-gen=2"],
                      listen=[LOOPBACK], control_socket="",
                      preexec=cgroups.join_fn(cg)).start()
        port = agent.port
        log = agent.log
        self.assertEqual(log.wait_event("sizing", 10).get("workers"), 2)
        log.wait_event("worker_ready", 20, worker=0)
        old = log.wait_event("worker_ready", 20, worker=1)

        load = self.start_load(port, threads=4, paths=sleep_paths(), timeout=15.0)
        load.wait_ok(20, 15)

        replace = log.wait_event("memory_replace", 30, worker=1, pid=old["pid"])
        candidate = log.wait_event("worker_spawned", 10, worker=1, gen=2)
        write(quota, 50000)
        down = log.wait_event("rescale", 6, after=replace["_i"], to=1)
        self.assertEqual(log.agent_events("worker_ready", worker=1, pid=candidate["pid"]), [],
                         "the candidate became READY before the rescale; "
                         "the scenario did not happen:\n" + log.excerpt())
        for pid in (old["pid"], candidate["pid"]):
            log.wait_event("worker_stopping", 10, after=down["_i"], worker=1, pid=pid)
            exited = log.wait_event("worker_exited", 25, worker=1, pid=pid)
            self.assertIs(exited.get("expected"), True, exited)
        note(f"rescale to 1 (#{down['_i']}) retired pid {old['pid']} and its "
             f"starting replacement {candidate['pid']}")

        mark = log.mark()
        write(quota, -1)
        up = log.wait_event("rescale", 10, after=mark, to=2)
        back = log.wait_event("worker_ready", 20, after=up["_i"], worker=1)
        load.wait_served_by(lambda i: i["worker"] == "1" and int(i["pid"]) == back["pid"],
                            15, f"an answer from worker 1 pid {back['pid']}")
        return agent, load

    def check_clean(self, agent, load):
        results = load.stop()
        self.assertNoFailedRequests(results, agent.log.excerpt())
        self.assertEqual(agent.log.agent_events("worker_killed"), [], agent.log.excerpt())
        self.assertEqual(agent.stop(), 0)

    def test_scale_down_retires_slot_and_its_starting_replacement_gracefully(self):
        agent, load = self.scenario()
        self.check_clean(agent, load)

    def test_reload_runs_after_scale_down_interrupted_a_replacement(self):
        agent, load = self.scenario()
        log = agent.log
        mark = log.mark()
        agent.signal(signal.SIGHUP)
        result = log.wait_any(("reload_finished", "reload_refused"), 40, after=mark)
        note(f"after SIGHUP: {result['event']} {result.get('msg', '')}")
        self.assertEqual(result["event"], "reload_finished",
                         "the memory replacement interrupted by the rescale is still "
                         "'in progress':\n" + log.excerpt(25))
        self.check_clean(agent, load)


if __name__ == "__main__":
    unittest.main()
