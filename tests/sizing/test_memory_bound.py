"""--max-worker-memory: a leaking worker is replaced gracefully under load.

Two leaky_worker.py workers; only slot 1 generation 1 leaks. Once that
worker's RSS has been over the bound for two 1-second samples the agent must
log `memory_replace`, start a replacement for slot 1, wait for its READY, and
only then SIGTERM the old one, which drains and exits expected=true. No
request may fail, slot 0 is left alone, and the replacement (generation 2,
which does not leak) is not replaced again.

- fixed: --max-worker-memory=64Mi, 8 MiB/s.
- auto: the agent in a real v1 memory cgroup limited to 256Mi:
  (256Mi - 64Mi headroom) / 2 workers = 96Mi; skips where the memory cgroup
  cannot be created.
"""

import os
import unittest

from pylib import cgroups
from pylib.agent import LOOPBACK, Agent
from pylib.load import sleep_paths
from pylib.testcase import TestCase, note

LEAKY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "leaky_worker.py")
MiB = 1 << 20


class MemoryBoundTest(TestCase):

    def run_leak(self, name, memory_flag, bound, leak_mib_per_s, preexec=None):
        """Runs the scenario; returns the agent's EventLog."""
        agent = Agent(self, ["--workers=2", memory_flag, "--drain-delay=100ms",
                             "--stop-timeout=20s"],
                      command=["/usr/bin/python3", LEAKY, f"--leak-mib-per-s={leak_mib_per_s}",
                               "--leak-slot=1", "--leak-gen=1", "--leak-max-mib=160"],
                      listen=[LOOPBACK], control_socket="", preexec=preexec,
                      name=f"{self.id()}.{name}").start()
        port = agent.port
        log = agent.log

        sizing = log.wait_event("sizing", 10)
        self.assertIs(sizing.get("auto"), False, sizing)  # --workers=2 was parsed
        budget = log.wait_event("memory_budget", 10)
        note(f"memory_budget: {budget['msg']}")
        self.assertEqual(budget.get("bytes"), bound, budget)
        started = log.wait_event("agent_started", 10)
        self.assertEqual(started.get("workers"), 2, started)
        r0 = log.wait_event("worker_ready", 20, worker=0)
        r1 = log.wait_event("worker_ready", 20, worker=1)
        old_pid = r1["pid"]

        load = self.start_load(port, threads=6, paths=sleep_paths(), timeout=15.0)
        load.wait_ok(30, 15)

        # bound / rate seconds of leaking, plus two samples.
        replace = log.wait_event("memory_replace", 40, worker=1)
        note(f"memory_replace: {replace['msg']}")
        self.assertEqual(replace.get("pid"), old_pid, replace)
        self.assertGreater(replace.get("rss_bytes", 0), bound, replace)
        self.assertEqual(replace.get("bound_bytes"), bound, replace)

        # The agent calls Supervisor::Replace (which logs worker_spawned)
        # before it logs memory_replace, so the spawn may come just before it.
        spawned = log.wait_event("worker_spawned", 10, after=r1["_i"], worker=1, gen=2)
        self.assertLessEqual(abs(spawned["_i"] - replace["_i"]), 1, log.excerpt())
        ready = log.wait_event("worker_ready", 20, after=spawned["_i"], worker=1,
                         pid=spawned["pid"])
        stopping = log.wait_event("worker_stopping", 10, worker=1, pid=old_pid)
        exited = log.wait_event("worker_exited", 25, worker=1, pid=old_pid)
        done = log.wait_event("reload_slot_done", 10, worker=1)
        note(f"order: memory_replace #{replace['_i']}, worker_spawned #{spawned['_i']} "
             f"(pid {spawned['pid']} gen {spawned.get('gen')}), worker_ready "
             f"#{ready['_i']}, reload_slot_done #{done['_i']}, worker_stopping "
             f"#{stopping['_i']} (pid {old_pid}), worker_exited #{exited['_i']}")
        self.assertLess(ready["_i"], stopping["_i"],
                        "the old worker got SIGTERM before its replacement was READY:\n"
                        + log.excerpt())
        self.assertLess(stopping["_i"], exited["_i"])
        note("old worker: " + " | ".join(
            l for l in log.worker_text(old_pid) if "drain" in l))
        self.assertIs(exited.get("expected"), True, exited)
        self.assertEqual(exited.get("code"), 0, exited)
        self.assertEqual(done.get("reason"), "memory", done)
        self.assertEqual(done.get("old_pid"), old_pid, done)
        self.assertEqual(done.get("new_pid"), spawned["pid"], done)

        # The replacement serves; slot 0 kept its process; nothing was killed.
        load.wait_served_by(lambda i: i["worker"] == "1" and i["gen"] == "2", 15,
                            "an answer from worker 1 gen 2")
        load.wait_ok(30, 15)
        results = load.stop()
        self.assertNoFailedRequests(results, log.excerpt())
        self.assertEqual(log.agent_events("worker_killed"), [], log.excerpt())
        self.assertEqual(log.agent_events("worker_stopping", worker=0), [], log.excerpt())
        self.assertEqual([e["pid"] for e in log.agent_events("worker_spawned", worker=0)],
                         [r0["pid"]])
        self.assertEqual(len(log.agent_events("memory_replace")), 1, log.excerpt())

        code = agent.stop()
        self.assertEqual(code, 0, f"agent exit {code}; stderr {agent.stderr_lines[-5:]}")
        return log

    def test_fixed_bound_replaces_leaking_worker_before_drain(self):
        self.run_leak("memory_fixed", "--max-worker-memory=64Mi", 64 * MiB, 8)

    def test_auto_bound_from_real_memory_cgroup(self):
        name = f"corral-sizing-mem-{os.getpid()}"
        cg = cgroups.make_v1_cgroup(self, "memory", name,
                            [("memory.limit_in_bytes", 256 * MiB)])
        log = self.run_leak("memory_auto", "--max-worker-memory=auto", 96 * MiB, 16,
                            preexec=cgroups.join_fn(cg))
        budget = log.agent_events("memory_budget")[0]
        self.assertIn("auto", budget["msg"])
        self.assertIn("256Mi", budget["msg"])
        self.assertIn(f"/{name}", budget["msg"])
        self.assertIn("64Mi", budget["msg"])


if __name__ == "__main__":
    unittest.main()
