"""The NOTIFY_SOCKET side of the contract: STATUS= reaches worker_status;
a datagram from a process that is no worker is rejected and changes nothing;
an oversized one, or one with an out-of-range EXTEND_TIMEOUT_USEC, is dropped
and reported."""

import os
import socket
import unittest
import urllib.parse

from pylib.http_client import http_get, parse_identity
from pylib.testcase import TestCase


class Notify(TestCase):
    agent_pid1 = True

    def setUp(self):
        self.agent = self.start_agent(["--workers=1"])
        self.port = self.agent.port
        self.ready = self.agent.wait_ready(1)

    def notify_via_worker(self, message, pad=0):
        status, body = http_get(self.port, f"/notify?pad={pad}&msg=" + urllib.parse.quote(message))
        self.assertEqual(status, 200, body)

    def test_status_reaches_the_event_log(self):
        self.notify_via_worker("STATUS=warming caches: 42%")
        e = self.agent.wait_event("worker_status", status="warming caches: 42%")
        self.assertEqual((e["worker"], e["pid"]), (0, self.ready[0]))

    def send_as_stranger(self, agent, port, *messages):
        status, env = http_get(port, "/env")
        path = next(l.split("=", 1)[1] for l in env.splitlines() if l.startswith("NOTIFY_SOCKET="))
        address = "\0" + path[1:] if path.startswith("@") else path
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for m in messages:
                s.sendto(m, address)

    def test_message_from_a_stranger_is_rejected(self):
        # The test is outside the agent's pid namespace: its pid shows as 0.
        self.send_as_stranger(self.agent, self.port, b"STATUS=forged by the test", b"STOPPING=1")
        self.agent.wait_event("notify_rejected", count=2)
        self.assertEqual(self.agent.agent_events("worker_status", status="forged by the test"), [])
        self.assertEqual(self.agent.ready_workers(), self.ready)
        self.assertEqual(parse_identity(http_get(self.port, "/")[1])["pid"], self.ready[0])

    def test_message_from_a_visible_stranger_is_rejected(self):
        # Not PID 1: the agent sees the test's real pid, which is no worker.
        agent = self.start_agent(["--workers=1"], pid1=False)
        port = agent.port
        ready = agent.wait_ready(1)
        self.send_as_stranger(agent, port, b"STOPPING=1")
        rejected = agent.wait_event("notify_rejected")
        self.assertEqual(rejected.get("pid"), os.getpid(), rejected)
        self.assertEqual(agent.ready_workers(), ready)

    def test_oversized_message_is_dropped(self):
        self.notify_via_worker("STATUS=", pad=64 * 1024)  # 64 KiB of 'x' after it
        rejected = self.agent.wait_event("notify_rejected")
        self.assertEqual(rejected.get("pid"), self.ready[0], rejected)
        self.assertEqual([e for e in self.agent.agent_events("worker_status")
                          if len(e.get("status", "")) > 1000], [])
        # The worker is still fine and can still talk.
        self.notify_via_worker("STATUS=after the big one")
        self.agent.wait_event("worker_status", status="after the big one")

    def test_extend_timeout_out_of_range_is_rejected(self):
        # INT64_MAX microseconds overflowed int64 nanoseconds (UBSan: signed
        # overflow; the agent dies in a sanitized build), the largest uint64
        # wrapped to -1 and was silently ignored. Both are refused by name.
        for value in ("9223372036854775807", "18446744073709551615"):
            mark = self.agent.log.mark()
            self.notify_via_worker(f"EXTEND_TIMEOUT_USEC={value}")
            rejected = self.agent.wait_event("notify_rejected", after=mark)
            self.assertEqual(rejected.get("pid"), self.ready[0], rejected)
            self.assertIn(f"EXTEND_TIMEOUT_USEC={value} is over the limit of "
                          "86400000000 us (24h)", rejected.get("reason"))
        self.notify_via_worker("STATUS=still here")
        self.agent.wait_event("worker_status", status="still here")
        self.assertEqual(self.agent.ready_workers(), self.ready)

if __name__ == "__main__":
    unittest.main()
