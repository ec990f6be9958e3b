"""Scenario 6: a COMMAND that cannot run, or a worker that crashes at once,
makes the agent give up with exit 1 and a clear line, without a busy loop."""

import os
import time
import unittest

from pylib import paths
from pylib.agent import Agent
from pylib.testcase import TestCase, note

MISSING = "/nonexistent/corral-no-such-command"


class BadCommand(TestCase):

    def run_to_exit(self, command, agent_args=("--workers=2",), json=True, timeout=15):
        agent = Agent(self, agent_args, command=command, log_format="json" if json else None,
                      pid1=True)
        agent.start(wait_started=False)
        t0 = time.monotonic()
        rc = agent.wait_exit(timeout)
        agent.cleanup()  # joins the readers: every line is in
        return agent, rc, time.monotonic() - t0

    def assertGaveUpClearly(self, agent, rc, elapsed, command, exec_code):
        """Exit 1, quickly, few attempts, and a line naming the command: either
        a check before any spawn (one line on stderr) or exec failures
        (exec_failed with exec_code) ending in gave_up."""
        self.assertEqual(rc, 1, agent.tail())
        self.assertLess(elapsed, 15)
        failed = agent.agent_events("exec_failed")
        self.assertLessEqual({e.get("code") for e in failed}, {exec_code}, agent.tail())
        attempts = len(failed) + len(agent.agent_events("worker_spawned"))
        self.assertLessEqual(attempts, 30, "a busy spawn loop")
        gave_up = agent.agent_events("gave_up")
        startup = agent.agent_events("startup_failed")
        if startup:
            # Checked before any spawn: one event and one stderr line.
            self.assertEqual(len(startup), 1, agent.tail())
            self.assertIn(command, startup[0].get("msg", ""))
            self.assertEqual(attempts, 0, agent.tail())
            self.assertEqual(len(agent.stderr_lines), 1, agent.stderr_lines)
            self.assertIn(command, agent.stderr_lines[0])
        elif agent.events:
            self.assertEqual(len(gave_up), 1, agent.tail())
            self.assertIn(command, gave_up[0].get("msg", ""), "the last word names the command")
            self.assertTrue(failed, agent.tail())
            self.assertIn(command, failed[0].get("msg", ""))
            self.assertEqual(agent.bad_lines, [])
        else:
            note(f"checked before spawning: {agent.stderr_lines}")
            self.assertEqual(len(agent.stderr_lines), 1, agent.stderr_lines)
            self.assertIn(command, agent.stderr_lines[0])

    def test_missing_command_gives_up_quickly(self):
        agent, rc, elapsed = self.run_to_exit([MISSING, "arg"])
        self.assertGaveUpClearly(agent, rc, elapsed, MISSING, 127)

    def test_missing_interpreter_fails_at_exec(self):
        # Passes any up-front check (it is an executable file); execve fails
        # with ENOENT, so the exec-failure path itself runs.
        path = os.path.join(self.temp_dir(), "bad-interpreter")
        with open(path, "w") as f:
            f.write("#!/nonexistent/corral-interpreter\n")
        os.chmod(path, 0o755)
        agent, rc, elapsed = self.run_to_exit([path])
        self.assertTrue(agent.agent_events("exec_failed"), agent.tail())
        self.assertGaveUpClearly(agent, rc, elapsed, path, 127)

    def test_missing_command_text_log(self):
        agent, rc, _ = self.run_to_exit([MISSING], json=False)
        self.assertEqual(rc, 1)
        text = "\n".join(agent.bad_lines + agent.stderr_lines)  # text mode: none is JSON
        self.assertIn(MISSING, text)

    def test_not_executable(self):
        path = os.path.join(self.temp_dir(), "not-executable")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o644)
        agent, rc, elapsed = self.run_to_exit([path])
        self.assertGaveUpClearly(agent, rc, elapsed, path, 126)

    def test_crash_loop_backs_off_then_gives_up(self):
        agent, rc, _ = self.run_to_exit(
            [paths.binary("CORRAL_TEST_WORKER"), "--exit-after-ms=0", "--exit-code=3", "--never-ready"],
            agent_args=("--workers=1", "--restart-backoff=50ms,400ms"), timeout=30)
        self.assertEqual(rc, 1, agent.tail())
        exits = agent.agent_events("worker_exited", worker=0)
        self.assertTrue(exits)
        self.assertEqual({e.get("code") for e in exits}, {3})
        delays = [e["delay_ms"] for e in agent.agent_events("worker_restart_scheduled")]
        self.assertTrue(delays, agent.tail())
        self.assertLessEqual(delays[0], 10, "first restart at once")
        self.assertLessEqual(max(delays), 400 * 1.25, delays)
        if len(delays) >= 4:
            self.assertGreater(delays[3], delays[1], f"backoff grows: {delays}")
        self.assertEqual(len(agent.agent_events("gave_up")), 1)


if __name__ == "__main__":
    unittest.main()
