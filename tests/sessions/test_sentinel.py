"""Sentinel failover: a master, a replica and three sentinels on loopback.

Workers find the master through REDIS_SENTINELS / REDIS_MASTER_NAME. The
master is SIGKILLed; the sentinels promote the replica; the workers
re-resolve and the same session continues on the new master with its
counter intact.
"""
import hashlib
import json
import time
import unittest

from pylib.http_client import Client, get
from pylib.redis import Redis
from pylib.testcase import TestCase, note
from pylib.waiting import wait_for
from pylib.workers import listening_socket, start_worker

SENTINEL_CONF = """\
sentinel monitor mymaster 127.0.0.1 {master} 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 4000
sentinel parallel-syncs mymaster 1
"""


def session_key(sid):
    return "corral:sess:" + hashlib.sha256(sid.encode()).hexdigest()


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


class Sentinel(TestCase):

    def redis(self, *args, **kw):
        r = Redis(*args, **kw)
        self.addCleanup(r.close)
        return r

    def test_sessions_continue_after_failover(self):
        master = self.redis()
        replica = self.redis("--replicaof", "127.0.0.1", str(master.port))
        sentinels = [self.redis(binary="redis-sentinel",
                                config=SENTINEL_CONF.format(master=master.port))
                     for _ in range(3)]
        wait_for(lambda: _sentinels_ready(sentinels, replica.port), 30,
                 "sentinels to find each other and the replica", interval=0.2)
        env = {"REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in sentinels),
               "REDIS_MASTER_NAME": "mymaster"}
        sock = listening_socket(self)
        port = sock.getsockname()[1]
        workers = [start_worker(self, env, sock=sock, worker_id=str(i)) for i in range(2)]
        for w in workers:
            wait_for(lambda: f"redis up at 127.0.0.1:{master.port}" in w.output(), 10,
                     "worker to find the master")
        c = Client(port)
        for i in range(20):
            status, _, body = c.request("/session")
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["counter"], i + 1)
        key = session_key(c.cookie)
        # Replication is asynchronous: let the replica catch up before the
        # crash, so this test is about failover, not about replication lag.
        wait_for(lambda: replica.cmd("HGET", key, "counter") == b"20", 5,
                 "replica to have the session")
        c.close()

        t_kill = time.monotonic()
        master.kill()
        statuses = []

        def continued():
            try:
                status, _, body = get(port, "/session", c.cookie, timeout=2)
            except OSError as e:
                statuses.append(repr(e))
                return None
            statuses.append(status)
            return json.loads(body) if status == 200 else None

        doc = wait_for(continued, 30, "a session answer after failover", interval=0.1)
        took = time.monotonic() - t_kill
        note(f"served again {took:.1f}s after the master died; answers meanwhile: "
             f"{sorted(set(map(str, statuses)))}")
        self.assertIs(doc["new"], False, doc)
        self.assertEqual(doc["counter"], 21, doc)
        addr = sentinels[0].cmd("SENTINEL", "get-master-addr-by-name", "mymaster")
        self.assertEqual(addr[1], str(replica.port).encode(), addr)
        self.assertEqual(replica.cmd("HGET", key, "counter"), b"21")
        self.assertTrue(all(s in (200, 503) for s in statuses if isinstance(s, int)), statuses)
        # Each worker reconnects on its own (within its 500 ms backoff).
        for w in workers:
            wait_for(lambda: f"redis up at 127.0.0.1:{replica.port}" in w.output(), 10,
                     "worker to move to the new master")
        for i in range(5):  # every worker goes on with it
            status, _, body = get(port, "/session", c.cookie)
            self.assertEqual(status, 200, (status, body))
            self.assertEqual(json.loads(body)["counter"], 22 + i, body)
        self.assertTrue(all(w.alive() for w in workers))


if __name__ == "__main__":
    unittest.main()
