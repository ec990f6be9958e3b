"""The quick start, scripts/run.sh, as a user runs it from a terminal: it
prints the agent's pid and the control socket, extra arguments override its
own flags, and a terminal Ctrl-C (SIGINT to the whole foreground group)
drains once and stops the Redis it started after the agent."""

import os
import re
import signal
import subprocess

from pylib import paths
from pylib.http_client import http_get
from pylib.processes import spawn, stop
from pylib.testcase import TestCase
from pylib.waiting import wait_for


class RunScript(TestCase):
    def start(self, *args):
        build = os.path.dirname(os.path.dirname(paths.binary("CORRAL_AGENT")))
        out = os.path.join(self.temp_dir(), "run.out")
        env = dict(os.environ, BUILD_DIR=build, CORRAL_RUN_NO_BUILD="1")
        env.pop("REDIS_URL", None)
        with open(out, "w") as f:
            proc = spawn([os.path.join(paths.REPO, "scripts/run.sh"), *args],
                         stdout=f, stderr=subprocess.STDOUT, env=env)
        self.addCleanup(stop, proc, signal.SIGKILL, 10, True)
        return proc, out

    def test_prints_where_to_reach_it_and_ctrl_c_drains_once(self):
        proc, out = self.start("--listen=http=tcp://127.0.0.1:0", "--drain-delay=1500ms",
                               "--workers=2")
        text = lambda: open(out).read()
        wait_for(lambda: re.search(r"on tcp://127\.0\.0\.1:(\d+)", text()), 60,
                 lambda: "the agent to start; output: " + text()[-2000:])
        port = int(re.search(r"on tcp://127\.0\.0\.1:(\d+)", text()).group(1))
        wait_for(lambda: text().count("worker_ready") >= 2, 30,
                 lambda: "two workers READY; output: " + text()[-2000:])
        self.assertEqual(http_get(port, "/", timeout=5)[0], 200)

        agent_pid = int(re.search(r"corral: agent pid (\d+)", text()).group(1))
        socket = re.search(r"export CORRAL_SOCKET=(\S+)", text()).group(1)
        redis_pid = int(re.search(r"redis-server on \S+ \(pid (\d+)\)", text()).group(1))
        status = subprocess.run([paths.binary("CORRALCTL"), "status"], capture_output=True,
                                text=True, timeout=20, env=dict(os.environ, CORRAL_SOCKET=socket))
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn(f"pid {agent_pid}", status.stdout)
        # The user's --drain-delay replaced the script's 1s without a CLI
        # error (the drain below says 1500 ms).
        self.assertNotIn("At Most", text())

        os.killpg(proc.pid, signal.SIGINT)  # what a terminal Ctrl-C does
        self.assertEqual(proc.wait(30), 0, text()[-3000:])
        log = text()
        self.assertEqual(log.count("shutdown_started"), 1, log[-3000:])
        self.assertIn("draining for 1500 ms", log)
        self.assertNotIn("shutdown_hurried", log)
        # Redis outlived the drain: no worker lost it while draining.
        self.assertNotRegex(log, r"redis (down|lost)")
        for pid in (agent_pid, redis_pid):
            self.assertFalse(os.path.exists(f"/proc/{pid}"), f"pid {pid} still running")
        self.assertFalse(os.path.exists(os.path.dirname(socket)), "the script's temp dir is left")

    def test_a_user_command_replaces_the_reference_worker(self):
        worker = paths.binary("CORRAL_TEST_WORKER")
        proc, out = self.start("--listen=http=tcp://127.0.0.1:0", "--", worker)
        text = lambda: open(out).read()
        wait_for(lambda: "worker_ready" in text(), 60,
                 lambda: "the worker READY; output: " + text()[-2000:])
        self.assertIn(f"of '{worker}'", text())
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30), 0, text()[-3000:])


if __name__ == "__main__":
    import unittest
    unittest.main()
