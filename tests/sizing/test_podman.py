"""In a real container: podman (runc) --cpus=1.5 gives 2 workers, and
`podman update --cpus=0.5` brings the agent to 1 worker while it serves.

The image is built here from the local binaries (corral-agent, the test
worker, the shared libraries ldd lists and the loader) into a temporary
rootfs and imported as localhost/corral-sizing-test:<pid>. The agent runs as
PID 1 with --network=host on a loopback port it binds itself (port 0; the
test reads it from agent_started). The container and the image are removed
by id even when a check fails.

Skips (with podman's exact error) when podman is missing or cannot run a
container here. runc, not crun (crun refuses this hybrid cgroup host).
"""

import os
import re
import shutil
import subprocess
import time
import unittest

from pylib import paths
from pylib.load import sleep_paths
from pylib.podman import PODMAN, ContainerLog, podman, remove_container, remove_image
from pylib.testcase import TestCase, note

AGENT = paths.binary("CORRAL_AGENT")
WORKER = paths.binary("CORRAL_TEST_WORKER")
RUN_FLAGS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024",
             "--ulimit", "nproc=1024:1024"]


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
class PodmanRescaleTest(TestCase):

    def setUp(self):
        paths.require(("CORRAL_AGENT", AGENT), ("CORRAL_TEST_WORKER", WORKER))
        if os.geteuid() != 0:
            self.skipTest("needs root for rootful podman with --cpus")
        if not shutil.which("runc"):
            self.skipTest("runc is not installed (apt-get install -y runc)")

    def make_image(self):
        tmp = self.temp_dir("corral-sizing-rootfs-")
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
        self.addCleanup(remove_image, image)
        note(f"image {tag} {image[:12]} with {len(libs)} libraries")
        return image

    def test_update_cpus_rescales_while_serving(self):
        image = self.make_image()
        name = f"corral-sizing-{os.getpid()}"
        r = podman("run", "-d", *RUN_FLAGS, "--cpus=1.5", "--network=host",
                   "--name", name, image,
                   "/corral-agent", "--log-format=json",
                   "--listen=tcp://127.0.0.1:0", "--control-socket", "",
                   "--drain-delay=100ms", "--stop-timeout=10s",
                   "--", "/corral-test-worker", check=False)
        if r.returncode != 0:
            remove_container(name)
            self.skipTest(f"podman cannot run a container here: {r.stderr.strip()}")
        cid = r.stdout.strip().splitlines()[-1]
        self.addCleanup(remove_container, cid)

        logs = ContainerLog(cid)
        self.addCleanup(self.save_logs, logs)
        log = logs.log

        sizing = log.wait_event("sizing", 20)
        started = log.wait_event("agent_started", 10)
        note(f"sizing: {sizing['msg']}")
        self.assertEqual(sizing.get("workers"), 2, sizing)
        self.assertRegex(sizing["msg"], r"^workers=2: cgroup v1 quota 1\.50 CPUs at ")
        self.assertIn("150000/100000", sizing["msg"])
        self.assertEqual(started.get("workers"), 2, started)
        self.assertIs(started.get("pid1"), True, started)
        port = int(started["listen"].rsplit(":", 1)[1])
        log.wait_event("worker_ready", 15, worker=0)
        log.wait_event("worker_ready", 15, worker=1)

        load = self.start_load(port, threads=6, paths=sleep_paths(), timeout=15.0)
        load.wait_ok(40, 15)
        load.wait_served_by(lambda i: i["worker"] == "1", 10, "an answer from worker 1")

        mark = log.mark()
        t0 = time.monotonic()
        podman("update", "--cpus=0.5", cid)
        down = log.wait_event("rescale", 10, after=mark, to=1)
        note(f"rescale {time.monotonic() - t0:.1f}s after podman update: {down['msg']}")
        self.assertEqual(down.get("from"), 2, down)
        self.assertIn("50000/100000", down["msg"])
        stopping = log.wait_event("worker_stopping", 10, after=down["_i"], worker=1)
        exited = log.wait_event("worker_exited", 20, after=stopping["_i"], worker=1,
                          pid=stopping["pid"])
        self.assertIs(exited.get("expected"), True, exited)
        note("drained worker: " + " | ".join(
            l for l in log.worker_text(stopping["pid"]) if "drain" in l))
        # (Requests sent after the exit was seen: one sent before may end later.)
        load.wait_ok(30, 15)
        late = [r for r in load.snapshot() if r.kind == "ok" and r.t_start > exited["_t"]]
        self.assertTrue(late, "no request answered after the drain")
        self.assertEqual([r.body for r in late if "worker=0 " not in r.body][:3], [])

        mark = log.mark()
        podman("update", "--cpus=1.5", cid)
        up = log.wait_event("rescale", 10, after=mark, to=2)
        note(f"rescale back: {up['msg']}")
        log.wait_event("worker_ready", 15, after=up["_i"], worker=1)
        load.wait_ok(30, 15)

        results = load.stop()

        self.assertNoFailedRequests(results, log.excerpt())
        self.assertEqual(log.agent_events("worker_killed"), [], log.excerpt())

        podman("stop", "-t", "20", cid, timeout=60)
        finished = log.wait_event("shutdown_finished", 10)
        state = podman("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip()
        note(f"podman stop: shutdown_finished {finished.get('exit_code')}, "
             f"container exit code {state}")
        self.assertEqual(state, "0")
        self.assertEqual(finished.get("exit_code"), 0, finished)

    def save_logs(self, logs):
        log_dir = os.environ.get("CORRAL_TEST_LOG_DIR")
        logs.close(os.path.join(log_dir, f"{self.id()}.log") if log_dir else None)


if __name__ == "__main__":
    unittest.main()
