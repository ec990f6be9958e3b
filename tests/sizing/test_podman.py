"""In a real container: podman (runc) --cpus=1.5 gives 2 workers, and
`podman update --cpus=0.5` brings the agent to 1 worker while it serves.

The image is built here from the local binaries (corral-agent, the test
worker, the shared libraries ldd lists and the loader) into a temporary
rootfs and imported as localhost/corral-sizing-test:<pid>. The agent runs as
PID 1 with --network=host on a free loopback port. The container and the
image are removed by id even when a check fails.

Skips (with podman's exact error) when podman is missing or cannot run a
container here. runc, not crun (crun refuses this hybrid cgroup host).
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from sizing_harness import AGENT, WORKER, EventLog, Load, check_binaries, free_port, note

PODMAN = shutil.which("podman")
RUN_FLAGS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024",
             "--ulimit", "nproc=1024:1024"]


def podman(*args, check=True, timeout=60, **kw):
    r = subprocess.run([PODMAN, *args], capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {r.returncode}: "
                             f"{r.stderr.strip()}")
    return r


def shared_libraries(binary):
    """Absolute paths of the libraries and the loader `ldd` lists."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True,
                         check=True).stdout
    paths = []
    for line in out.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            paths.append(m.group(1))
    return paths


def build_rootfs(root):
    for d in ("proc", "sys", "dev", "tmp", "etc", "run"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(AGENT, os.path.join(root, "corral-agent"))
    shutil.copy2(WORKER, os.path.join(root, "corral-test-worker"))
    libs = sorted(set(shared_libraries(AGENT) + shared_libraries(WORKER)))
    for lib in libs:
        dest = os.path.join(root, lib.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(lib, dest)  # follows symlinks: the real file under the listed name
    return libs


@unittest.skipUnless(PODMAN, "podman is not installed (apt-get install -y podman runc)")
class PodmanRescaleTest(unittest.TestCase):

    def setUp(self):
        check_binaries(self)
        if os.geteuid() != 0:
            self.skipTest("needs root for rootful podman with --cpus")
        if not shutil.which("runc"):
            self.skipTest("runc is not installed (apt-get install -y runc)")

    def make_image(self):
        tmp = tempfile.mkdtemp(prefix="corral-sizing-rootfs-")
        self.addCleanup(shutil.rmtree, tmp, True)
        libs = build_rootfs(tmp)
        tag = f"localhost/corral-sizing-test:{os.getpid()}"
        tar = subprocess.Popen(["tar", "-C", tmp, "-c", "."], stdout=subprocess.PIPE)
        r = subprocess.run([PODMAN, "import", "-", tag], stdin=tar.stdout,
                           capture_output=True, text=True, timeout=120)
        tar.stdout.close()
        tar.wait()
        if r.returncode != 0:
            self.skipTest(f"podman import failed: {r.stderr.strip()}")
        image = r.stdout.strip().splitlines()[-1]
        self.addCleanup(podman, "rmi", "-f", image, check=False)
        note(f"image {tag} {image[:12]} with {len(libs)} libraries")
        return image

    def test_update_cpus_rescales_while_serving(self):
        image = self.make_image()
        port = free_port()
        name = f"corral-sizing-{os.getpid()}"
        r = podman("run", "-d", *RUN_FLAGS, "--cpus=1.5", "--network=host",
                   "--name", name, image,
                   "/corral-agent", "--log-format=json",
                   f"--listen=tcp://127.0.0.1:{port}", "--control-socket", "",
                   "--drain-delay=100ms", "--stop-timeout=10s",
                   "--", "/corral-test-worker", check=False)
        if r.returncode != 0:
            podman("rm", "-f", "-t", "0", name, check=False)
            self.skipTest(f"podman cannot run a container here: {r.stderr.strip()}")
        cid = r.stdout.strip().splitlines()[-1]
        self.addCleanup(podman, "rm", "-f", "-t", "0", cid, check=False)

        log = EventLog("podman")
        logs = subprocess.Popen([PODMAN, "logs", "-f", cid], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.addCleanup(self.stop_logs, logs, log)
        log.feed_stream(logs.stdout)

        sizing = log.wait("sizing", 20)
        started = log.wait("agent_started", 10)
        note(f"sizing: {sizing['msg']}")
        self.assertEqual(sizing.get("workers"), 2, sizing)
        self.assertRegex(sizing["msg"], r"^workers=2: cgroup v1 quota 1\.50 CPUs at ")
        self.assertIn("150000/100000", sizing["msg"])
        self.assertEqual(started.get("workers"), 2, started)
        self.assertIs(started.get("pid1"), True, started)
        log.wait("worker_ready", 15, worker=0)
        log.wait("worker_ready", 15, worker=1)

        load = Load(port, threads=6).start()
        self.addCleanup(load.stop)
        load.wait_ok(40, 15)
        load.wait_served_by(lambda i: i["worker"] == "1", 10, "an answer from worker 1")

        mark = len(log.snapshot()) - 1
        t0 = time.monotonic()
        podman("update", "--cpus=0.5", cid)
        down = log.wait("rescale", 10, after=mark, to=1)
        note(f"rescale {time.monotonic() - t0:.1f}s after podman update: {down['msg']}")
        self.assertEqual(down.get("from"), 2, down)
        self.assertIn("50000/100000", down["msg"])
        stopping = log.wait("worker_stopping", 10, after=down["_i"], worker=1)
        exited = log.wait("worker_exited", 20, after=stopping["_i"], worker=1,
                          pid=stopping["pid"])
        self.assertIs(exited.get("expected"), True, exited)
        note("drained worker: " + " | ".join(
            l for l in log.worker_lines(stopping["pid"]) if "drain" in l))
        after_exit = len(load.snapshot())
        load.wait_ok(30, 15)
        late = [r for r in load.snapshot()[after_exit:] if r.kind == "ok"]
        self.assertTrue(all("worker=0 " in r.body for r in late),
                        [r.body for r in late if "worker=0 " not in r.body][:3])

        mark = len(log.snapshot()) - 1
        podman("update", "--cpus=1.5", cid)
        up = log.wait("rescale", 10, after=mark, to=2)
        note(f"rescale back: {up['msg']}")
        log.wait("worker_ready", 15, after=up["_i"], worker=1)
        load.wait_ok(30, 15)

        results = load.stop()
        note(load.summary(results))
        failures = [r for r in results if r.kind != "ok"]
        self.assertEqual(failures, [], f"{len(failures)} failed requests; first: "
                         f"{failures[:5]}\n{log.excerpt()}")
        self.assertEqual(log.find("worker_killed"), [], log.excerpt())

        podman("stop", "-t", "20", cid, timeout=60)
        finished = log.wait("shutdown_finished", 10)
        state = podman("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip()
        note(f"podman stop: shutdown_finished {finished.get('exit_code')}, "
             f"container exit code {state}")
        self.assertEqual(state, "0")
        self.assertEqual(finished.get("exit_code"), 0, finished)

    @staticmethod
    def stop_logs(proc, log):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.eof.wait(5)
        proc.stdout.close()
        log.save()


if __name__ == "__main__":
    unittest.main()
