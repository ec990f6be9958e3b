"""Scenario 2: N workers share the agent's sockets, and each starts with
exactly what the contract promises: fds, environment, signal state, group."""

import os
import re
import unittest

from pylib.agent import LOOPBACK
from pylib.http_client import http_get, parse_identity
from pylib.procfs import socket_inodes
from pylib.testcase import TestCase
from pylib.waiting import wait_for


def per_worker(port, path, pids, timeout=20):
    """Asks `path` until every pid in `pids` has answered; {pid: body}."""
    seen = {}

    def all_seen():
        status, body = http_get(port, path)
        if status == 200:
            seen.setdefault(parse_identity(body)["pid"], body)
        return set(seen) >= set(pids)
    wait_for(all_seen, timeout, f"{path} answered by each of {sorted(pids)} (seen {sorted(seen)})",
             interval=0)
    return seen


def fd_table(body):
    """{fd: target} from a /fds answer."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^fd (\d+) -> (.*)$", body, re.M)}


def key_values(body, sep):
    out = {}
    for line in body.splitlines()[1:]:
        if sep in line:
            k, v = line.split(sep, 1)
            out[k.strip()] = v.strip()
    return out


class SharedSocket(TestCase):
    balance = []  # the default: reuseport
    agent_pid1 = True

    def setUp(self):
        self.unix_path = os.path.join(self.temp_dir(), "admin.sock")
        self.agent = self.start_agent(["--workers=3", *self.balance], listen=[
            f"web={LOOPBACK}", f"admin=unix:{self.unix_path}"],
            env={"NODE_APP_INSTANCE": "stale"})
        self.port = self.agent.port
        self.assertEqual(self.agent.listen[1], f"unix:{self.unix_path}")
        self.ready = self.agent.wait_ready(3)
        self.pids = set(self.ready.values())

    def test_requests_reach_every_worker_on_both_sockets(self):
        self.assertEqual(sorted(self.ready), [0, 1, 2])
        per_worker(self.port, "/", self.pids)
        # The unix socket is served too, by the same workers.
        status, body = http_get(None, "/", unix_path=self.unix_path)
        self.assertEqual(status, 200)
        self.assertIn(parse_identity(body)["pid"], self.pids)

    def test_only_stdio_and_the_shared_sockets_are_inherited(self):
        tables = {pid: fd_table(body) for pid, body in per_worker(self.port, "/fds", self.pids).items()}
        agent_sockets = socket_inodes(self.agent.host_pid)
        listen_inodes = []
        for pid, fds in tables.items():
            self.assertEqual(sorted(fds), [0, 1, 2, 3, 4], f"worker {pid} fds: {fds}")
            self.assertTrue(fds[1].startswith("pipe:"), fds)
            self.assertTrue(fds[2].startswith("pipe:"), fds)
            self.assertTrue(fds[3].startswith("socket:"), fds)
            self.assertTrue(fds[4].startswith("socket:"), fds)
            listen_inodes.append((fds[3], fds[4]))
            for fd in (3, 4):
                # The agent keeps its own copy open: one socket, opened once.
                self.assertIn(int(fds[fd][8:-1]), agent_sockets, f"fd {fd} of {pid}")
        # The unix socket is one, shared. The tcp one: shared under
        # --balance=shared, else one per worker slot (docs/balance.md).
        self.assertEqual(len({unix for _, unix in listen_inodes}), 1, listen_inodes)
        self.assertEqual(len({tcp for tcp, _ in listen_inodes}),
                         1 if self.balance == ["--balance=shared"] else 3, listen_inodes)

    def test_environment(self):
        ids = set()
        for pid, body in per_worker(self.port, "/env", self.pids).items():
            env = key_values(body, "=")
            self.assertEqual(env.get("LISTEN_PID"), str(pid), body)
            self.assertEqual(env.get("LISTEN_FDS"), "2", body)
            self.assertEqual(env.get("LISTEN_FDNAMES"), "web:admin", body)
            self.assertTrue(env.get("NOTIFY_SOCKET"), body)
            self.assertEqual(env.get("CORRAL_WORKER_GENERATION"), "1", body)
            self.assertNotIn("WATCHDOG_USEC", env, "no --watchdog given")
            self.assertEqual(self.ready[int(env["CORRAL_WORKER_ID"])], pid)
            # PM2's name for the slot, the same value (the agent's own
            # environment has a stale one: it is replaced, not inherited).
            self.assertEqual(env.get("NODE_APP_INSTANCE"), env["CORRAL_WORKER_ID"], body)
            ids.add(env["CORRAL_WORKER_ID"])
        self.assertEqual(ids, {"0", "1", "2"})

    def test_signal_state_and_process_group(self):
        for pid, body in per_worker(self.port, "/sigstate", self.pids).items():
            state = key_values(body, ":")
            # As exec'd, before the worker touched anything.
            self.assertEqual(int(state["startup.SigBlk"], 16), 0, body)
            self.assertEqual(int(state["startup.SigIgn"], 16), 0, body)
            self.assertEqual(int(state["pgid"]), pid, "each worker leads its own group")
            self.assertEqual(int(state["ppid"]), 1, "the agent is PID 1 and the parent")


class SharedSocketsUnderBalanceShared(SharedSocket):
    """The same contract with one socket for every worker."""
    balance = ["--balance=shared"]


if __name__ == "__main__":
    unittest.main()
