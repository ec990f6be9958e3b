"""examples/node/server.js with real node, without the agent: it takes the
inherited socket (fd 3, LISTEN_FDS/LISTEN_PID), signals readiness on its
Node IPC channel (NODE_CHANNEL_FD, JSON lines: "ready" as process.send
writes it), shares sessions with corral-worker through Redis, answers 503
while Redis is down, and drains on SIGTERM."""
import json
import shutil
import signal
import socket
import unittest

from pylib import paths
from pylib.http_client import Client, get, wait_http
from pylib.redis import Redis
from pylib.testcase import TestCase
from pylib.waiting import wait_for
from pylib.workers import ClosedPort, listening_socket, start_worker

APP = paths.source("examples", "node", "server.js")


@unittest.skipUnless(shutil.which("node"), "node is not installed")
class NodeExample(TestCase):

    def test_node_and_cpp_workers_share_sessions(self):
        with Redis() as redis:
            env = {"REDIS_URL": redis.url}
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
            line = parent.makefile("rb").readline()
            self.assertEqual(json.loads(line), "ready", line)
            wait_for(lambda: "redis up" in node.output(), 5, "node reaches redis")
            self.assertIn(b"node worker", get(port, "/")[2])
            cpp = start_worker(self, env, worker_id="cpp")
            cpp_port = cpp.own_port()
            wait_http(cpp_port, contains=b'"redis":"up"')
            c_node, c_cpp = Client(port), Client(cpp_port)
            for i in range(10):
                status, _, body = c_node.request("/session")
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body)["counter"], 2 * i + 1)
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
        self.assertEqual(w.stop(signal.SIGTERM), 0)


if __name__ == "__main__":
    unittest.main()
