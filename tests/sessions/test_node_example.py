"""examples/node/server.js with real node, without the agent: it takes the
inherited socket (fd 3, LISTEN_FDS/LISTEN_PID), signals readiness on its
Node IPC channel (NODE_CHANNEL_FD, JSON lines: "ready" as process.send
writes it), shares sessions with corral-worker through Redis, answers 503
while Redis is down, and drains on SIGTERM."""
import json
import os
import shutil
import signal
import socket
import sys

import harness as h

APP = os.path.join(h.SOURCE_DIR, "examples", "node", "server.js")


def test_node_and_cpp_workers_share_sessions():
    with h.Redis() as redis:
        env = {"REDIS_URL": "redis://127.0.0.1:%d/0" % redis.port}
        sock = h.listening_socket()
        port = sock.getsockname()[1]
        parent, child = socket.socketpair()
        node = h.start_worker(env, sock=sock, command=["node", APP],
                              extra_env={
                                  "NODE_CHANNEL_FD": str(child.fileno()),
                                  "NODE_CHANNEL_SERIALIZATION_MODE": "json"},
                              pass_fds=(child.fileno(),))
        child.close()
        parent.settimeout(10)
        line = parent.makefile("rb").readline()
        assert json.loads(line) == "ready", line
        h.wait_for(lambda: "redis up" in node.output(), 5, "node reaches redis")
        assert b"node worker" in h.get(port, "/")[2]
        cpp_port = h.free_port()
        h.start_worker(env, port=cpp_port, worker_id="cpp")
        h.wait_redis_up(cpp_port)
        c_node, c_cpp = h.Client(port), h.Client(cpp_port)
        for i in range(10):
            status, _, body = c_node.request("/session")
            assert status == 200 and json.loads(body)["counter"] == 2 * i + 1
            c_cpp.cookie = c_node.cookie
            status, _, body = c_cpp.request("/session")
            doc = json.loads(body)
            assert doc["counter"] == 2 * i + 2 and not doc["new"], doc
        c_node.close()
        c_cpp.close()
        redis.kill()
        status, _, body = h.get(port, "/session", c_node.cookie)
        assert status == 503 and b"session store unavailable" in body, body
        assert h.get(port, "/")[0] == 200
        redis.start()
        h.wait_for(lambda: h.get(port, "/session", c_node.cookie)[0] == 200,
                   2, "node to reconnect")
        assert h.stop_worker(node) == 0


def test_node_alone_on_port():
    port = h.free_port()
    w = h.start_worker({"REDIS_URL": "redis://127.0.0.1:%d" % h.free_port()},
                       port=port, command=["node", APP])
    h.wait_http(port)
    assert h.get(port, "/session")[0] == 503
    assert h.get(port, "/nope")[0] == 404
    assert h.stop_worker(w, signal.SIGTERM) == 0


if __name__ == "__main__":
    if shutil.which("node") is None:
        print("skipped: node is not installed")
        sys.exit(h.SKIP)
    h.run([test_node_and_cpp_workers_share_sessions, test_node_alone_on_port])
