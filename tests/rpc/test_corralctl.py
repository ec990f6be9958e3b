"""corralctl end to end against a real agent: every command, -o json parses,
exit codes (0 ok, 1 failed, 2 usage, 3 not reachable), and what it says when
no agent runs."""

import json
import re
import os
import signal
import socket
import subprocess
import tempfile

import unittest

from pylib import paths
from pylib.agent import AUTO, SHELL_WORKER, Agent, corralctl
from pylib.testcase import TestCase
from pylib.waiting import wait_for
from pylib.workers import ClosedPort

FLAGS = ["--workers=2", "--ready=delay:50ms", "--drain-delay=100ms",
         "--stop-timeout=3s"]


class NoAgentTest(TestCase):
    def test_no_socket_file(self):
        with tempfile.TemporaryDirectory(prefix="corral-rpc-") as d:
            path = os.path.join(d, "agent.sock")
            code, out, err = corralctl("--socket", path, "status")
            self.assertEqual(code, 3)
            self.assertEqual(out, "")
            self.assertIn(f"cannot reach agent at {path}: no such file; "
                          "is corral-agent running? set --socket", err)
            # CORRAL_SOCKET is the default for --socket.
            code, out, err = corralctl("ps", env={"CORRAL_SOCKET": path})
            self.assertEqual(code, 3)
            self.assertIn(path, err)

    def test_stale_socket_file(self):
        with tempfile.TemporaryDirectory(prefix="corral-rpc-") as d:
            path = os.path.join(d, "agent.sock")
            s = socket.socket(socket.AF_UNIX)
            s.bind(path)
            s.close()  # bound, never listening: what a killed agent leaves
            code, out, err = corralctl("--socket", path, "drain")
            self.assertEqual(code, 3)
            self.assertIn("nothing listens there", err)

    def test_health_probe_nobody_listens(self):
        closed = ClosedPort(self)  # bound, not listening: connections are refused
        code, out, err = corralctl("health", "--probe", f"127.0.0.1:{closed.port}")
        self.assertEqual(code, 3)
        # About the probe port, not the control socket's --socket.
        self.assertIn(f"cannot reach the probe port at 127.0.0.1:{closed.port}", err)
        self.assertIn("--probe-port", err)
        self.assertNotIn("--socket", err)

    def test_usage_errors_exit_2(self):
        for args in ([], ["bogus"], ["scale"], ["scale", "lots"], ["restart"],
                     ["signal", "0"], ["status", "-o", "yaml"], ["logs", "-n", "-3"],
                     ["completion", "powershell"]):
            code, out, err = corralctl(*args)
            self.assertEqual(code, 2, f"{args}: {err}")
            self.assertTrue(err, args)

    def test_usage_errors_are_one_line_in_words(self):
        for args, words in ((["--socket=/a", "--socket=/b", "status"],
                             "--socket is given 2 times; give it once"),
                            ([], "give a command"),
                            (["status", "-o", "yaml"], "--output: yaml not in {table,json}")):
            code, out, err = corralctl(*args)
            self.assertEqual(code, 2, f"{args}: {err}")
            self.assertEqual(err, f"corralctl: {words} (see corralctl --help)\n", args)

    def test_socket_with_a_comma_is_refused(self):
        code, out, err = corralctl("--socket", "/tmp/a.sock,", "status")
        self.assertEqual(code, 2, err)
        self.assertIn("'/tmp/a.sock,' has a comma", err)

    def test_version_flag(self):
        code, out, err = corralctl("--version")
        self.assertEqual((code, out), (0, "corralctl 0.1.0\n"), err)

    def test_bad_numbers_are_named_plainly(self):
        # CLI11's own range check printed "not in range 0.000000 to" a
        # 309-digit float.
        for args, flag, value in ((["logs", "-n", "-5"], "--lines", "-5"),
                                  (["logs", "-n", "1.5"], "--lines", "1.5"),
                                  (["top", "--count", "-2"], "--count", "-2"),
                                  (["top", "--interval", "0"], "--interval", "0"),
                                  (["--timeout", "-1", "status"], "--timeout", "-1")):
            code, out, err = corralctl(*args)
            self.assertEqual(code, 2, f"{args}: {err}")
            first = err.splitlines()[0]
            self.assertIn(flag, first, args)
            self.assertIn(f"'{value}'", first, args)
            self.assertLess(len(first), 120, f"{args}: {first}")
            self.assertNotIn("000000", err, args)

    def test_help(self):
        code, out, err = corralctl("--help")
        self.assertEqual(code, 0)
        for command in ("status", "ps", "scale", "reload", "drain", "resume", "stop",
                        "restart", "signal", "logs", "events", "top", "health",
                        "version", "completion"):
            self.assertIn(command, out)
        code, out, err = corralctl("logs", "--help")
        self.assertEqual(code, 0)
        self.assertIn("--follow", out)

    def test_bash_completion(self):
        code, out, err = corralctl("completion", "bash")
        self.assertEqual(code, 0, err)
        self.assertIn("complete -F _corralctl corralctl", out)
        self.assertIn("reload", out)
        syntax = subprocess.run(["bash", "-n"], input=out, text=True,
                                capture_output=True)
        self.assertEqual(syntax.returncode, 0, syntax.stderr)
        # Ask it, as bash would, what follows "corralctl sc".
        script = out + ('COMP_WORDS=(corralctl sc); COMP_CWORD=1; _corralctl; '
                        'echo "${COMPREPLY[@]}"')
        done = subprocess.run(["bash", "-c", script], text=True, capture_output=True)
        self.assertEqual(done.stdout.split(), ["scale"])

    def test_zsh_completion(self):
        code, out, err = corralctl("completion", "zsh")
        self.assertEqual(code, 0, err)
        # zsh registers it and its candidates for "corralctl sc" include
        # scale (zsh's own matcher then narrows by the prefix).
        script = out + ('\nsetopt ksharrays; COMP_WORDS=(corralctl sc); COMP_CWORD=1; '
                        '_corralctl; echo "${_comps[corralctl]}"; echo "${COMPREPLY[@]}"')
        done = subprocess.run(["zsh", "-f", "-c", script], text=True, capture_output=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        registered, candidates = done.stdout.splitlines()[-2:]
        self.assertEqual(registered, "_bash_complete -F _corralctl")
        self.assertIn("scale", candidates.split())

    def test_fish_completion(self):
        code, out, err = corralctl("completion", "fish")
        self.assertEqual(code, 0, err)
        with tempfile.NamedTemporaryFile("w", suffix=".fish") as f:
            f.write(out)
            f.flush()
            # Ask fish, as it would on Tab, what follows these lines.
            def ask(line):
                r = subprocess.run(["fish", "--no-config", "-c",
                                    f"source {f.name}; complete -C'{line}'"],
                                   text=True, capture_output=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                return [c.split("\t")[0] for c in r.stdout.splitlines()]
            self.assertEqual(ask("corralctl sc"), ["scale"])
            self.assertEqual(ask("corralctl logs --fo"), ["--follow"])
            self.assertIn("auto", ask("corralctl scale "))
            self.assertIn("TERM", ask("corralctl signal 1 "))
            self.assertEqual(ask("corralctl -o "), ["json", "table"])

    def test_version_without_agent(self):
        with tempfile.TemporaryDirectory(prefix="corral-rpc-") as d:
            code, out, err = corralctl("--socket", f"{d}/none.sock", "version")
            self.assertEqual(code, 0, err)
            self.assertIn("corralctl 0.1.0", out)
            self.assertIn("not reachable", out)


class WithAgentTest(TestCase):
    def setUp(self):
        super().setUp()
        self.agent = Agent(self, [*FLAGS, f"--probe-port={AUTO}", "--probe-address=127.0.0.1"],
                           command=SHELL_WORKER).start()
        self.probe = self.agent.probe_port
        self.agent.wait_status_ready(2)

    def ctl(self, *args):
        return self.agent.ctl(*args)

    def ok(self, *args):
        code, out, err = self.ctl(*args)
        self.assertEqual(code, 0, f"{args}: {err}")
        return out

    def json(self, *args):
        return json.loads(self.ok(*args, "-o", "json"))

    def json_lines(self, *args):
        return [json.loads(line) for line in self.ok(*args, "-o", "json").splitlines()]

    def spawn(self, *args):
        """A corralctl that runs until killed (by pid, in cleanup)."""
        out = tempfile.TemporaryFile(mode="w+")
        p = subprocess.Popen([paths.binary("CORRALCTL"), "--socket", self.agent.socket, *args],
                             stdout=out, stderr=subprocess.STDOUT, text=True)

        def stop():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                p.wait(timeout=5)
            out.close()
        self.addCleanup(stop)

        def read():
            out.seek(0)
            return out.read()
        return p, read

    def test_status_and_ps(self):
        text = self.ok("status")
        self.assertIn("running", text)
        self.assertIn("2 of 2 workers READY", text)
        self.assertIn("ID  PID", text)
        s = self.json("status")
        self.assertEqual(s["state"], "running")
        self.assertEqual(s["pid"], self.agent.proc.pid)
        self.assertEqual(len(s["workers"]), 2)
        self.assertIn("decision", s["sizing"])
        workers = self.json("ps")
        self.assertEqual([w["slot"] for w in workers], [0, 1])
        self.assertEqual({w["state"] for w in workers}, {"ready"})
        # Integers are JSON numbers (proto3 JSON writes 64-bit ones as strings).
        self.assertTrue(all(isinstance(w["rss_bytes"], int) for w in workers), workers)
        self.assertIsInstance(s["counters"]["worker_restarts"], int)
        lines = self.ok("ps").splitlines()
        self.assertEqual(len(lines), 3)
        self.assertIn("READY", lines[1])

    def test_scale(self):
        # It answers with the plan, then each new worker READY, then the end.
        lines = self.json_lines("scale", "3")
        self.assertEqual([p["phase"] for p in lines],
                         ["planned", "worker_ready", "finished"])
        self.assertEqual(lines[0]["plan"], {
            "previous_workers": 2, "target_workers": 3, "auto_workers": False,
            "starting": [2], "stopping": []})
        self.assertEqual(lines[1]["worker"], 2)
        self.assertEqual((lines[2]["done"], lines[2]["total"]), (1, 1))
        self.agent.wait_status_ready(3)
        out = self.ok("scale", "1")
        self.assertIn("scaling 3 -> 1 workers: stopping 1,2", out)
        self.assertIn("worker 1 stopped (pid", out)
        self.assertIn("worker 2 stopped (pid", out)
        self.assertIn("scale finished: 3 -> 1 workers, 0 started, 2 stopped", out)
        self.assertIn("auto", self.ok("scale", "auto"))
        code, out, err = self.ctl("scale", "-1")
        self.assertEqual(code, 2)
        self.assertIn("minimum is 1", err)

    def test_scale_ceiling_and_no_wait(self):
        if 4 * len(os.sched_getaffinity(0)) >= 1000:
            self.skipTest("this host has 250 CPUs or more: 1000 is allowed")
        code, out, err = self.ctl("scale", "1000")
        self.assertEqual(code, 2, err)
        self.assertIn("cannot scale to 1000 workers: the default ceiling is", err)
        self.assertIn("per usable CPU", err)
        self.assertIn("--max-workers=N raises it", err)
        self.assertEqual(len(self.json("ps")), 2)  # nothing happened
        # --no-wait: the plan, and back at once.
        out = self.ok("scale", "4", "--no-wait")
        self.assertIn("scaling 2 -> 4 workers: starting 2,3 (not waiting", out)
        self.assertEqual(len(out.splitlines()), 1, out)
        self.agent.wait_status_ready(4)

    def test_drained_workers_are_stopped_and_resume_brings_them_back(self):
        self.ok("drain")
        wait_for(lambda: {w["state"] for w in self.json("ps")} == {"stopped"},
                 what="every worker STOPPED")
        text = self.ok("status")
        self.assertIn("STOPPED", text)
        self.assertNotIn("BACKOFF", text)
        self.assertIn("drained: corralctl resume brings", text)
        code, out, err = self.ctl("signal", "0", "USR1")
        self.assertEqual(code, 1)
        self.assertIn("worker 0 is stopped: the workers are drained; "
                      "`corralctl resume` brings them back", err)
        self.assertNotIn("try again once it restarted", err)
        code, out, err = self.ctl("restart", "0")
        self.assertEqual(code, 1)
        self.assertIn("`corralctl resume` brings them back", err)
        self.ok("resume")
        self.agent.wait_status_ready(2)

    def test_reload_shows_progress(self):
        out = self.ok("reload")
        self.assertIn("reload: rolling 2 worker(s)", out)
        self.assertIn("[1/2] worker 0: pid", out)
        self.assertIn("[2/2] worker 1: pid", out)
        self.assertIn("reload finished: 2 of 2", out)
        self.agent.wait_status_ready(2)
        phases = [p["phase"] for p in self.json_lines("reload")]
        self.assertEqual(phases, ["started", "slot_done", "slot_done", "finished"])

    def test_drain_resume_and_health(self):
        self.assertIn("SERVING", self.ok("health"))
        self.assertEqual(self.json("health"), {"liveness": "SERVING",
                                               "readiness": "SERVING"})
        probe = ["health", "--probe", f"127.0.0.1:{self.probe}"]
        self.assertEqual(self.json(*probe, "--service", ""), {"": "SERVING"})
        self.assertIn("draining", self.ok("drain"))
        code, out, err = self.ctl("health")
        self.assertEqual(code, 1)
        self.assertIn("NOT_SERVING", out)
        self.assertEqual(self.ctl(*probe)[0], 1)
        code, out, err = self.ctl("reload")
        self.assertEqual(code, 1)
        self.assertIn("resume before reloading", err)
        code, out, err = self.ctl("drain")
        self.assertEqual(code, 1)
        self.assertIn("already draining", err)
        self.assertIn("resumed", self.ok("resume"))
        wait_for(lambda: self.ctl("health")[0] == 0, what="ready again")
        # The probe port serves health only.
        code, out, err = corralctl("--socket", self.agent.socket, "health",
                                   "--probe", f"127.0.0.1:{self.probe}",
                                   "--service", "nope")
        self.assertEqual(code, 1)
        self.assertIn("unknown health service", err)

    def test_restart_and_signal(self):
        before = self.json("ps")
        reply = self.json("restart", "1")
        self.assertEqual(reply["worker"], 1)
        self.assertEqual(reply["old_pid"], before[1]["pid"])
        code, out, err = self.ctl("restart", "9")
        self.assertEqual(code, 1)
        self.assertIn("no worker 9", err)
        self.assertIn("sent SIGUSR1 to worker 0", self.ok("signal", "0", "USR1"))
        code, out, err = self.ctl("signal", "0", "NOPE")
        self.assertEqual(code, 2)
        self.assertIn("unknown signal", err)
        code, out, err = self.ctl("signal", "5", "TERM")
        self.assertEqual(code, 1)

    def test_logs(self):
        wait_for(lambda: len(self.ok("logs").splitlines()) >= 2, what="start lines")
        lines = self.ok("logs").splitlines()
        self.assertIn("[0] worker 0 gen 1 up", lines)
        self.assertIn("[1] worker 1 gen 1 up", lines)
        self.assertEqual(self.ok("logs", "-n", "1", "1").splitlines(),
                         ["[1] worker 1 gen 1 up"])
        # -t: the time the agent read it, first.
        stamped = self.ok("logs", "-t", "-n", "1", "1").splitlines()
        self.assertRegex(stamped[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z "
                                     r"\[1\] worker 1 gen 1 up$")
        records = self.json_lines("logs", "0")
        self.assertEqual(records[0]["worker"], 0)
        self.assertEqual(records[0]["text"], "worker 0 gen 1 up")
        code, out, err = self.ctl("logs", "9")
        self.assertEqual(code, 1)
        self.assertIn("no worker 9", err)
        self.assertEqual(self.ok("logs", "-n", "0"), "")
        # Follow. The agent sends the tail and subscribes in one loop turn,
        # so the tail line printed is the proof that nothing later is missed:
        # wait for it before restarting (with -n 0 there is no such marker,
        # and a restart could come before the subscription).
        p, read = self.spawn("logs", "-f", "-n", "1", "0")
        wait_for(lambda: read() == "[0] worker 0 gen 1 up\n", what="the tail line")
        self.ok("restart", "0")
        wait_for(lambda: "[0] worker 0 gen 2 up" in read(), what="a followed line")
        self.assertEqual(read().splitlines()[0], "[0] worker 0 gen 1 up")
        self.assertIsNone(p.poll(), "the follower keeps running")

    def test_events(self):
        p, read = self.spawn("events", "-o", "json")
        # Events from now on: poke until the watch is in place.
        wait_for(lambda: self.ok("scale", "3") and '"scaled"' in read(),
                 what="a scaled event")
        event = next(json.loads(line) for line in read().splitlines()
                     if '"scaled"' in line)
        self.assertEqual(event["level"], "info")
        self.assertEqual(event["fields"]["to"], 3)
        q, text = self.spawn("events", "--name", "worker_ready")
        wait_for(lambda: self.ok("restart", "1") and "worker_ready" in text(),
                 what="a worker_ready event")
        self.assertNotIn("worker_spawned", text())

    def test_describe(self):
        ps = {w["slot"]: w for w in self.json("ps")}
        d = self.json("describe", "1")
        self.assertEqual(d["worker"]["pid"], ps[1]["pid"])
        self.assertEqual(d["worker"]["state"], "ready")
        self.assertEqual(d["command"], self.agent.command)
        self.assertEqual(os.path.realpath(d["exe"]), os.path.realpath(self.agent.command[0]))
        self.assertGreater(d["open_fds"], 2)
        # Names only, in the process's own order; values are never sent.
        for name in ("CORRAL_WORKER_ID", "CORRAL_WORKER_GENERATION", "NOTIFY_SOCKET", "PATH"):
            self.assertIn(name, d["env_names"])
        self.assertFalse([n for n in d["env_names"] if "=" in n])
        text = self.ok("describe", "1")
        self.assertRegex(text, rf"(?m)^pid\s+{ps[1]['pid']}, started ")
        self.assertRegex(text, r"(?m)^open fds\s+\d+$")
        self.assertIn("values are not shown", text)
        code, out, err = self.ctl("describe", "9")
        self.assertEqual(code, 1, err)
        self.assertIn("no worker 9", err)

    def test_top(self):
        out = self.ok("top", "--count", "2", "--interval", "0.1")
        self.assertEqual(out.count("corral top: agent running"), 2)
        self.assertIn("CPU", out)
        frames = self.json_lines("top", "--count", "1")
        self.assertEqual(len(frames[0]["workers"]), 2)
        # No per-worker memory bound here: the memory column has the size
        # and no bar (only the CPU bar is drawn).
        rows = [l for l in out.splitlines() if re.match(r"^[01]\s+\d+\s+READY", l)]
        self.assertTrue(rows, out)
        for row in rows:
            self.assertEqual(row.count("["), 1, row)

    def test_version(self):
        out = self.ok("version")
        self.assertIn("corralctl 0.1.0", out)
        self.assertIn(f"pid {self.agent.proc.pid}", out)
        self.assertEqual(self.json("version"), {"corralctl": "0.1.0", "agent": "0.1.0"})

    def test_stop(self):
        self.assertIn("stopping", self.ok("stop"))
        self.assertEqual(self.agent.proc.wait(timeout=10), 0)
        code, out, err = self.ctl("status")
        self.assertEqual(code, 3)
        self.assertIn("no such file", err)


if __name__ == "__main__":
    unittest.main()
