"""Sentinel failover: a master, a replica and three sentinels on loopback.

Workers find the master through REDIS_SENTINELS / REDIS_MASTER_NAME. The
master is SIGKILLed; the sentinels promote the replica; the workers
re-resolve and the same session continues on the new master with its
counter intact.
"""
import json
import time

import harness as h

SENTINEL_CONF = """\
sentinel monitor mymaster 127.0.0.1 {master} 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 4000
sentinel parallel-syncs mymaster 1
"""


def _sentinels_ready(sentinels, replica_port):
    for s in sentinels:
        try:
            peers = s.cmd("SENTINEL", "sentinels", "mymaster")
            replicas = s.cmd("SENTINEL", "replicas", "mymaster")
        except (OSError, RuntimeError):
            return False
        if len(peers) < 2 or not replicas:
            return False
        flat = [dict(zip(r[::2], r[1::2])) for r in replicas]
        if not any(r.get(b"port") == str(replica_port).encode() and
                   b"s_down" not in r.get(b"flags", b"") for r in flat):
            return False
    return True


def test_sessions_continue_after_failover():
    master = h.Redis()
    replica = h.Redis("--replicaof", "127.0.0.1", str(master.port))
    sentinels = [h.Redis(binary="redis-sentinel",
                         config=SENTINEL_CONF.format(master=master.port))
                 for _ in range(3)]
    try:
        h.wait_for(lambda: _sentinels_ready(sentinels, replica.port), 30,
                   "sentinels to find each other and the replica",
                   interval=0.2)
        env = {"REDIS_SENTINELS": ",".join("127.0.0.1:%d" % s.port
                                           for s in sentinels),
               "REDIS_MASTER_NAME": "mymaster"}
        sock = h.listening_socket()
        port = sock.getsockname()[1]
        workers = [h.start_worker(env, sock=sock, worker_id=str(i))
                   for i in range(2)]
        for w in workers:
            h.wait_for(lambda: "redis up at 127.0.0.1:%d" % master.port
                       in w.output(), 10, "worker to find the master")
        c = h.Client(port)
        for i in range(20):
            status, _, body = c.request("/session")
            assert status == 200 and json.loads(body)["counter"] == i + 1
        key = h.session_key(c.cookie)
        # Replication is asynchronous: let the replica catch up before the
        # crash, so this test is about failover, not about replication lag.
        h.wait_for(lambda: replica.cmd("HGET", key, "counter") == b"20", 5,
                   "replica to have the session")
        c.close()

        t_kill = time.monotonic()
        master.kill()
        statuses = []

        def continued():
            try:
                status, _, body = h.get(port, "/session", c.cookie, timeout=2)
            except OSError as e:
                statuses.append(repr(e))
                return None
            statuses.append(status)
            return json.loads(body) if status == 200 else None

        doc = h.wait_for(continued, 30, "a session answer after failover",
                         interval=0.1)
        took = time.monotonic() - t_kill
        print("  served again %.1fs after the master died; answers meanwhile:"
              " %s" % (took, sorted(set(map(str, statuses)))))
        assert doc["new"] is False and doc["counter"] == 21, doc
        addr = sentinels[0].cmd("SENTINEL", "get-master-addr-by-name",
                                "mymaster")
        assert addr[1] == str(replica.port).encode(), addr
        assert replica.cmd("HGET", key, "counter") == b"21"
        assert all(s in (200, 503) for s in statuses
                   if isinstance(s, int)), statuses
        # Each worker reconnects on its own (within its 500 ms backoff).
        for w in workers:
            h.wait_for(lambda: "redis up at 127.0.0.1:%d" % replica.port
                       in w.output(), 10, "worker to move to the new master")
        for i in range(5):  # every worker goes on with it
            status, _, body = h.get(port, "/session", c.cookie)
            assert status == 200, (status, body)
            assert json.loads(body)["counter"] == 22 + i, body
        assert all(w.alive() for w in workers)
    finally:
        for r in [master, replica] + sentinels:
            r.close()


if __name__ == "__main__":
    h.run([test_sessions_continue_after_failover])
