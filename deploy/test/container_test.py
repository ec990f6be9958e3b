#!/usr/bin/python3
"""Container test: corral's runtime image under real podman + runc.

Builds the image from local binaries with deploy/docker/build-local-image,
runs it the way Kubernetes' restricted profile would (non-root from the
image, read-only root with tmpfs for /tmp and /run/corral, no capabilities,
no-new-privileges, --cpus=1.5) and checks, from outside:

  1. the agent is PID 1 and sized the pool from the CPU limit: --cpus=1.5
     gives 2 workers (the 'sizing' and 'agent_started' JSON log events);
  2. requests are served;
  3. a grpc.health.v1 client (what the kubelet's gRPC probe does) sees
     liveness/readiness SERVING on the probe port;
  4. `podman kill --signal HUP` reloads every worker with zero failed
     requests under load;
  5. `podman exec CONTAINER corralctl status` works (what
     `kubectl exec deploy/corral -- corralctl status` does), when the image
     has corralctl;
  6. `podman stop` drains: readiness goes NOT_SERVING, every in-flight slow
     request completes, and the container exits 0 well inside the timeout.

Every container and image it creates is removed by id, also on failure.

  /usr/bin/python3 deploy/test/container_test.py [-v]
      env CORRAL_AGENT, CORRAL_WORKER (default build/tests/worker/corral-test-worker),
          CORRAL_CTL (corralctl to put in the image; default build/ctl/corralctl,
          required; "none" leaves it out),
          CORRAL_IMAGE (test this image instead of building one, e.g. one
          built from deploy/docker/Dockerfile; it is not removed),
          CORRAL_SLOW_PATH (default /?sleep_ms=3000 for the test worker,
          /heavy?n=... for corral-worker), CORRAL_IN_FLIGHT, CORRAL_KEEP_LOGS=DIR

Needs root, podman and runc (deploy/test/container-test.sh installs them),
and Debian's python3-grpcio for check 3.
"""

import concurrent.futures
import json
import math
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))  # tests/pylib, from any directory

from pylib import paths, procfs  # noqa: E402
from pylib.grpc_health import NOT_SERVING, SERVING, STATUS_NAMES  # noqa: E402
from pylib.http_client import Connection, http_get  # noqa: E402
from pylib.podman import ContainerLog, remove_container, remove_image, run  # noqa: E402
from pylib.testcase import TestCase, note  # noqa: E402
from pylib.waiting import wait_for  # noqa: E402

AGENT = paths.binary("CORRAL_AGENT")
WORKER = os.environ.get("CORRAL_WORKER", paths.binary("CORRAL_TEST_WORKER"))
BUILD_IMAGE = os.path.join(REPO, "deploy/docker/build-local-image")
PODMAN = ["podman", "--runtime", "runc"]
CPUS = 1.5
STOP_TIMEOUT_S = 30      # podman stop -t: SIGKILL after this
DRAIN_DELAY = "1s"       # CORRAL_DRAIN_DELAY inside the container
AGENT_STOP_TIMEOUT = "15s"
SLOW_MS = 3000           # how long each in-flight request of the drain check takes


# corralctl goes into the image: $CORRAL_CTL, else the build's; "none" leaves
# it out (check 5 then skips, saying so).
CTL = os.environ.get("CORRAL_CTL") or paths.binary("CORRALCTL")
if CTL == "none":
    CTL = ""
IMAGE = os.environ.get("CORRAL_IMAGE", "")
IN_FLIGHT_ENV = os.environ.get("CORRAL_IN_FLIGHT")


def slow_path(worker_name):
    """The drain check's slow request. The test worker sleeps without blocking
    (several in flight per worker); corral-worker's /heavy blocks its worker's
    loop for its whole run (one per worker, ~2-3 s of sqrt at 1.5 CPUs)."""
    if "CORRAL_SLOW_PATH" in os.environ:
        return os.environ["CORRAL_SLOW_PATH"]
    return "/heavy?n=1000000000" if worker_name == "corral-worker" else f"/?sleep_ms={SLOW_MS}"


def answer(future):
    """The status of a request's response, or how it failed (its kind)."""
    try:
        return future.result().status
    except OSError as e:
        return getattr(e, "kind", repr(e))


def health_client(port):
    from pylib.grpc_health import HealthClient  # Debian's python3-grpcio
    return HealthClient(f"127.0.0.1:{port}")


def inspect_image(image):
    """(has corralctl, has libgrpc) from the image's files (podman image mount)."""
    root = run(["podman", "image", "mount", image]).stdout.strip()
    try:
        has_ctl = os.path.exists(os.path.join(root, "usr/local/bin/corralctl"))
        libdir = os.path.join(root, "usr/lib/x86_64-linux-gnu")
        has_grpc = os.path.isdir(libdir) and any(n.startswith("libgrpc") for n in os.listdir(libdir))
        return has_ctl, has_grpc
    finally:
        run(["podman", "image", "unmount", image], check=False)


class ContainerTest(TestCase):
    image = None
    cid = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (rootful podman with runc)")
        if IMAGE:
            cls.image = run(["podman", "image", "inspect", "--format", "{{.Id}}", IMAGE]).stdout.strip()
            note(f"image {IMAGE} = {cls.image[:12]} (given; kept)")
        else:
            paths.require(("CORRAL_AGENT", AGENT), ("CORRAL_WORKER", WORKER),
                          *((("CORRAL_CTL", CTL),) if CTL else ()))
            tag = f"localhost/corral-deploy-test:{os.getpid()}"
            p = run([BUILD_IMAGE, "--tag", tag, "--agent", AGENT, "--worker", WORKER,
                     "--ctl", CTL or "none"], timeout=300)
            cls.image = p.stdout.strip().splitlines()[-1]
            cls.addClassCleanup(remove_image, cls.image)
            note(f"image {tag} = {cls.image[:12]} (worker {os.path.basename(WORKER)}"
                 f"{', corralctl' if CTL else ''})")
        cmd = json.loads(run(["podman", "image", "inspect", "--format", "{{json .Config.Cmd}}",
                              cls.image]).stdout)
        # CMD is ["--", "/usr/local/bin/<worker>", args...]
        cls.worker_name = os.path.basename(cmd[cmd.index("--") + 1] if "--" in cmd else cmd[0])
        cls.has_ctl, cls.has_grpc = inspect_image(cls.image)

        # Host network, loopback only: the traffic of this test never leaves
        # 127.0.0.1. The agent binds every port itself (0 / auto) and says in
        # its log which it got: no port is guessed.
        args = PODMAN + [
            "run", "-d", "--network", "host", f"--cpus={CPUS}",
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
            "--read-only", "--tmpfs", "/tmp:rw,size=16m",
            "--tmpfs", "/run/corral:rw,size=1m,mode=0750,U",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-e", "CORRAL_LISTEN=tcp://127.0.0.1:0",
            "-e", "CORRAL_PROBE_PORT=auto",
            "-e", "CORRAL_PROBE_ADDRESS=127.0.0.1",
            "-e", "CORRAL_HTTP_PORT=auto",
            "-e", f"CORRAL_DRAIN_DELAY={DRAIN_DELAY}",
            "-e", f"CORRAL_STOP_TIMEOUT={AGENT_STOP_TIMEOUT}",
            "-e", "CORRAL_LOG_FORMAT=json",
            # test_6 puts one slow request on each worker, one at a time, and
            # needs an idle worker to take the next: a shared queue does that.
            # With --cap-drop ALL, auto picks reuseport, whose per-slot queues
            # may put it behind the busy worker (docs/balance.md); the drain,
            # which is what test_6 checks, is the same in every mode.
            "-e", "CORRAL_BALANCE=shared",
            cls.image]
        cls.cid = run(args).stdout.strip()
        cls.addClassCleanup(remove_container, cls.cid)
        note(f"container {cls.cid[:12]}: {' '.join(args[3:-1])}")
        cls.logs = ContainerLog(cls.cid)
        cls.addClassCleanup(cls._close_logs)
        cls.log = cls.logs.log
        cls.expected_workers = min(math.ceil(CPUS), os.cpu_count())
        started = cls.log.wait_event("agent_started", 20)
        cls.http_port = int(started["listen"].rsplit(":", 1)[1])
        listening = cls.log.wait_event("control_listening", 5)
        cls.probe_port = listening.get("probe_port")
        note(f"ports: http {cls.http_port}, probe {cls.probe_port}, "
             f"metrics {listening.get('http_port')}")

    @classmethod
    def _close_logs(cls):
        keep = os.environ.get("CORRAL_KEEP_LOGS")
        cls.logs.close(os.path.join(keep, f"container-{cls.cid[:12]}.log") if keep else None)

    # --- helpers -----------------------------------------------------------
    @classmethod
    def named(cls, name):
        return cls.log.agent_events(name)

    @classmethod
    def ready_pids(cls):
        """pids of the workers READY now, from the events."""
        return set(cls.log.ready_workers().values())

    def wait_ready(self, timeout=20):
        return self.log.wait_until(lambda: len(self.ready_pids()) >= self.expected_workers,
                                   timeout, f"{self.expected_workers} READY workers")

    # --- checks, in order ----------------------------------------------------
    def test_1_pid1_and_sizing(self):
        config = json.loads(run(["podman", "image", "inspect", "--format", "{{json .Config}}",
                                 self.image]).stdout)
        self.assertEqual(config.get("Entrypoint"), ["/usr/local/bin/corral-agent"])
        self.assertRegex(config.get("User", ""), r"^[1-9][0-9]*(:[1-9][0-9]*)?$")
        self.assertIn(config.get("StopSignal"), ("SIGTERM", "15"))
        self.wait_ready()
        started = self.named("agent_started")[0]
        note(f"agent_started: pid={started['pid']} pid1={started['pid1']} "
             f"workers={started['workers']}")
        self.assertEqual(started["pid"], 1)
        self.assertIs(started["pid1"], True)
        self.assertEqual(started["workers"], self.expected_workers)
        sizing = self.named("sizing")
        self.assertTrue(sizing, "no 'sizing' event")
        note(f"sizing: {sizing[0]['msg'][:140]}")
        self.assertEqual(sizing[0]["workers"], self.expected_workers)
        self.assertEqual(sizing[0].get("rule"), "cpu quota")
        top = run(["podman", "top", self.cid, "pid", "user", "args"]).stdout.splitlines()
        pid1 = [l for l in top[1:] if l.split()[0] == "1"]
        self.assertTrue(pid1 and "/usr/local/bin/corral-agent" in pid1[0], top)
        self.assertNotIn("root", pid1[0].split()[1], "the agent must not run as root")
        note(f"podman top: {pid1[0].strip()}")
        self.assertEqual(len(self.ready_pids()), self.expected_workers)

    def test_2_requests_served(self):
        self.wait_ready()
        seen = set()
        for _ in range(30):
            status, body = http_get(self.http_port, "/")
            self.assertEqual(status, 200, body)
            seen.add(body.strip()[:60])
        note(f"30 GET / -> 200; {len(seen)} distinct answers, e.g. {sorted(seen)[0]!r}")

    def test_3_grpc_health_probe(self):
        self.wait_ready()
        if not self.has_grpc:
            self.skipTest("this corral-agent build has no gRPC probe server "
                          "(the image holds no libgrpc++): build the agent with agent/rpc")
        client = health_client(self.probe_port)
        try:
            results = {s: wait_for(lambda s=s: client.probe(s) == SERVING and SERVING, 15,
                                   lambda s=s: f"Check({s!r}) SERVING, last {client.probe(s)}")
                       for s in ("liveness", "readiness", "")}
            note("grpc.health.v1 Check: " + ", ".join(
                f"{s or '(empty)'}={STATUS_NAMES[v]}" for s, v in results.items()))
            import grpc
            self.assertEqual(client.probe("no-such-service"), grpc.StatusCode.NOT_FOUND)
        finally:
            client.close()

    def test_4_sighup_reload_under_load(self):
        self.wait_ready()
        before = self.ready_pids()
        mark = self.log.mark()
        load = self.start_load(self.http_port, threads=4, pace=0, timeout=5)
        load.wait_ok(50, 15)
        run(["podman", "kill", "--signal", "HUP", self.cid])
        self.log.wait_event("reload_finished", 30, after=mark)
        load.wait_ok(50, 15)  # the new workers serve
        results = load.stop()
        after = self.ready_pids()
        slots = self.log.agent_events("reload_slot_done", after=mark)
        note(f"SIGHUP reload: workers {sorted(before)} -> {sorted(after)}")
        self.assertNoFailedRequests(results)
        self.assertGreater(len(results), 100)
        self.assertGreaterEqual(len(slots), self.expected_workers)
        self.assertEqual(len(after), self.expected_workers)
        self.assertFalse(before & after, "every worker should have been replaced")

    def test_5_corralctl_in_container(self):
        self.wait_ready()
        if not self.has_ctl:
            self.skipTest("the image has no corralctl (CORRAL_CTL=none, or a given CORRAL_IMAGE without it)")
        # What `kubectl exec deploy/corral -- corralctl status` does: same user,
        # same PATH, the agent's socket in /run/corral.
        p = run(["podman", "exec", self.cid, "corralctl", "status"], check=False, timeout=30)
        out = (p.stdout + p.stderr).strip()
        note(f"podman exec corralctl status -> exit {p.returncode}: " +
             " | ".join(out.splitlines()[:4])[:300])
        self.assertEqual(p.returncode, 0, out)
        p = run(["podman", "exec", self.cid, "corralctl", "-o", "json", "status"],
                check=False, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(str(self.expected_workers), p.stdout)

    def test_6_podman_stop_drains(self):
        self.wait_ready()
        grpc_client = health_client(self.probe_port) if self.has_grpc else None
        slow = slow_path(self.worker_name)
        in_flight = int(IN_FLIGHT_ENV or
                        (self.expected_workers if self.worker_name == "corral-worker" else 6))
        pool = concurrent.futures.ThreadPoolExecutor(in_flight + 1)
        conns = [Connection(self.http_port, timeout=60) for _ in range(in_flight)]
        try:
            inflight = []
            for k, c in enumerate(conns):
                # One at a time, each read by a worker before the next is sent:
                # a corral-worker busy with /heavy accepts no more, so the
                # next goes to a free one, and every request is in progress.
                c.connect()
                inflight.append(pool.submit(c.request, "GET", slow, {"Connection": "close"}))
                wait_for(lambda: procfs.server_has_read(self.http_port, [c.local_port]), 10,
                         f"slow request {k + 1} of {in_flight} read by a worker")
            self.assertFalse(any(f.done() for f in inflight),
                             f"{slow} answered too fast to test a drain")
            mark = self.log.mark()
            t0 = time.monotonic()
            stopper = pool.submit(run, ["podman", "stop", "-t", str(STOP_TIMEOUT_S), self.cid],
                                  True, STOP_TIMEOUT_S + 30)
            probe = None
            if grpc_client:
                # Readiness flips at once (within the drain delay); liveness stays up.
                probe = wait_for(
                    lambda: grpc_client.probe("readiness", 0.5) == NOT_SERVING and
                    (grpc_client.probe("liveness", 0.5),), 5,
                    "readiness NOT_SERVING after SIGTERM")
            stopper.result()
            elapsed = time.monotonic() - t0
            answers = [answer(f) for f in inflight]
        finally:
            pool.shutdown(wait=True)
            for c in conns:
                c.close()
            if grpc_client:
                grpc_client.close()
        code = int(run(["podman", "inspect", "--format", "{{.State.ExitCode}}",
                        self.cid]).stdout.strip())
        finished = self.log.wait_event("shutdown_finished", 10, after=mark)
        self.log.eof.wait(10)  # the container is gone: every line is in
        killed = self.log.agent_events("worker_killed", after=mark)
        note(f"podman stop: exit code {code} after {elapsed:.1f}s (timeout {STOP_TIMEOUT_S}s); "
             f"{answers.count(200)}/{in_flight} in-flight {slow} "
             f"completed with 200" + (f"; readiness NOT_SERVING while draining, liveness "
                                      f"{STATUS_NAMES.get(probe[0], probe[0])}" if probe else ""))
        self.assertEqual(answers, [200] * in_flight,
                         f"in-flight {slow} requests; worker_killed: {killed}")
        if probe:
            self.assertEqual(probe[0], SERVING, "liveness must stay SERVING while draining")
        self.assertEqual(code, 0)
        self.assertLess(elapsed, STOP_TIMEOUT_S / 2, "the drain should finish well inside -t")
        self.assertEqual(finished["exit_code"], 0)
        self.assertIs(finished["killed"], False)
        self.assertFalse(killed, f"workers were killed: {killed}")
        self.assertTrue(self.log.agent_events("shutdown_started", after=mark))


if __name__ == "__main__":
    unittest.main(verbosity=2)
