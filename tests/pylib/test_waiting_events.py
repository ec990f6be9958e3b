"""wait_for / hold, the event log and the runner's exit codes."""

import os
import subprocess
import sys
import textwrap
import threading
import unittest

from pylib.events import EventLog, parse_ts
from pylib.testcase import TestCase
from pylib.waiting import Timeout, hold, wait_for


class Waiting(TestCase):

    def test_wait_for_returns_the_value_or_fails_naming_what(self):
        values = iter([None, 0, "x"])
        self.assertEqual(wait_for(lambda: next(values), 5, "x", interval=0), "x")
        with self.assertRaisesRegex(Timeout, r"timed out after 0.05s waiting for nothing"):
            wait_for(lambda: None, 0.05, lambda: "nothing")

    def test_hold_fails_at_the_first_false(self):
        hold(lambda: True, 0.05, "true")
        answers = iter([True, True, False])
        with self.assertRaisesRegex(AssertionError, "calm stopped holding"):
            hold(lambda: next(answers), 5, "calm", interval=0)


class Events(TestCase):

    def test_lines_become_events_and_bad_lines(self):
        log = EventLog()
        log.add_line(b'{"src":"agent","event":"a","n":1}\n')
        log.add_line(b'{"src":"worker","msg":"hi","pid":7}\n')
        log.add_line(b'not json\n')
        log.add_line(b'{"src":"agent","event":"b","msg":"\xff"}\n')  # not UTF-8
        log.add_line(b'[1, 2]\n')
        log.add_line(b'{"src":"agent","event":"a","n":2}\n')
        self.assertEqual([(e["event"], e["_i"]) for e in log.agent_events()],
                         [("a", 0), ("a", 1)])
        self.assertEqual(log.agent_events("a", n=2)[0]["_i"], 1)
        self.assertEqual(log.agent_events("a", after=0)[0]["n"], 2)
        self.assertEqual(log.worker_text(7), ["hi"])
        self.assertEqual(len(log.bad_lines), 3)
        self.assertEqual(log.mark(), 1)

    def test_wait_event_wakes_on_a_new_line(self):
        log = EventLog()
        threading.Timer(0.05, log.add_line, ['{"src":"agent","event":"late"}']).start()
        self.assertEqual(log.wait_event("late", timeout=5)["event"], "late")
        with self.assertRaisesRegex(Timeout, "1 x never"):
            log.wait_event("never", timeout=0.05)

    def test_ready_workers_follows_exits(self):
        log = EventLog()
        for line in ('{"src":"agent","event":"worker_ready","worker":0,"pid":10}',
                     '{"src":"agent","event":"worker_ready","worker":1,"pid":11}',
                     '{"src":"agent","event":"worker_exited","worker":1,"pid":11}'):
            log.add_line(line)
        self.assertEqual(log.ready_workers(), {0: 10})

    def test_parse_ts(self):
        self.assertEqual(parse_ts("1970-01-01T00:01:00.250000Z"), 60.25)


class Runner(TestCase):

    def run_module(self, body):
        d = self.temp_dir()
        with open(os.path.join(d, "test_sample.py"), "w") as f:
            f.write("import unittest\n" + textwrap.dedent(body))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [d, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]))
        return subprocess.run([sys.executable, "-m", "pylib.runner", "test_sample"],
                              capture_output=True, text=True, env=env, cwd=d).returncode

    def test_exit_codes(self):
        self.assertEqual(self.run_module("""
            class T(unittest.TestCase):
                def test_a(self): pass
                def test_b(self): self.skipTest("why")
            """), 0)
        self.assertEqual(self.run_module("""
            class T(unittest.TestCase):
                def test_a(self): self.skipTest("why")
            """), 77)
        self.assertEqual(self.run_module("""
            class T(unittest.TestCase):
                @classmethod
                def setUpClass(cls): raise unittest.SkipTest("no podman")
                def test_a(self): pass
            """), 77)
        self.assertEqual(self.run_module("""
            class T(unittest.TestCase):
                def test_a(self): self.fail("no")
            """), 1)


if __name__ == "__main__":
    unittest.main()
