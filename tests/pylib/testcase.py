"""The base class of every Python test, and note() for evidence lines."""

import shutil
import signal
import sys
import tempfile
import unittest


def note(text):
    """A line of evidence in the test's output (ctest shows it)."""
    sys.stderr.write(f"  [{text}]\n")
    sys.stderr.flush()


class Cleanups:
    """What pylib needs of a test (addCleanup, id), for scripts that are not
    tests (benchmarks): use it as a context manager; cleanups run last
    first on exit, even after an exception."""

    def __init__(self, name="bench"):
        self.name = name
        self._cleanups = []

    def id(self):
        return self.name

    def addCleanup(self, fn, *args, **kw):
        self._cleanups.append((fn, args, kw))

    def doCleanups(self):
        while self._cleanups:
            fn, args, kw = self._cleanups.pop()
            try:
                fn(*args, **kw)
            except Exception as e:  # one failed cleanup must not skip the rest
                note(f"cleanup {getattr(fn, '__name__', fn)} failed: {e!r}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.doCleanups()


class TestCase(unittest.TestCase):
    """unittest.TestCase with temp dirs and agents cleaned up by the test.
    agent_pid1: whether start_agent runs the agent as PID 1 by default."""

    maxDiff = None
    agent_pid1 = False

    def temp_dir(self, prefix="corral-test-"):
        """A new temp dir (under $TMPDIR), removed in the test's cleanups."""
        path = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def start_agent(self, args=(), worker_args=(), listen=None, pid1=None, **kw):
        """An Agent started (agent_started seen), killed in the cleanups.
        listen: --listen specs, default one loopback port the agent picks."""
        from .agent import LOOPBACK, Agent
        return Agent(self, args, worker_args=worker_args,
                     listen=(LOOPBACK,) if listen is None else listen,
                     pid1=self.agent_pid1 if pid1 is None else pid1, **kw).start()

    def start_load(self, port, **kw):
        """A started LoadGenerator (see load), stopped in the cleanups."""
        from .load import LoadGenerator
        load = LoadGenerator(port, **kw).start()
        self.addCleanup(load.stop)
        return load

    def corral_worker_without_redis(self):
        """corral-worker's command and environment for tests of `/`, which
        needs no Redis: REDIS_URL names a loopback port held by the test
        that refuses. Skips the test when corral-worker is not built."""
        from . import paths
        from .workers import ClosedPort
        worker = paths.binary("CORRAL_WORKER")
        if paths.missing(worker):
            self.skipTest("corral-worker not built")
        return [worker], {"REDIS_URL": f"redis://127.0.0.1:{ClosedPort(self).port}/0"}

    def start_keep_alive_load(self, agent, threads, pace):
        """Keep-alive load on the agent's port, once 300 requests have
        succeeded (see load.LoadGenerator for `pace`)."""
        load = self.start_load(agent.port, threads=threads, keep_alive=True, pace=pace)
        load.wait_ok(300, 30)
        return load

    def reload_under_load(self, agent, reloads=2, threads=24, pace=None):
        """Reloads the agent (SIGHUP) `reloads` times under keep-alive load
        (default pace load.idle_third), each time waiting for
        reload_finished and 300 more answers; fails the test if any request
        failed. Returns the load's results."""
        from .load import idle_third
        load = self.start_keep_alive_load(agent, threads, pace or idle_third)
        for k in range(1, reloads + 1):
            load.mark(f"SIGHUP {k}")
            agent.signal(signal.SIGHUP)
            agent.wait_event("reload_finished", count=k, timeout=30)
            load.wait_ok(300, 30)
        results = load.stop()
        self.assertNoFailedRequests(results, agent.tail(), load=load)
        return results

    def assertNoFailedRequests(self, results, context="", load=None):
        """Notes the load's summary; fails with every outcome kind counted
        and, given the LoadGenerator, its failure timeline (else the first
        failed requests)."""
        from .load import LoadGenerator
        summary = LoadGenerator.summary(results)
        note(summary)
        failures = LoadGenerator.failures(results)
        if failures:
            detail = load.timeline(results) if load else "\n".join(map(repr, failures[:5]))
            self.fail(f"{len(failures)} failed requests of {summary}\n{detail}\n{context}")

    def assertNoBadLines(self, agent):
        self.assertEqual(agent.bad_lines, [], "agent stdout lines that are not JSON")
