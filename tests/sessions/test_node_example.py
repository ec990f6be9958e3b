"""examples/node/server.js (Express on @corral/node) with real node:
- alone with the agent's fd 3 (LISTEN_FDS/LISTEN_PID) and a Node IPC
  channel (NODE_CHANNEL_FD, JSON lines: "ready" as process.send writes it),
  sharing sessions with corral-worker through Redis (signed corral_sid
  cookies, SESSION_SECRET on both), 503 while Redis is down, drain on SIGTERM;
- alone on $PORT;
- under the real agent (--ready=ipc): 5 rolling reloads under keep-alive
  load with no failed request.
Needs worker/node/setup.sh (npm ci; ctest runs it as node.setup)."""
import json
import os
import shutil
import signal
import socket
import unittest

from pylib import paths
from pylib.agent import agent_env
from pylib.http_client import Client, get, wait_http
from pylib.redis import Redis
from pylib.testcase import TestCase
from pylib.waiting import wait_for
from pylib.workers import ClosedPort, listening_socket, start_worker

APP = paths.source("examples", "node", "server.js")
MODULES = paths.source("examples", "node", "node_modules")
SECRET = "test secret shared by the Node and C++ workers"


@unittest.skipUnless(shutil.which("node"), "node is not installed")
@unittest.skipUnless(os.path.isdir(MODULES), "examples/node/node_modules is missing: "
                     "run worker/node/setup.sh")
class NodeExample(TestCase):

    def test_node_and_cpp_workers_share_sessions(self):
        with Redis() as redis:
            env = {"REDIS_URL": redis.url, "SESSION_SECRET": SECRET}
            sock = listening_socket(self)
            port = sock.getsockname()[1]
            parent, child = socket.socketpair()
            self.addCleanup(parent.close)
            node = start_worker(self, env, sock=sock, command=["node", APP],
                                extra_env={"NODE_CHANNEL_FD": str(child.fileno()),
                                           "NODE_CHANNEL_SERIALIZATION_MODE": "json"},
                                pass_fds=(child.fileno(),))
            child.close()
            parent.settimeout(10)
            lines = parent.makefile("rb")
            self.assertEqual(json.loads(lines.readline()), "ready")
            wait_for(lambda: "redis up" in node.output(), 5, "node reaches redis")
            self.assertIn(b"node worker", get(port, "/")[2])
            cpp = start_worker(self, env, worker_id="cpp")
            cpp_port = cpp.own_port()
            wait_http(cpp_port, contains=b'"redis":"up"')
            c_node, c_cpp = Client(port), Client(cpp_port)
            for i in range(10):
                status, _, body = c_node.request("/session")
                self.assertEqual(status, 200, body)
                self.assertEqual(json.loads(body)["counter"], 2 * i + 1)
                self.assertTrue(c_node.cookie.startswith("s%3A"), c_node.cookie)
                c_cpp.cookie = c_node.cookie
                status, _, body = c_cpp.request("/session")
                doc = json.loads(body)
                self.assertEqual(doc["counter"], 2 * i + 2, doc)
                self.assertFalse(doc["new"], doc)
            c_node.close()
            c_cpp.close()
            redis.kill()
            status, _, body = get(port, "/session", c_node.cookie)
            self.assertEqual(status, 503, body)
            self.assertIn(b"session store unavailable", body)
            self.assertEqual(get(port, "/")[0], 200)
            redis.start()
            wait_for(lambda: get(port, "/session", c_node.cookie)[0] == 200, 2,
                     "node to reconnect")
            self.assertEqual(node.stop(), 0)

    def test_node_alone_on_port(self):
        # Redis "down": a port that refuses connections, held by the test.
        w = start_worker(self, {"REDIS_URL": f"redis://127.0.0.1:{ClosedPort(self).port}"},
                         command=["node", APP])
        port = w.own_port()
        wait_http(port)
        self.assertEqual(get(port, "/session")[0], 503)
        self.assertEqual(get(port, "/nope")[0], 404)
        self.assertEqual(get(port, "/heavy?n=1000")[0], 200)
        self.assertEqual(get(port, "/heavy?n=-1")[0], 400)
        self.assertEqual(w.stop(signal.SIGTERM), 0)

    def test_rolling_reloads_under_keep_alive_load_fail_nothing(self):
        with Redis() as redis:
            agent = self.start_agent(
                ["--workers=2", "--ready=ipc", "--drain-delay=0s"], command=["node", APP],
                env=agent_env({"REDIS_URL": redis.url, "SESSION_SECRET": SECRET}))
            agent.wait_ready(2, 20)
            load = self.start_load(agent.port, threads=8, keep_alive=True, pace=0,
                                   paths=lambda t, i: "/session" if i % 5 == 0 else "/")
            load.wait_ok(100)
            for k in range(1, 6):
                agent.signal(signal.SIGHUP)
                agent.wait_event("reload_finished", count=k, timeout=30)
                # The old workers drain (idle window 1 s) and exit 0.
                wait_for(lambda: len(agent.agent_events("worker_exited")) >= 2 * k, 15,
                         f"the old workers of reload {k} to exit")
            load.wait_ok(100)
            results = load.stop()
            self.assertNoFailedRequests(results)
            exits = agent.agent_events("worker_exited")
            self.assertTrue(all(e.get("code") == 0 for e in exits), exits)
            self.assertEqual(agent.stop(20), 0)


if __name__ == "__main__":
    unittest.main()
