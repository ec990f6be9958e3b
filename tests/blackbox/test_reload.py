"""Scenario 4: SIGHUP is a rolling reload under load with zero failed
requests; a replacement that cannot start aborts it and the old workers keep
serving."""

import os
import signal
import unittest

from pylib.http_client import http_get, parse_identity
from pylib.procfs import descendants, fd_count, thread_count
from pylib.testcase import TestCase
from pylib.waiting import wait_for


def mixed_paths(t, i):
    return f"/?t={t}&i={i}&sleep_ms=200" if i % 4 == 0 else f"/?t={t}&i={i}"


class Reload(TestCase):
    agent_pid1 = True

    def test_sighup_replaces_every_slot_without_failures(self):
        # The replacement waits 150 ms before READY (and before accepting), so
        # an agent that does not wait for READY shows in the event order.
        agent = self.start_agent(["--workers=3"], ["--ready-delay-ms=150"])
        port = agent.port
        old = agent.wait_ready(3)
        load = self.start_load(port, threads=4, paths=mixed_paths)
        load.wait_ok(40)

        agent.signal(signal.SIGHUP)
        agent.wait_event("reload_finished", timeout=30)
        load.wait_ok(40)
        results = load.stop()
        self.assertNoFailedRequests(results)
        self.assertEqual(len(agent.agent_events("reload_started")), 1)
        self.assertEqual(agent.agent_events("reload_aborted"), [])
        done = {e["worker"]: e for e in agent.agent_events("reload_slot_done")}
        self.assertEqual(sorted(done), [0, 1, 2])
        new = agent.ready_workers()
        for slot, old_pid in old.items():
            self.assertEqual(done[slot]["old_pid"], old_pid)
            self.assertEqual(done[slot]["new_pid"], new[slot])
            self.assertNotEqual(new[slot], old_pid)
            self.assert_ready_before_old_stopped(agent, slot, old_pid, new[slot])
            exited = agent.wait_event("worker_exited", pid=old_pid)
            self.assertEqual(exited.get("code"), 0, exited)
            self.assertIs(exited.get("expected"), True, exited)
        # From now on only the new generation answers.
        for _ in range(20):
            status, body = http_get(port, "/")
            self.assertIn(parse_identity(body)["pid"], set(new.values()))

    def assert_ready_before_old_stopped(self, agent, slot, old_pid, new_pid):
        events = [e for e in agent.agent_events() if e.get("pid") == new_pid or
                  e.get("pid") == old_pid]
        order = [(e["event"], e["pid"]) for e in events]
        ready_at = order.index(("worker_ready", new_pid))
        exit_at = order.index(("worker_exited", old_pid))
        self.assertLess(ready_at, exit_at,
                        f"slot {slot}: old worker stopped before the new one was READY: {order}")

    def test_failed_replacement_aborts_and_old_workers_keep_serving(self):
        poison = os.path.join(self.temp_dir(), "fail-now")
        agent = self.start_agent(["--workers=2", "--ready-timeout=3s"],
                                 [f"--fail-if-exists={poison}"])
        port = agent.port
        old = agent.wait_ready(2)
        load = self.start_load(port, threads=3, paths=mixed_paths)
        load.wait_ok(20)

        open(poison, "w").close()  # every new worker now exits 1 before READY
        agent.signal(signal.SIGHUP)
        aborted = agent.wait_event("reload_aborted", timeout=20)
        self.assertIn(aborted.get("worker"), old)
        load.wait_ok(30)
        results = load.stop()
        self.assertNoFailedRequests(results)
        self.assertEqual(agent.ready_workers(), old)
        for pid in old.values():
            self.assertEqual(agent.agent_events("worker_exited", pid=pid), [])
        answered = {parse_identity(http_get(port, "/")[1])["pid"] for _ in range(30)}
        self.assertLessEqual(answered, set(old.values()))

    def test_repeated_reloads_leak_no_fds_or_threads(self):
        agent = self.start_agent(["--workers=2"])
        agent.wait_ready(2)
        before = agent_resources(agent.host_pid)
        for k in range(1, 6):
            agent.signal(signal.SIGHUP)
            agent.wait_event("reload_finished", count=k, timeout=20)
        agent.wait_ready(2)
        # Old workers and their log pipes go a moment after reload_finished.
        wait_for(lambda: agent_resources(agent.host_pid) == before, 5,
                 lambda: f"agent (fds, threads) back to {before}, now {agent_resources(agent.host_pid)}")
        self.assertEqual(len(agent.agent_events("reload_slot_done")), 10)
        self.assertEqual(len(descendants(agent.host_pid)), 2, "old workers all gone")


def agent_resources(pid):
    return fd_count(pid), thread_count(pid)


if __name__ == "__main__":
    unittest.main()
