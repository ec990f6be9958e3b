"""A SIGKILL storm under load: for STORM_SECONDS a random READY worker is
SIGKILLed from outside every KILL_EVERY seconds while clients open a new
connection per request. Checks: nothing is refused; the only failed
requests are on connections a killed worker had already accepted (read
from /proc/net/tcp while it is frozen just before the kill); requests keep
being served all through (capacity is kept: no gap over MAX_GAP); every
slot comes back READY; afterwards no zombie, and the agent's fds, threads
and RSS are where they were before the storm.

The single-kill version with the same attribution is
tests/blackbox/test_kill_under_load.py; this one repeats it ~30 times.
"""
import os
import random
import signal
import time
import unittest

from pylib import procfs
from pylib.http_client import LOST_IN_FLIGHT, OK, REFUSED
from pylib.load import LoadGenerator
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for

WORKERS = 4
STORM_SECONDS = 10.0
KILL_EVERY = 0.3
MAX_GAP = 2.0  # seconds without any successful answer
RSS_SLACK_KIB = 8 * 1024


def agent_figures(pid):
    return procfs.fd_count(pid), procfs.thread_count(pid), procfs.rss_kib(pid)


class KillStorm(TestCase):
    agent_pid1 = True

    def zombies(self, agent):
        return [p for p in procfs.descendants(agent.host_pid)
                if procfs.proc_state(p) == "Z"]

    def test_sigkill_storm_under_load(self):
        agent = self.start_agent([f"--workers={WORKERS}"])
        port = agent.port
        agent.wait_ready(WORKERS)
        # Every third request is slow, so victims have requests in flight.
        load = self.start_load(port, threads=6, pace=0.002, paths=lambda t, i: (
            f"/?t={t}&i={i}&sleep_ms=150" if i % 3 == 0 else f"/?t={t}&i={i}"))
        load.wait_ok(100, 20)
        fds0, threads0, rss0 = agent_figures(agent.host_pid)

        rng = random.Random(12)
        victim_peers = set()
        kills = 0
        load.mark("storm starts")
        t_end = time.monotonic() + STORM_SECONDS
        while time.monotonic() < t_end:
            ready = agent.ready_workers()
            if not ready:
                time.sleep(0.01)  # a poll step while none is READY
                continue
            victim = ready[rng.choice(sorted(ready))]
            host = agent.host_pid_of(victim)
            if host is None:
                continue  # exited on its own a moment ago
            # Frozen, it accepts nothing more: its accepted connections are
            # the only ones its death may fail.
            os.kill(host, signal.SIGSTOP)
            wait_for(lambda: procfs.proc_state(host) in ("T", "t", None), 5,
                     f"worker {victim} stopped")
            victim_peers |= set(procfs.accepted_peer_ports(host, port))
            os.kill(host, signal.SIGKILL)
            agent.wait_event("worker_exited", pid=victim, timeout=5)
            kills += 1
            time.sleep(KILL_EVERY)  # the storm's pace, not a wait for a condition
        load.mark("storm ends")

        wait_for(lambda: len(agent.ready_workers()) == WORKERS, 15,
                 lambda: f"{WORKERS} workers READY again; {agent.tail()}")
        load.wait_ok(100, 20)
        results = load.stop()

        failures = LoadGenerator.failures(results)
        refused = [r for r in results if r.kind == REFUSED]
        unexplained = [r for r in failures
                       if r.kind not in LOST_IN_FLIGHT or r.local_port not in victim_peers]
        oks = sorted(r.t_end for r in results if r.kind == OK)
        gap = max(b - a for a, b in zip(oks, oks[1:]))
        note(f"{kills} SIGKILLs in {STORM_SECONDS:.0f}s; {LoadGenerator.summary(results)}; "
             f"{len(failures)} failed, all on {len(victim_peers)} connections the victims "
             f"held; longest gap between answers {gap * 1000:.0f} ms")
        self.assertGreaterEqual(kills, 10, "the storm was too slow to be one")
        self.assertEqual(refused, [], "refused connections")
        self.assertEqual(unexplained, [], "failures beyond the killed workers' connections\n"
                         + load.timeline(results))
        self.assertLess(gap, MAX_GAP, "nothing served for too long\n" + load.timeline(results))
        exited = agent.agent_events("worker_exited")
        self.assertEqual(len(exited), kills, "only the victims exited")

        wait_for(lambda: not self.zombies(agent), 5, lambda: f"no zombie: {self.zombies(agent)}")
        # The agent's own resources are back where they were (fds of the
        # killed workers' pipes closed, no thread or memory left behind).
        wait_for(lambda: procfs.fd_count(agent.host_pid) <= fds0, 5,
                 lambda: f"agent fds back to {fds0}: {procfs.fd_count(agent.host_pid)}")
        fds1, threads1, rss1 = agent_figures(agent.host_pid)
        note(f"agent fds {fds0} -> {fds1}, threads {threads0} -> {threads1}, "
             f"RSS {rss0} -> {rss1} KiB")
        self.assertEqual(threads1, threads0, "agent threads")
        if not procfs.sanitized(agent.host_pid):  # ASan's quarantine keeps freed memory
            self.assertLess(rss1, rss0 + RSS_SLACK_KIB, "agent RSS grew")


if __name__ == "__main__":
    unittest.main()
