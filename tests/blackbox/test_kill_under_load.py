"""Scenario 3: SIGKILL of a worker under load. Only connections the killed
worker had already accepted may fail; nothing is refused; the slot comes
back READY with a new pid, the same id and the next generation."""

import collections
import os
import signal
import unittest

from pylib.agent import signal_is
from pylib.http_client import LOST_IN_FLIGHT, OK, http_get, parse_identity
from pylib.load import LoadGenerator
from pylib.procfs import accepted_peer_ports, proc_state
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for


class KillUnderLoad(TestCase):
    agent_pid1 = True

    def test_sigkill_one_worker(self):
        agent = self.start_agent(["--workers=3"])
        port = agent.port
        ready = agent.wait_ready(3)
        victim_id = 1
        victim = ready[victim_id]
        victim_host = agent.host_pid_of(victim)
        gen = agent.agent_events("worker_ready", worker=victim_id, pid=victim)[0]["gen"]

        # Every third request is slow, so the victim surely has some in flight.
        load = self.start_load(port, threads=6, paths=lambda t, i: (
            f"/?t={t}&i={i}&sleep_ms=300" if i % 3 == 0 else f"/?t={t}&i={i}"))
        load.wait_ok(60)

        # Freeze the victim, note which client connections it holds (it can
        # accept no more), then kill it: those are the only ones that may
        # fail. Freeze it at a moment when it holds some, so the test covers
        # in-flight losses too.
        for _ in range(50):
            os.kill(victim_host, signal.SIGSTOP)
            wait_for(lambda: proc_state(victim_host) == "T", 5, "victim stopped")
            victim_peers = accepted_peer_ports(victim_host, port)
            if victim_peers:
                break
            os.kill(victim_host, signal.SIGCONT)
            load.wait_ok(2)
        os.kill(victim_host, signal.SIGKILL)

        exited = agent.wait_event("worker_exited", pid=victim)
        self.assertTrue(signal_is(exited.get("signal"), signal.SIGKILL), exited)
        self.assertIs(exited.get("expected"), False, exited)
        again = agent.wait_event("worker_ready", worker=victim_id, gen=gen + 1, timeout=10)
        self.assertNotEqual(again["pid"], victim)

        # The replacement takes traffic from the shared queue.
        wait_for(lambda: any(parse_identity(r.body) and parse_identity(r.body)["pid"] == again["pid"]
                             for r in load.snapshot() if r.kind == OK),
                 10, f"an answer from the replacement {again['pid']}")
        load.wait_ok(30)
        results = load.stop()

        failures = LoadGenerator.failures(results)
        on_victim = [(r.path, r.kind) for r in results if r.local_port in victim_peers]
        served = collections.Counter(parse_identity(r.body)["worker"] for r in results
                                     if r.kind == OK)
        note(f"{LoadGenerator.summary(results)}; answers by worker {dict(served)}; "
             f"victim held {len(victim_peers)} connections: {on_victim}")
        unexplained = [r for r in failures
                       if r.kind not in LOST_IN_FLIGHT or r.local_port not in victim_peers]
        self.assertEqual(unexplained, [],
                         f"failures beyond the victim's {len(victim_peers)} accepted "
                         f"connections (of {len(results)} requests)")
        self.assertEqual(len(agent.agent_events("worker_exited")), 1,
                         "only the victim exited")
        self.assertEqual({k: v for k, v in agent.ready_workers().items() if k != victim_id},
                         {k: v for k, v in ready.items() if k != victim_id})

    def test_worker_exit_restarts_at_once(self):
        agent = self.start_agent(["--workers=2"])
        port = agent.port
        ready = agent.wait_ready(2)
        status, body = http_get(port, "/exit?code=3")
        gone = parse_identity(body)
        worker, pid = int(gone["worker"]), gone["pid"]
        exited = agent.wait_event("worker_exited", pid=pid)
        self.assertEqual(exited.get("code"), 3, exited)
        self.assertIs(exited.get("expected"), False, exited)
        delay = agent.wait_event("worker_restart_scheduled", worker=worker)
        self.assertLessEqual(delay.get("delay_ms"), 10, "the first restart is at once")
        again = agent.wait_event("worker_ready", worker=worker, gen=2)
        self.assertNotEqual(again["pid"], pid)
        self.assertEqual(agent.ready_workers()[1 - worker], ready[1 - worker])


if __name__ == "__main__":
    unittest.main()
