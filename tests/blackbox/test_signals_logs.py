"""Scenario 8: other signals reach every worker; worker output arrives as
JSON lines tagged with worker, generation, pid and stream; long lines are
split with cont=true, nothing is lost."""

import re
import signal
import unittest
import urllib.parse

from pylib.agent import signal_is
from pylib.http_client import http_get, parse_identity
from pylib.testcase import TestCase

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def log_line(tag, i, length):
    """What the worker's /log writes as line i (see endpoints.cc)."""
    line = f"{tag}-{i}-"
    return line + "".join(chr(ord("a") + k % 26) for k in range(len(line), length))


class SignalsAndLogs(TestCase):
    agent_pid1 = True

    def setUp(self):
        self.agent = self.start_agent(["--workers=3"],
                                      ["--print-startup"])
        self.port = self.agent.port
        self.ready = self.agent.wait_ready(3)

    def test_other_signals_reach_every_worker(self):
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
            self.agent.signal(sig)
            text = f"got signal {int(sig)} {sig.name}"

            def got_it():
                pids = {e["pid"] for e in self.agent.worker_lines(stream="stdout")
                        if text in e.get("msg", "")}
                return pids if pids >= set(self.ready.values()) else None
            self.agent.wait_until(got_it, 5, f"{sig.name} at every worker")
            forwarded = [e for e in self.agent.agent_events("signal_forwarded")
                         if signal_is(e.get("signal"), sig)]
            self.assertEqual(len(forwarded), 1, self.agent.tail())
            self.assertEqual(forwarded[0].get("workers"), 3)
        # Forwarded signals are not a reason to replace anyone.
        self.assertEqual(self.agent.ready_workers(), self.ready)

    def test_startup_lines_are_tagged(self):
        for worker, pid in self.ready.items():
            for stream in ("stdout", "stderr"):
                lines = self.agent.wait_until(
                    lambda: self.agent.worker_lines(pid=pid, stream=stream), 5,
                    f"{stream} of worker {worker}")
                e = lines[0]
                self.assertEqual(e["msg"], f"startup worker={worker} gen=1 pid={pid} stream={stream}")
                self.assertEqual((e.get("worker"), e.get("gen")), (worker, 1))
                self.assertRegex(e.get("ts", ""), TS_RE)
                self.assertNotIn("cont", e)
        for e in self.agent.agent_events():
            self.assertRegex(e.get("ts", ""), TS_RE, e)
            self.assertIn(e.get("level"), ("info", "warn", "error"), e)
        self.assertNoBadLines(self.agent)

    def request_log(self, tag, n, length, stream):
        """Has one worker write n lines; returns that worker's pid."""
        status, body = http_get(self.port, f"/log?n={n}&len={length}&stream={stream}&tag={tag}")
        self.assertEqual(status, 200)
        return parse_identity(body)["pid"]

    def pieces(self, pid, stream, tag, n):
        """Waits for n whole lines of `tag` from pid; each line is the list
        of events it came in (all but the last with cont=true)."""
        def whole():
            lines, current = [], None
            for e in self.agent.worker_lines(pid=pid, stream=stream):
                if current is None and not e.get("msg", "").startswith(tag + "-"):
                    continue
                current = (current or []) + [e]
                if not e.get("cont"):
                    lines.append(current)
                    current = None
            return lines if len(lines) >= n else None
        return self.agent.wait_until(whole, 10, f"{n} lines tagged {tag}")

    @staticmethod
    def text(line_events):
        return "".join(e.get("msg", "") for e in line_events)

    def test_many_lines_arrive_in_order(self):
        for stream in ("stdout", "stderr"):
            tag = f"many{stream}"
            pid = self.request_log(tag, 500, 200, stream)
            lines = [self.text(l) for l in self.pieces(pid, stream, tag, 500)]
            self.assertEqual(lines, [log_line(tag, i, 200) for i in range(500)])
        self.assertEqual(self.agent.agent_events("log_lines_dropped"), [])

    def test_long_line_is_split_not_lost(self):
        length = 40 * 1024
        pid = self.request_log("big", 1, length, "stdout")
        parts = self.pieces(pid, "stdout", "big", 1)[0]
        self.assertEqual(self.text(parts), log_line("big", 0, length))
        self.assertGreaterEqual(len(parts), 3, "40 KiB in pieces of at most 16 KiB")
        for e in parts:
            self.assertLessEqual(len(e["msg"].encode()), 16 * 1024)
            self.assertEqual((e.get("worker"), e.get("stream")),
                             (parts[0].get("worker"), "stdout"))
        self.assertEqual([bool(e.get("cont")) for e in parts],
                         [True] * (len(parts) - 1) + [False])

    def test_json_escaping(self):
        text = 'quote " backslash \\ tab \t bell \x07 esc \x1b[31m unicode \u00e9 \u2713 end'
        status, body = http_get(self.port, "/echo?line=" + urllib.parse.quote(text))
        self.assertEqual(status, 200)
        pid = parse_identity(body)["pid"]
        self.agent.wait_until(lambda: [e for e in self.agent.worker_lines(pid=pid)
                                       if e.get("msg") == text], 5, "the line, exactly")
        # Not UTF-8: it must still arrive, as valid JSON.
        raw = b"bytes \xff\xfe\xc3 end"
        # Any worker may take this request: the port is shared.
        http_get(self.port, "/echo?line=" + urllib.parse.quote_from_bytes(raw))
        self.agent.wait_until(lambda: [e for e in self.agent.worker_lines()
                                       if e.get("msg", "").startswith("bytes ")]
                              or [l for l in self.agent.bad_lines if '"bytes ' in l], 5,
                              "the invalid UTF-8 line")
        # JSON text is UTF-8 (RFC 8259): raw 0xff in it breaks strict readers.
        self.assertEqual(self.agent.bad_lines, [], "stdout lines that are not UTF-8 JSON")


if __name__ == "__main__":
    unittest.main()
