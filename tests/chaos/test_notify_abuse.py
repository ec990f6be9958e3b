"""Abuse of the notify socket ($NOTIFY_SOCKET, which every worker and
anything it runs can reach). The agent must reject and count what is not a
worker's well-formed datagram, close every fd attached to one, stay live
under a flood, and keep hearing its workers.

Here: garbage from a worker, fds attached (by a stranger, with SCM_RIGHTS),
a flood of 20000 datagrams, and the flood's log cost (defect #6). A stranger's and an oversized or out-of-range
datagram are tests/blackbox/test_notify.py.
"""
import array
import os
import socket
import threading
import time
import unittest
import urllib.parse

from pylib import procfs
from pylib.http_client import http_get, request
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for


def metric(port, name):
    """The value of an unlabelled metric in the agent's /metrics."""
    body = request(port, "/metrics", timeout=5).body.decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{body[:2000]}")


class NotifyAbuse(TestCase):
    agent_pid1 = True

    def setUp(self):
        self.agent = self.start_agent(["--workers=1", "--http-port=auto",
                                       "--probe-address=127.0.0.1"])
        self.port = self.agent.port
        self.ready = self.agent.wait_ready(1)
        status, env = http_get(self.port, "/env")
        path = next(l.split("=", 1)[1] for l in env.splitlines()
                    if l.startswith("NOTIFY_SOCKET="))
        self.address = "\0" + path[1:] if path.startswith("@") else path

    def notify_via_worker(self, message):
        status, body = http_get(self.port, "/notify?msg=" + urllib.parse.quote(message))
        self.assertEqual(status, 200, body)

    def rejected(self):
        return metric(self.agent.http_port, "corral_notify_rejected_total")

    def assertStillHeard(self, text):
        """The worker's own STATUS= still gets through, and it is READY."""
        self.notify_via_worker(f"STATUS={text}")
        self.agent.wait_event("worker_status", status=text, timeout=10)
        self.assertEqual(self.agent.ready_workers(), self.ready)

    def test_garbage_from_a_worker_is_rejected_and_counted(self):
        garbage = ["no equals sign", "=1", "READY=1\nbroken", "EXTEND_TIMEOUT_USEC=-5",
                   "EXTEND_TIMEOUT_USEC=12abc", "STATUS=a\x00b", "\x00", "\n\n=\n"]
        before = self.rejected()
        for g in garbage:
            self.notify_via_worker(g)
        wait_for(lambda: self.rejected() - before >= len(garbage), 10,
                 lambda: f"{len(garbage)} rejections counted; {self.rejected() - before}")
        self.assertEqual(self.rejected() - before, len(garbage))
        self.assertEqual([e for e in self.agent.agent_events("worker_status")
                          if "broken" in e.get("status", "")], [])
        self.assertStillHeard("after the garbage")

    def test_attached_fds_are_closed(self):
        fds0 = procfs.fd_count(self.agent.host_pid)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        fds = array.array("i", [r, w, r])
        before = self.rejected()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for _ in range(1000):
                s.sendmsg([b"READY=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)],
                          0, self.address)
        wait_for(lambda: self.rejected() - before >= 1000, 20, "1000 rejections")
        fds1 = procfs.fd_count(self.agent.host_pid)
        note(f"3000 fds sent in 1000 datagrams: agent fds {fds0} -> {fds1}")
        slack = 4 if procfs.sanitized(self.agent.host_pid) else 0  # ASan's own fds
        self.assertLessEqual(fds1, fds0 + slack, "the agent kept fds it was sent")
        self.assertStillHeard("after the fds")

    def test_flood_is_counted_and_the_agent_stays_live(self):
        n = 20000
        before = self.rejected()
        cpu0 = procfs.cpu_seconds([self.agent.host_pid])
        worst = [0.0]
        done = threading.Event()

        def probe():
            while not done.is_set():
                t = time.monotonic()
                request(self.agent.http_port, "/livez", timeout=5)
                worst[0] = max(worst[0], time.monotonic() - t)
                done.wait(0.05)
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        t = time.monotonic()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for i in range(n):
                s.sendto(b"STATUS=flood %d" % i, self.address)
        wait_for(lambda: self.rejected() - before >= n, 60,
                 lambda: f"{n} rejections counted; {self.rejected() - before}")
        took = time.monotonic() - t
        done.set()
        prober.join(10)
        cpu = procfs.cpu_seconds([self.agent.host_pid]) - cpu0
        lines = len(self.agent.agent_events("notify_rejected"))
        note(f"{n} datagrams from a stranger in {took:.2f}s: all counted; agent CPU "
             f"{cpu:.2f}s; {lines} notify_rejected log lines; slowest /livez "
             f"{worst[0] * 1000:.0f} ms")
        self.assertLess(worst[0], 1.0, "/livez slower than 1 s under the flood")
        self.assertEqual(self.agent.agent_events("worker_status", status="flood 1"), [])
        self.assertStillHeard("after the flood")

    def test_flood_rejections_are_coalesced(self):
        n = 100000
        cpu0 = procfs.cpu_seconds([self.agent.host_pid])
        before = self.rejected()
        t = time.monotonic()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for i in range(n):
                s.sendto(b"STATUS=flood %d" % i, self.address)
        wait_for(lambda: self.rejected() - before >= n, 60, f"{n} rejections counted")
        took = time.monotonic() - t
        cpu = procfs.cpu_seconds([self.agent.host_pid]) - cpu0
        lines = self.agent.agent_events("notify_rejected")
        note(f"{n} datagrams in {took:.2f}s: agent CPU {cpu:.2f}s, {len(lines)} log lines")
        # Coalesced: about one line a second ("N datagrams rejected from pid
        # P in the last second"), not one per datagram.
        self.assertLessEqual(len(lines), took + 5, lines[:5])
        self.assertLess(cpu, 0.5 * took + 1, "the flood cost the agent a core")
        self.assertStillHeard("after the big flood")


if __name__ == "__main__":
    unittest.main()
