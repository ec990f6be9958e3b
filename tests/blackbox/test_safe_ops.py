"""Safe operations: --stop-signal for apps that close gracefully on another
signal than SIGTERM, and a READY worker that never accepts on its inherited
socket (connections wait: readiness goes off, and back on when it accepts)."""

import os
import signal
import socket
import threading
import unittest

from pylib.agent import AUTO
from pylib.http_client import http_get
from pylib.testcase import TestCase
from pylib.waiting import wait_for


class StopSignal(TestCase):
    def reload_during_request(self, stop_flags):
        """A worker that drains on SIGINT only holds a 2.5 s request while a
        reload replaces it; returns (the request's outcome, the old
        worker's worker_exited event, the agent)."""
        agent = self.start_agent(["--workers=1", *stop_flags],
                                 ["--graceful-signal=INT", "--log-requests"])
        port = agent.port
        old = agent.wait_ready(1)[0]
        outcome = {}

        def slow_request():
            try:
                outcome["reply"] = http_get(port, "/?sleep_ms=2500", timeout=15)
            except Exception as e:  # RequestFailed, OSError: lost
                outcome["error"] = repr(e)
        t = threading.Thread(target=slow_request, daemon=True)
        t.start()
        # In flight: the worker has read the request.
        wait_for(lambda: any("req /?sleep_ms=2500" in line.get("msg", "")
                             for line in agent.worker_lines(pid=old)),
                 10, "the slow request reached the worker")
        agent.signal(signal.SIGHUP)
        agent.wait_event("reload_finished", timeout=20)
        exited = agent.wait_event("worker_exited", pid=old, timeout=20)
        t.join(timeout=15)
        return outcome, exited, agent

    def test_sigint_stop_signal_keeps_the_in_flight_request(self):
        outcome, exited, agent = self.reload_during_request(["--stop-signal=SIGINT"])
        self.assertEqual(outcome.get("reply", (None,))[0], 200, outcome)
        self.assertEqual(exited.get("code"), 0, exited)
        stopping = agent.agent_events("worker_stopping")
        self.assertEqual({e["signal"] for e in stopping}, {"SIGINT"}, stopping)

    def test_default_sigterm_loses_it_with_such_an_app(self):
        # The control: without --stop-signal the same app exits at once on
        # SIGTERM and the request is lost (what the flag is for).
        outcome, exited, agent = self.reload_during_request([])
        self.assertNotIn("reply", outcome)
        self.assertEqual(exited.get("code"), 1, exited)
        self.assertEqual({e["signal"] for e in agent.agent_events("worker_stopping")},
                         {"SIGTERM"})

    def test_bad_stop_signal_is_refused(self):
        from pylib.agent import Agent
        agent = Agent(self, ["--stop-signal=SIGSTOP"], listen=())
        agent.start(wait_started=False)
        self.assertEqual(agent.wait_exit(10), 2)
        self.assertIn("--stop-signal", "".join(agent.stderr_lines))


class NeverAccepts(TestCase):
    """One worker (so the one socket is its own in every mode) that sends
    READY but accepts only once a file exists."""

    def check_mode(self, balance):
        go = os.path.join(self.temp_dir(), "accept-now")
        agent = self.start_agent(
            [f"--balance={balance}", "--workers=1", "--accept-stall=1s",
             f"--http-port={AUTO}", "--probe-address=127.0.0.1"],
            [f"--accept-when-exists={go}"])
        agent.wait_status_ready(1)
        http = agent.http_port
        self.assertEqual(http_get(http, "/readyz")[0], 200)
        clients = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", agent.port), timeout=5)
            self.addCleanup(s.close)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            clients.append(s)
        stalled = agent.wait_event("accept_stalled", timeout=15)
        self.assertIn("worker 0 (pid", stalled["msg"])
        self.assertIn("does the app listen on fd 3 (LISTEN_FDS)?", stalled["msg"])
        self.assertEqual(stalled["waiting"], 3)
        self.assertGreaterEqual(stalled["stalled_ms"], 1000)
        # Readiness off everywhere: /readyz, status, ps.
        wait_for(lambda: http_get(http, "/readyz")[0] == 503, 10, "/readyz 503")
        status = agent.status()
        self.assertFalse(status["ready"])
        self.assertEqual(status["ready_workers"], 0)
        self.assertTrue(status["workers"][0]["not_accepting"])
        code, out, err = agent.ctl("ps")
        self.assertIn("READY (not accepting)", out)
        self.assertIn("fd 3", out)
        # The app starts accepting: readiness comes back, the clients get
        # their answers.
        open(go, "w").close()
        agent.wait_event("accept_resumed", timeout=15)
        wait_for(lambda: http_get(http, "/readyz")[0] == 200, 10, "/readyz 200")
        self.assertTrue(agent.status()["ready"])
        for s in clients:
            self.assertIn(b"200", s.recv(64))

    def test_shared(self):
        self.check_mode("shared")

    def test_reuseport(self):
        self.check_mode("reuseport")

    def test_source_ip(self):
        self.check_mode("source-ip")

    def test_never_accepting_worker_stays_not_ready(self):
        agent = self.start_agent(["--workers=1", "--accept-stall=1s"],
                                 ["--never-accept"])
        agent.wait_status_ready(1)
        s = socket.create_connection(("127.0.0.1", agent.port), timeout=5)
        self.addCleanup(s.close)
        agent.wait_event("accept_stalled", timeout=15)
        wait_for(lambda: not agent.status()["ready"], 10, "not ready")
        self.assertEqual(agent.agent_events("accept_resumed"), [])


if __name__ == "__main__":
    unittest.main()
