"""corral-worker and the Node example under the real corral-agent.

Skipped (exit 77) while build/agent/corral-agent does not exist; the Node
case also needs `node` and an agent that offers --ready=ipc.
"""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import harness as h


def _agent(command, redis, workers=2, ready=None, env_extra=None):
    port = h.free_port()
    argv = [h.AGENT, "--workers=%d" % workers,
            "--listen=tcp://127.0.0.1:%d" % port, "--drain-delay=0s",
            "--stop-timeout=10s", "--log-format=json"]
    if ready:
        argv.append("--ready=" + ready)
    env = dict(os.environ, REDIS_URL="redis://127.0.0.1:%d/0" % redis.port)
    env.update(env_extra or {})
    log = tempfile.NamedTemporaryFile("w+", prefix="corral-agent-",
                                      suffix=".log", delete=False)
    proc = h.spawn(argv + ["--"] + command, env=env, stdout=log,
                   stderr=subprocess.STDOUT)
    return proc, port, log.name


def _events(log):
    out = []
    with open(log) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def _ready_count(log):
    return sum(1 for e in _events(log) if e.get("event") == "worker_ready")


def _sessions_across_workers(port, n=100):
    _, headers, _ = h.get(port, "/session")
    cookie = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        docs = list(pool.map(
            lambda _: json.loads(h.get(port, "/session", cookie)[2]),
            range(n - 1)))
    assert sorted(d["counter"] for d in docs) == list(range(2, n + 1))
    return docs


def test_corral_worker_under_the_agent():
    with h.Redis() as redis:
        proc, port, log = _agent([h.WORKER], redis)
        h.wait_for(lambda: _ready_count(log) == 2, 15, "2 workers READY")
        docs = _sessions_across_workers(port)
        print("  workers that served: %s" %
              sorted({d["worker"] for d in docs}))
        statuses = [e for e in _events(log) if e.get("event") ==
                    "worker_status"]
        assert any("redis up" in e.get("status", "") for e in statuses)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        exits = [e for e in _events(log) if e.get("event") == "worker_exited"]
        assert len(exits) == 2 and all(e.get("code") == 0 for e in exits), \
            exits


def test_agent_sigterm_drains_workers_under_keep_alive_load():
    import threading
    import time
    from test_sdk_contract import _busy_client
    with h.Redis() as redis:
        proc, port, log = _agent([h.WORKER], redis)
        h.wait_for(lambda: _ready_count(log) == 2, 15, "2 workers READY")
        results, stop = [], threading.Event()
        threads = [threading.Thread(target=_busy_client,
                                    args=(port, results, stop), daemon=True)
                   for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(20)
        assert proc.wait(20) == 0
        stop.set()
        broken = [r for r in results if r[0] not in ("ok", "closed-idle")]
        assert not broken, broken
        assert sum(1 for r in results if r[0] == "ok") > 6
        exits = [e for e in _events(log) if e.get("event") == "worker_exited"]
        assert all(e.get("code") == 0 for e in exits), exits


def test_node_example_under_the_agent_with_ready_ipc():
    node = shutil.which("node")
    helptext = subprocess.run([h.AGENT, "--help"], capture_output=True,
                              text=True).stdout
    if node is None or "ipc" not in helptext:
        print("  skipped: needs node and corral-agent --ready=ipc")
        return "skip"
    app = os.path.join(h.SOURCE_DIR, "examples", "node", "server.js")
    with h.Redis() as redis:
        proc, port, log = _agent([node, app], redis, ready="ipc")
        h.wait_for(lambda: _ready_count(log) == 2, 15, "2 node workers READY")
        status, _, body = h.get(port, "/")
        assert status == 200 and b"node" in body, body
        _sessions_across_workers(port, 50)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


if __name__ == "__main__":
    if not os.access(h.AGENT, os.X_OK):
        print("skipped: %s is not built yet" % h.AGENT)
        sys.exit(h.SKIP)
    h.run([test_corral_worker_under_the_agent,
           test_agent_sigterm_drains_workers_under_keep_alive_load,
           test_node_example_under_the_agent_with_ready_ipc])
