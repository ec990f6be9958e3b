"""Workers that misbehave, and what the agent does about each.

Here: a log flood (the agent stays bounded and live, and counts what it
drops), a 10 MB line (split into bounded pieces, memory bounded), a worker
with its stdout and stderr closed (served and supervised; the agent does
not spin on the closed pipes), and a quiet worker's fair share of the log
under a flood (defect #7).

The other misbehaviours have their tests elsewhere (docs/reliability.md):
ignores SIGTERM (tests/blackbox/test_shutdown.py), orphan storm
(test_orphans.py), never ready (test_timeouts.py), crash loop
(test_bad_command.py and the restart policy's unit tests).
"""
import threading
import time
import unittest

from pylib import paths, procfs
from pylib.http_client import http_get, parse_identity, request
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for

MIB = 1024


def log_line(tag, i, length):
    """What corral-test-worker's /log writes as line i (endpoints.cc)."""
    line = f"{tag}-{i}-"
    return line + "".join(chr(ord("a") + k % 26) for k in range(len(line), length))


class LivenessProbe:
    """GET /livez every 50 ms on a thread; the slowest answer (or failure)."""

    def __init__(self, port):
        self.port = port
        self.worst = 0.0
        self.failures = []
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                status = request(self.port, "/livez", timeout=5).status
                if status != 200:
                    self.failures.append(f"status {status}")
            except OSError as e:
                self.failures.append(repr(e))
            self.worst = max(self.worst, time.monotonic() - t)
            self.count += 1
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join(10)


class MisbehavingWorkers(TestCase):
    agent_pid1 = True

    def start(self, workers=2, **kw):
        agent = self.start_agent([f"--workers={workers}", "--http-port=auto",
                                  "--probe-address=127.0.0.1"], **kw)
        agent.wait_ready(workers)
        return agent

    def dropped(self, agent):
        return sum(e.get("count", 0) for e in agent.agent_events("log_lines_dropped"))

    def test_log_flood_keeps_the_agent_bounded_and_live(self):
        agent = self.start()
        rss0 = procfs.rss_kib(agent.host_pid)
        probe = LivenessProbe(agent.http_port)
        self.addCleanup(probe.stop)
        lines = 50000
        t = time.monotonic()
        status, body = http_get(agent.port, f"/log?n={lines}&len=1000&tag=flood", timeout=60)
        wrote = time.monotonic() - t
        self.assertEqual(status, 200, body)
        flooder = parse_identity(body)["pid"]
        peak = procfs.rss_kib(agent.host_pid)

        def accounted():
            got = sum(1 for e in agent.worker_lines(pid=flooder)
                      if e.get("msg", "").startswith("flood-"))
            return got if got + self.dropped(agent) >= lines else None
        got = wait_for(accounted, 60, lambda: f"{lines} flood lines delivered or counted "
                       f"dropped; dropped so far {self.dropped(agent)}")
        probe.stop()
        note(f"{lines} lines of 1000 B written in {wrote:.2f}s ({lines / 1000 / wrote:.0f} MB/s); "
             f"{got} delivered, {self.dropped(agent)} counted dropped; agent RSS "
             f"{rss0} -> {peak} KiB; slowest /livez {probe.worst * 1000:.0f} ms of {probe.count}")
        self.assertEqual(probe.failures, [], "/livez failed during the flood")
        self.assertLess(probe.worst, 1.0, "/livez slower than 1 s during the flood")
        if not procfs.sanitized(agent.host_pid):  # ASan's quarantine keeps freed memory
            self.assertLess(peak - rss0, 64 * MIB, "agent RSS grew with the flood")
        self.assertEqual(agent.bad_lines, [], "a line cut in the middle")
        # Still supervising: the flooder answers again.
        self.assertEqual(http_get(agent.port, "/")[0], 200)

    def test_giant_line_is_split_and_memory_stays_bounded(self):
        agent = self.start(workers=1)
        rss0 = procfs.rss_kib(agent.host_pid)
        length = 10 * 1000 * 1000
        status, body = http_get(agent.port, f"/log?n=1&len={length}&tag=giant", timeout=60)
        self.assertEqual(status, 200, body)
        pid = parse_identity(body)["pid"]

        def whole():
            parts = [e for e in agent.worker_lines(pid=pid, stream="stdout")]
            parts = parts[next((i for i, e in enumerate(parts)
                                if e.get("msg", "").startswith("giant-")), len(parts)):]
            done = parts and not parts[-1].get("cont")
            return parts if done or self.dropped(agent) else None
        parts = wait_for(whole, 60, "the 10 MB line's last piece")
        rss1 = procfs.rss_kib(agent.host_pid)
        self.assertTrue(all(len(e["msg"].encode()) <= 16 * 1024 for e in parts),
                        "a piece over 16 KiB")
        if not procfs.sanitized(agent.host_pid):  # ASan's quarantine keeps freed memory
            self.assertLess(rss1 - rss0, 32 * MIB, "agent RSS grew with the line")
        whole_line = "".join(e["msg"] for e in parts) == log_line("giant", 0, length)
        if not whole_line:
            # Pieces the sink could not take were dropped: the agent says so
            # (log_lines_dropped comes with its next report).
            agent.wait_event("log_lines_dropped", timeout=10)
        note(f"10 MB line in {len(parts)} pieces of at most 16 KiB "
             f"({'whole' if whole_line else 'some dropped'}); agent RSS {rss0} -> {rss1} "
             f"KiB; lines dropped {self.dropped(agent)}")

    def test_closed_stdout_and_stderr(self):
        # The worker closes fds 1 and 2 before it execs: the agent's ends of
        # its log pipes see EOF at once.
        test_worker = paths.binary("CORRAL_TEST_WORKER")
        agent = self.start(workers=2, command=[
            "/bin/sh", "-c", 'exec >&- 2>&-; exec "$0"', test_worker])
        ready = agent.ready_workers()
        cpu0 = procfs.cpu_seconds([agent.host_pid])
        # The agent does not spin on the closed pipes: over a second it uses
        # next to no CPU.
        t = time.monotonic()
        for _ in range(10):
            self.assertEqual(http_get(agent.port, "/")[0], 200)
        wait_for(lambda: time.monotonic() - t >= 1.0, 2, "a second of idle")
        cpu = procfs.cpu_seconds([agent.host_pid]) - cpu0
        note(f"agent CPU over {time.monotonic() - t:.2f}s with closed worker stdio: "
             f"{cpu * 1000:.0f} ms")
        self.assertLess(cpu, 0.2, "the agent spins on closed pipes")
        # Still supervised: a restart gives a new READY worker in that slot.
        victim_id = sorted(ready)[0]
        code, out, err = agent.ctl("restart", str(victim_id))
        self.assertEqual(code, 0, out + err)
        agent.wait_event("worker_exited", pid=ready[victim_id], timeout=20)
        wait_for(lambda: agent.ready_workers().get(victim_id) not in (None, ready[victim_id]),
                 20, "a replacement READY")

    def test_a_quiet_worker_loses_nothing_to_a_loud_one(self):
        # The test worker serves each connection on its own thread, so the
        # loud worker also answers some quiet requests while it floods; those
        # lines are the loud source's and may be dropped with its flood. What
        # must hold: every line the quiet worker writes arrives.
        agent = self.start_agent(["--workers=2", "--http-port=auto",
                                  "--probe-address=127.0.0.1", "--balance=shared"])
        agent.wait_ready(2)
        loud_done = threading.Event()

        def flood():
            http_get(agent.port, "/log?n=100000&len=1000&tag=loud", timeout=120)
            loud_done.set()
        threading.Thread(target=flood, daemon=True).start()
        loud = wait_for(lambda: next((str(e["worker"]) for e in agent.worker_lines()
                                      if e.get("msg", "").startswith("loud-")), None),
                        30, "the flood's first line")
        # Quiet requests until the quiet worker has answered 190 of them.
        by_quiet = []
        for i in range(2000):
            status, body = http_get(agent.port, f"/echo?line=quiet-{i}", timeout=30)
            self.assertEqual(status, 200, body)
            if not body.startswith(f"worker={loud} "):
                by_quiet.append(f"quiet-{i}")
                if len(by_quiet) == 190:
                    break
        self.assertEqual(len(by_quiet), 190, "the quiet worker answered too few requests")
        wait_for(loud_done.is_set, 120, "the flood to end")

        def missing():
            got = {e["msg"] for e in agent.worker_lines() if e.get("msg", "").startswith("quiet-")}
            return [line for line in by_quiet if line not in got]
        wait_for(lambda: not missing(), 30,
                 lambda: f"the quiet worker's 190 lines; missing {missing()[:5]}..., "
                         f"dropped {self.dropped(agent)}")
        note(f"quiet worker: 190 lines, all delivered; dropped (the loud worker's) "
             f"{self.dropped(agent)}")


if __name__ == "__main__":
    unittest.main()
