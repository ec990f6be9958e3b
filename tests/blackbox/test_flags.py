"""Scenario 7: bad flags, values or a missing COMMAND exit 2 with one line on
stderr naming the flag and the value; a flag beats its environment variable."""

import subprocess
import unittest

from pylib import paths
from pylib.agent import agent_env
from pylib.http_client import http_get
from pylib.testcase import TestCase

AGENT = paths.binary("CORRAL_AGENT")
WORKER = paths.binary("CORRAL_TEST_WORKER")


class Flags(TestCase):

    def setUp(self):
        paths.require(("CORRAL_AGENT", AGENT), ("CORRAL_TEST_WORKER", WORKER))
        self.cwd = self.temp_dir()

    def run_agent(self, args, env=None):
        """Runs the agent to completion (it must exit by itself)."""
        try:
            return subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=10,
                                  cwd=self.cwd, stdin=subprocess.DEVNULL, env=agent_env(env))
        except subprocess.TimeoutExpired as e:
            # run() has killed it (our own child) by now.
            self.fail(f"agent {args} did not exit: it started? stdout={e.stdout!r}")

    def assertUsageError(self, args, *words, env=None):
        r = self.run_agent(args, env)
        lines = r.stderr.strip().splitlines()
        with self.subTest(args=args, env=env):
            self.assertEqual(r.returncode, 2, f"stderr={r.stderr!r} stdout={r.stdout!r}")
            self.assertEqual(len(lines), 1, f"one line on stderr, got {r.stderr!r}")
            for word in words:
                self.assertIn(word.lower(), r.stderr.lower(), f"stderr should name {word!r}")

    def test_bad_values_name_flag_and_value(self):
        cmd = ["--", WORKER]
        self.assertUsageError(["--workers=abc", *cmd], "workers", "abc")
        self.assertUsageError(["--workers=-3", *cmd], "workers", "-3")
        self.assertUsageError(["--ready=bogus", *cmd], "ready", "bogus")
        self.assertUsageError(["--ready=delay:soon", *cmd], "ready", "soon")
        self.assertUsageError(["--ready-timeout=5parsecs", *cmd], "ready-timeout", "5parsecs")
        self.assertUsageError(["--stop-timeout=abc", *cmd], "stop-timeout", "abc")
        self.assertUsageError(["--drain-delay=-", *cmd], "drain-delay")
        self.assertUsageError(["--watchdog=x1", *cmd], "watchdog", "x1")
        self.assertUsageError(["--restart-backoff=abc", *cmd], "restart-backoff", "abc")
        self.assertUsageError(["--listen=ftp://127.0.0.1:80", *cmd], "listen", "ftp://127.0.0.1:80")
        self.assertUsageError(["--listen=tcp://127.0.0.1:notaport", *cmd], "listen", "notaport")
        self.assertUsageError(["--log-format=xml", *cmd], "log-format", "xml")
        self.assertUsageError(["--probe-port=lots", *cmd], "probe-port", "lots")
        self.assertUsageError(["--http-port=70000", *cmd], "http-port", "70000")
        self.assertUsageError(["--frobnicate", *cmd], "frobnicate")

    def test_cli_messages_are_in_words(self):
        # CLI11's own "At Most 1 required but received 2" is rewritten.
        self.assertUsageError(["--drain-delay=1s", "--drain-delay=2s", "--", WORKER],
                              "--drain-delay is given 2 times; give it once")
        self.assertUsageError(["--workers"], "--workers needs a value")
        r = self.run_agent(["--drain-delay=1s", "--drain-delay=2s", "--", WORKER])
        self.assertNotIn("At Most", r.stderr)

    def test_a_program_as_a_flag_value_asks_for_dash_dash(self):
        # `corral-agent --workers node app.js`: node is COMMAND, not a count.
        self.assertUsageError(["--workers", "sh", "app.js"], "'sh'",
                              "missing `--` before COMMAND?")
        self.assertUsageError(["--stop-timeout", WORKER], "missing `--` before COMMAND?")
        # A value that names no program gets no such hint.
        r = self.run_agent(["--workers", "lots", "--", WORKER])
        self.assertEqual(r.returncode, 2)
        self.assertNotIn("COMMAND?", r.stderr)

    def test_version(self):
        r = self.run_agent(["--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.strip(), r"^corral-agent \d+\.\d+\.\d+$")

    def test_missing_command(self):
        self.assertUsageError(["--workers=1"], "command")
        self.assertUsageError(["--workers=1", "--"], "command")

    def test_bad_environment_value(self):
        # Naming the flag is enough for the contract; naming the variable the
        # user actually set (CORRAL_WORKERS) would be kinder.
        self.assertUsageError(["--", WORKER], "workers", "abc", env={"CORRAL_WORKERS": "abc"})
        self.assertUsageError(["--", WORKER], "ready", "bogus", env={"CORRAL_READY": "bogus"})

    def test_flag_beats_environment(self):
        agent = self.start_agent(["--workers=2"], env={"CORRAL_WORKERS": "1",
                                                       "CORRAL_LOG_FORMAT": "text"})
        self.assertEqual(agent.agent_events("agent_started")[0].get("workers"), 2)
        agent.wait_ready(2)

    def test_environment_is_used(self):
        agent = self.start_agent(listen=(), env={
            "CORRAL_WORKERS": "2", "CORRAL_LISTEN": "tcp://127.0.0.1:0"})
        self.assertEqual(agent.agent_events("agent_started")[0].get("workers"), 2)
        self.assertRegex(agent.listen[0], r"^tcp://127\.0\.0\.1:[1-9]\d*$",
                         "listening where CORRAL_LISTEN said")
        agent.wait_ready(2)

    def test_auto_ports_are_bound_and_reported(self):
        # --probe-port=auto / --http-port=auto: the kernel picks, the event says.
        agent = self.start_agent(["--workers=1", "--probe-port=auto", "--http-port=auto",
                                  "--probe-address=127.0.0.1"])
        listening = agent.control_listening()
        self.assertGreater(agent.probe_port, 0, listening)
        self.assertGreater(agent.http_port, 0, listening)
        self.assertNotEqual(agent.probe_port, agent.http_port)
        self.assertIn(f"probe port {agent.probe_port}", listening["msg"])
        agent.wait_ready(1)
        self.assertEqual(http_get(agent.http_port, "/livez"), (200, "ok\n"))


if __name__ == "__main__":
    unittest.main()
