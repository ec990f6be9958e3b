"""--balance=round-robin: an eBPF program hands new connections to the READY
slots in turn, so the spread is exact, not a coin toss.

32 keep-alive connections over 2 workers split exactly 16/16; the default
(auto) picks round-robin when the kernel loads the program and says so; a
reload and a scale 2 -> 1 -> 2 under keep-alive load fail no request, and
while scaled down no new connection reaches the scaled-away slot; without
the privilege, --balance=round-robin fails the start naming the capability
and auto falls back to reuseport, saying why.

The tests that need the program skip, with the kernel's reason, when this
process may not load eBPF (no CAP_BPF / CAP_SYS_ADMIN). Loopback only, real
processes, every wait bounded.
"""
import collections
import re
import socket
import subprocess
import unittest

from pylib.agent import Agent
from pylib.http_client import Connection, get_once, parse_identity
from pylib.testcase import TestCase, note

# Runs the agent as nobody: no capability, so no eBPF (Debian's
# kernel.unprivileged_bpf_disabled=2, and 1 elsewhere).
AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
WITH_CAP_BPF = ("--inh-caps=+bpf", "--ambient-caps=+bpf")


def worker_of(body):
    """The worker id in an answer of the test worker or of corral-worker."""
    identity = parse_identity(body)
    if identity:
        return identity["worker"]
    m = re.search(r"hello from corral-worker (\S+)", body)
    return m.group(1) if m else None


def worker_over_ipv6(port):
    """One request on a new connection to [::1]:port; the worker id."""
    return worker_of(get_once(port, host="::1"))


class RoundRobin(TestCase):
    agent_pid1 = True

    def start_round_robin(self, args, **kw):
        """An agent with --balance=round-robin; skips the test when the
        kernel refuses the program to this process."""
        agent = Agent(self, ["--balance=round-robin", *args], pid1=True,
                      listen=kw.pop("listen", ("tcp://127.0.0.1:0",)), **kw)
        agent.start(wait_started=False)
        started = agent.log.wait_until(
            lambda: agent.log.agent_events("agent_started") or agent.proc.poll() is not None,
            10, "agent_started")
        if started is True:
            tail = agent.tail()
            if "CAP_BPF" in tail:
                self.skipTest(f"the kernel refuses eBPF here: {tail.splitlines()[-1]}")
            self.fail(f"the agent exited before agent_started:\n{tail}")
        agent.wait_started()
        mode = agent.agent_events("balance_mode")
        self.assertEqual([(e["mode"], e["requested"]) for e in mode],
                         [("round-robin", "round-robin")], mode)
        return agent

    def spread(self, port, n):
        """Opens n keep-alive connections one after another; answers per
        worker id."""
        by_worker = collections.Counter()
        for _ in range(n):
            c = Connection(port)
            self.addCleanup(c.close)
            r = c.request("GET", "/")
            self.assertEqual(r.status, 200)
            by_worker[worker_of(r.body.decode())] += 1
        return by_worker

    def start_two_corral_workers(self):
        """Round-robin over 2 corral-workers (no Redis), both READY and
        steered to."""
        command, env = self.corral_worker_without_redis()
        agent = self.start_round_robin(["--workers=2", "--drain-delay=0s", "--stop-timeout=10s"],
                                       command=command, env=env)
        agent.wait_ready(2, 20)
        agent.wait_steered("0,1")
        return agent

    def test_32_keep_alive_connections_split_exactly_16_16(self):
        agent = self.start_round_robin(["--workers=2"])
        agent.wait_ready(2)
        agent.wait_steered("0,1")
        by_worker = self.spread(agent.port, 32)
        note(f"round-robin: 32 keep-alive connections per worker {dict(by_worker)}")
        # In turn, wherever the counter stood: exact, not a coin toss
        # (reuseport measured 12/20 .. 16/16).
        self.assertEqual(by_worker, {"0": 16, "1": 16})

    def test_three_workers_take_turns_over_ipv6_too(self):
        try:
            socket.socket(socket.AF_INET6).bind(("::1", 0))
        except OSError as e:
            self.skipTest(f"no IPv6 loopback: {e}")
        agent = self.start_round_robin(["--workers=3"], listen=("tcp://[::1]:0",))
        agent.wait_ready(3)
        agent.wait_steered("0,1,2")
        by_worker = collections.Counter()
        for _ in range(30):
            by_worker[worker_over_ipv6(agent.port)] += 1
        note(f"round-robin over IPv6: 30 connections per worker {dict(by_worker)}")
        self.assertEqual(by_worker, {"0": 10, "1": 10, "2": 10})

    def test_auto_default_picks_round_robin_and_says_why(self):
        agent = self.start_agent(["--workers=2"])
        mode = agent.wait_event("balance_mode")
        note(f"default: {mode['msg']}")
        if mode["mode"] != "round-robin":
            self.assertIn("CAP_BPF", mode["reason"])
            self.skipTest(f"the kernel refuses eBPF here: {mode['reason']}")
        self.assertEqual(mode["requested"], "auto")
        self.assertIn("eBPF", mode["reason"])
        agent.wait_ready(2)
        agent.wait_steered("0,1")
        self.assertEqual(self.spread(agent.port, 8), {"0": 4, "1": 4})

    def test_reload_under_keep_alive_load_fails_nothing(self):
        agent = self.start_two_corral_workers()
        self.reload_under_load(agent, reloads=2)
        # The replacements inherited the slots' sockets: still in turn.
        agent.wait_steered("0,1")
        self.assertEqual(self.spread(agent.port, 32), {"0": 16, "1": 16})

    def test_scale_2_1_2_under_keep_alive_load_fails_nothing(self):
        agent = self.start_two_corral_workers()
        load = self.start_keep_alive_load(agent, threads=16,
                                          pace=lambda tid: 0.2 if tid % 2 == 0 else 0.002)
        load.mark("scale 1")
        code, out, err = agent.ctl("scale", "1")
        self.assertEqual(code, 0, f"corralctl scale 1: {out}{err}")
        agent.wait_steered("0")
        # Steered away first: no new connection reaches slot 1 while it drains.
        self.assertEqual(self.spread(agent.port, 8), {"0": 8})
        agent.wait_event("worker_exited", worker=1, timeout=20)
        agent.wait_event("balance_slot_closed", worker=1, timeout=10)
        load.wait_ok(300, 30)
        load.mark("scale 2")
        code, out, err = agent.ctl("scale", "2")
        self.assertEqual(code, 0, f"corralctl scale 2: {out}{err}")
        agent.wait_steered("0,1")
        # Both in turn again; a load thread reconnecting in between takes a
        # turn too, so up to one off.
        by_worker = self.spread(agent.port, 8)
        self.assertEqual(set(by_worker), {"0", "1"}, by_worker)
        self.assertLessEqual(abs(by_worker["0"] - by_worker["1"]), 2, by_worker)
        load.wait_ok(300, 30)
        results = load.stop()
        self.assertNoFailedRequests(results, agent.tail(), load=load)

    def test_refused_round_robin_fails_the_start_naming_the_capability(self):
        agent = Agent(self, ["--balance=round-robin", "--workers=1"], prefix=AS_NOBODY,
                      dir_mode=0o777, listen=("tcp://127.0.0.1:0",))
        agent.start(wait_started=False)
        code = agent.wait_exit(10)
        tail = agent.tail()
        note(f"round-robin as nobody: exit {code}: {tail.splitlines()[-1] if tail else ''}")
        self.assertEqual(code, 1, tail)
        self.assertIn("--balance=round-robin", tail)
        self.assertIn("CAP_BPF", tail)
        self.assertIn("--balance=reuseport", tail)

    def test_cap_bpf_alone_is_enough(self):
        """As nobody with only CAP_BPF (ambient, so the agent keeps it
        across exec): the program loads, 16/16 again."""
        probe = subprocess.run([*AS_NOBODY, *WITH_CAP_BPF, "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            self.skipTest(f"cannot give nobody CAP_BPF here: {probe.stderr.strip()}")
        agent = Agent(self, ["--workers=2"], prefix=(*AS_NOBODY, *WITH_CAP_BPF),
                      dir_mode=0o777, listen=("tcp://127.0.0.1:0",)).start()
        mode = agent.wait_event("balance_mode")
        note(f"auto as nobody with CAP_BPF: {mode['msg']}")
        self.assertEqual((mode["mode"], mode["requested"]), ("round-robin", "auto"))
        agent.wait_ready(2)
        agent.wait_steered("0,1")
        self.assertEqual(self.spread(agent.port, 32), {"0": 16, "1": 16})

    def test_refused_auto_falls_back_to_reuseport_and_says_why(self):
        agent = Agent(self, ["--workers=2"], prefix=AS_NOBODY, dir_mode=0o777,
                      listen=("tcp://127.0.0.1:0",)).start()
        mode = agent.wait_event("balance_mode")
        note(f"auto as nobody: {mode['msg']}")
        self.assertEqual((mode["mode"], mode["requested"]), ("reuseport", "auto"))
        self.assertIn("CAP_BPF", mode["reason"])
        agent.wait_ready(2)
        agent.wait_steered("0,1")  # the classic program took over
        self.assertEqual(sum(self.spread(agent.port, 8).values()), 8)


if __name__ == "__main__":
    unittest.main()
