"""corral-worker and the Node example under the real corral-agent.

Skipped while the agent is not built (CORRAL_AGENT); the Node case also needs
`node` and an agent that offers --ready=ipc.
"""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import unittest

from pylib import paths
from pylib.agent import LOOPBACK, Agent
from pylib.http_client import EOF_IDLE, OK, get
from pylib.load import LoadGenerator
from pylib.redis import Redis
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for

AGENT = paths.binary("CORRAL_AGENT")


class UnderTheAgent(TestCase):

    def setUp(self):
        if paths.missing(AGENT):
            self.skipTest(f"corral-agent is not built ({AGENT})")
        self.redis = Redis()
        self.addCleanup(self.redis.close)

    def start(self, command, ready=None):
        """The agent with 2 workers of `command` on a loopback port."""
        args = ["--workers=2", "--drain-delay=0s", "--stop-timeout=10s"]
        if ready:
            args.append(f"--ready={ready}")
        return Agent(self, args, command=command, listen=[LOOPBACK],
                     env={"REDIS_URL": self.redis.url}).start()

    def sessions_across_workers(self, port, n=100):
        _, headers, _ = get(port, "/session")
        cookie = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            docs = list(pool.map(lambda _: json.loads(get(port, "/session", cookie)[2]),
                                 range(n - 1)))
        self.assertEqual(sorted(d["counter"] for d in docs), list(range(2, n + 1)))
        return docs

    def test_corral_worker_under_the_agent(self):
        agent = self.start([paths.binary("CORRAL_WORKER")])
        agent.wait_ready(2, 15)
        docs = self.sessions_across_workers(agent.port)
        note(f"workers that served: {sorted({d['worker'] for d in docs})}")
        agent.wait_until(lambda: [e for e in agent.agent_events("worker_status")
                                  if "redis up" in e.get("status", "")],
                         5, "a worker_status saying redis up")
        self.assertEqual(agent.stop(20), 0)
        exits = agent.agent_events("worker_exited")
        self.assertEqual(len(exits), 2, exits)
        self.assertTrue(all(e.get("code") == 0 for e in exits), exits)

    def test_agent_sigterm_drains_workers_under_keep_alive_load(self):
        agent = self.start([paths.binary("CORRAL_WORKER")])
        agent.wait_ready(2, 15)
        # Six clients sending /heavy back to back on one keep-alive connection
        # each, until the server ends it.
        load = self.start_load(agent.port, threads=6, paths=lambda t, i: "/heavy?n=3000000",
                             pace=0, one_connection=True, timeout=10)
        wait_for(lambda: min(load.count_ok_by_thread().values()) >= 2, 15,
                 lambda: f"2 answers on each busy connection: {load.count_ok_by_thread()}")
        agent.signal(signal.SIGTERM)
        self.assertTrue(load.join(20), "busy clients still running 20 s after SIGTERM")
        self.assertEqual(agent.wait_exit(20), 0)
        results = load.stop()
        note(LoadGenerator.summary(results))
        broken = [r for r in results if r.kind not in (OK, EOF_IDLE)]
        self.assertEqual(broken, [])
        self.assertGreater(sum(1 for r in results if r.kind == OK), 6)
        exits = agent.agent_events("worker_exited")
        self.assertTrue(all(e.get("code") == 0 for e in exits), exits)

    def test_node_example_under_the_agent_with_ready_ipc(self):
        node = shutil.which("node")
        if node is None:
            self.skipTest("node is not installed")
        if not os.path.isdir(paths.source("examples", "node", "node_modules")):
            self.skipTest("examples/node/node_modules is missing: run worker/node/setup.sh")
        helptext = subprocess.run([AGENT, "--help"], capture_output=True, text=True).stdout
        if "ipc" not in helptext:
            self.skipTest("this corral-agent has no --ready=ipc")
        agent = self.start([node, paths.source("examples", "node", "server.js")], ready="ipc")
        agent.wait_ready(2, 15)
        status, _, body = get(agent.port, "/")
        self.assertEqual(status, 200, body)
        self.assertIn(b"node", body)
        self.sessions_across_workers(agent.port, 50)
        self.assertEqual(agent.stop(20), 0)


if __name__ == "__main__":
    unittest.main()
