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
          CORRAL_CTL (corralctl to put in the image; default none),
          CORRAL_IMAGE (test this image instead of building one, e.g. one
          built from deploy/docker/Dockerfile; it is not removed),
          CORRAL_SLOW_PATH (default /?sleep_ms=3000 for the test worker,
          /heavy?n=... for corral-worker), CORRAL_IN_FLIGHT, CORRAL_KEEP_LOGS=DIR

Needs root, podman and runc (deploy/test/container-test.sh installs them),
and Debian's python3-grpcio for check 3.
"""

import concurrent.futures
import http.client
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
AGENT = os.environ.get("CORRAL_AGENT", os.path.join(REPO, "build/agent/corral-agent"))
WORKER = os.environ.get(
    "CORRAL_WORKER", os.path.join(REPO, "build/tests/worker/corral-test-worker"))
BUILD_IMAGE = os.path.join(REPO, "deploy/docker/build-local-image")
PODMAN = ["podman", "--runtime", "runc"]
CPUS = 1.5
STOP_TIMEOUT_S = 30      # podman stop -t: SIGKILL after this
DRAIN_DELAY = "1s"       # CORRAL_DRAIN_DELAY inside the container
AGENT_STOP_TIMEOUT = "15s"
SLOW_MS = 3000           # how long each in-flight request of the drain check takes


CTL = os.environ.get("CORRAL_CTL", "")
IMAGE = os.environ.get("CORRAL_IMAGE", "")
IN_FLIGHT_ENV = os.environ.get("CORRAL_IN_FLIGHT")


def slow_path(worker_name):
    """The drain check's slow request. The test worker sleeps without blocking
    (several in flight per worker); corral-worker's /heavy blocks its worker's
    loop for its whole run (one per worker, ~2-3 s of sqrt at 1.5 CPUs)."""
    if "CORRAL_SLOW_PATH" in os.environ:
        return os.environ["CORRAL_SLOW_PATH"]
    return "/heavy?n=1000000000" if worker_name == "corral-worker" else f"/?sleep_ms={SLOW_MS}"


def note(text):
    sys.stderr.write(f"  [{text}]\n")
    sys.stderr.flush()


def run(args, check=True, timeout=120, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {text}")
        time.sleep(interval)


def http_get(port, path, timeout=10):
    """One request on a new connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


# --- grpc.health.v1 without generated code: the two messages are tiny ------
SERVING, NOT_SERVING = 1, 2
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_check_request(service):
    data = service.encode()
    return b"\x0a" + _varint(len(data)) + data if data else b""


def decode_check_response(buf):
    """HealthCheckResponse.status (field 1, varint); 0 when absent."""
    i, status = 0, 0
    while i < len(buf):
        key = buf[i]
        i += 1
        if key == 0x08:
            shift = value = 0
            while True:
                b = buf[i]
                i += 1
                value |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            status = value
        else:
            raise ValueError(f"unexpected field key {key:#x} in HealthCheckResponse")
    return status


class HealthClient:
    """Probes like the kubelet: insecure channel, one deadline for dial + RPC."""

    def __init__(self, port):
        import grpc  # Debian's python3-grpcio
        self.grpc = grpc
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.check_rpc = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=encode_check_request,
            response_deserializer=decode_check_response)

    def check(self, service, timeout=1.0):
        """SERVING/NOT_SERVING/..., or the grpc.StatusCode of a failed call."""
        try:
            # wait_for_ready: like the kubelet's blocking dial, inside one deadline.
            return self.check_rpc(service, timeout=timeout, wait_for_ready=True)
        except self.grpc.RpcError as e:
            return e.code()

    def close(self):
        self.channel.close()


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


class ContainerTest(unittest.TestCase):
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
            for path, what in ((AGENT, "CORRAL_AGENT"), (WORKER, "CORRAL_WORKER")):
                if not os.access(path, os.X_OK):
                    raise AssertionError(f"{what}={path} is not an executable file: build first")
            tag = f"localhost/corral-deploy-test:{os.getpid()}"
            p = run([BUILD_IMAGE, "--tag", tag, "--agent", AGENT, "--worker", WORKER,
                     "--ctl", CTL or "none"], timeout=300)
            cls.image = p.stdout.strip().splitlines()[-1]
            cls.addClassCleanup(cls._remove_image)
            note(f"image {tag} = {cls.image[:12]} (worker {os.path.basename(WORKER)}"
                 f"{', corralctl' if CTL else ''})")
        cmd = json.loads(run(["podman", "image", "inspect", "--format", "{{json .Config.Cmd}}",
                              cls.image]).stdout)
        # CMD is ["--", "/usr/local/bin/<worker>", args...]
        cls.worker_name = os.path.basename(cmd[cmd.index("--") + 1] if "--" in cmd else cmd[0])
        cls.has_ctl, cls.has_grpc = inspect_image(cls.image)

        cls.http_port, cls.probe_port, cls.metrics_port = free_port(), free_port(), free_port()
        # Host network, loopback only: the traffic of this test never leaves 127.0.0.1.
        args = PODMAN + [
            "run", "-d", "--network", "host", f"--cpus={CPUS}",
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
            "--read-only", "--tmpfs", "/tmp:rw,size=16m",
            "--tmpfs", "/run/corral:rw,size=1m,mode=0750,U",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-e", f"CORRAL_LISTEN=tcp://127.0.0.1:{cls.http_port}",
            "-e", f"CORRAL_PROBE_PORT={cls.probe_port}",
            "-e", "CORRAL_PROBE_ADDRESS=127.0.0.1",
            "-e", f"CORRAL_HTTP_PORT={cls.metrics_port}",
            "-e", f"CORRAL_DRAIN_DELAY={DRAIN_DELAY}",
            "-e", f"CORRAL_STOP_TIMEOUT={AGENT_STOP_TIMEOUT}",
            "-e", "CORRAL_LOG_FORMAT=json",
            cls.image]
        cls.cid = run(args).stdout.strip()
        cls.addClassCleanup(cls._remove_container)
        note(f"container {cls.cid[:12]}: {' '.join(args[3:-1])}")
        cls.expected_workers = min(math.ceil(CPUS), os.cpu_count())

    @classmethod
    def _remove_container(cls):
        keep = os.environ.get("CORRAL_KEEP_LOGS")
        if keep and cls.cid:
            os.makedirs(keep, exist_ok=True)
            with open(os.path.join(keep, f"container-{cls.cid[:12]}.log"), "w") as f:
                f.write(run(["podman", "logs", cls.cid], check=False).stdout)
        if cls.cid:
            run(["podman", "rm", "-f", "-t", "0", cls.cid], check=False)

    @classmethod
    def _remove_image(cls):
        if cls.image:
            run(["podman", "rmi", "-f", cls.image], check=False)

    # --- helpers -----------------------------------------------------------
    @classmethod
    def events(cls):
        out = run(["podman", "logs", cls.cid], check=False)
        events = []
        for line in (out.stdout + out.stderr).splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("src") == "agent":
                events.append(obj)
        return events

    @classmethod
    def named(cls, name, events=None):
        return [e for e in (events if events is not None else cls.events())
                if e.get("event") == name]

    @classmethod
    def ready_pids(cls):
        """pids of the workers READY now, from the events."""
        live = {}
        for e in cls.events():
            if e.get("event") == "worker_ready":
                live[e["pid"]] = True
            elif e.get("event") == "worker_exited":
                live.pop(e["pid"], None)
        return set(live)

    def wait_ready(self, timeout=20):
        return wait_for(lambda: len(self.ready_pids()) >= self.expected_workers, timeout,
                        lambda: f"{self.expected_workers} READY workers; events: "
                                f"{[e.get('event') for e in self.events()]}")

    # --- checks, in order ----------------------------------------------------
    def test_1_pid1_and_sizing(self):
        config = json.loads(run(["podman", "image", "inspect", "--format", "{{json .Config}}",
                                 self.image]).stdout)
        self.assertEqual(config.get("Entrypoint"), ["/usr/local/bin/corral-agent"])
        self.assertRegex(config.get("User", ""), r"^[1-9][0-9]*(:[1-9][0-9]*)?$")
        self.assertIn(config.get("StopSignal"), ("SIGTERM", "15"))
        self.wait_ready()
        started = wait_for(lambda: self.named("agent_started"), 10, "agent_started")[0]
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
        client = HealthClient(self.probe_port)
        try:
            results = {s: wait_for(lambda s=s: client.check(s) == SERVING and SERVING, 15,
                                   lambda s=s: f"Check({s!r}) SERVING, last {client.check(s)}")
                       for s in ("liveness", "readiness", "")}
            note("grpc.health.v1 Check: " + ", ".join(
                f"{s or '(empty)'}={STATUS_NAMES[v]}" for s, v in results.items()))
            unknown = client.check("no-such-service")
            self.assertEqual(unknown, client.grpc.StatusCode.NOT_FOUND)
        finally:
            client.close()

    def test_4_sighup_reload_under_load(self):
        self.wait_ready()
        before = self.ready_pids()
        finished_before = len(self.named("reload_finished"))
        stop = threading.Event()
        results = {"ok": 0, "failed": 0, "errors": []}
        lock = threading.Lock()

        def load():
            while not stop.is_set():
                try:
                    status, _ = http_get(self.http_port, "/", timeout=5)
                    ok = status == 200
                    err = None if ok else f"HTTP {status}"
                except OSError as e:
                    ok, err = False, repr(e)
                with lock:
                    if ok:
                        results["ok"] += 1
                    else:
                        results["failed"] += 1
                        results["errors"].append(err)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            run(["podman", "kill", "--signal", "HUP", self.cid])
            wait_for(lambda: len(self.named("reload_finished")) > finished_before, 30,
                     "reload_finished")
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        after = self.ready_pids()
        slots = [e for e in self.named("reload_slot_done")]
        note(f"SIGHUP reload: {results['ok']} requests ok, {results['failed']} failed; "
             f"workers {sorted(before)} -> {sorted(after)}")
        self.assertEqual(results["failed"], 0, results["errors"][:5])
        self.assertGreater(results["ok"], 50)
        self.assertGreaterEqual(len(slots), self.expected_workers)
        self.assertEqual(len(after), self.expected_workers)
        self.assertFalse(before & after, "every worker should have been replaced")

    def test_5_corralctl_in_container(self):
        self.wait_ready()
        if not self.has_ctl:
            self.skipTest("the image has no corralctl (set CORRAL_CTL=build/ctl/corralctl)")
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
        grpc_client = HealthClient(self.probe_port) if self.has_grpc else None
        slow = slow_path(self.worker_name)
        in_flight = int(IN_FLIGHT_ENV or
                        (self.expected_workers if self.worker_name == "corral-worker" else 6))
        pool = concurrent.futures.ThreadPoolExecutor(in_flight + 1)
        try:
            inflight = [pool.submit(http_get, self.http_port, slow, 60)
                        for _ in range(in_flight)]
            time.sleep(0.5)  # all accepted and in progress
            self.assertFalse(any(f.done() for f in inflight),
                             f"{slow} answered too fast to test a drain")
            t0 = time.monotonic()
            stopper = pool.submit(run, ["podman", "stop", "-t", str(STOP_TIMEOUT_S), self.cid],
                                  True, STOP_TIMEOUT_S + 30)
            probe = None
            if grpc_client:
                # Readiness flips at once (within the drain delay); liveness stays up.
                probe = wait_for(
                    lambda: grpc_client.check("readiness", 0.5) == NOT_SERVING and
                    (grpc_client.check("liveness", 0.5),), 5,
                    "readiness NOT_SERVING after SIGTERM")
            stopper.result()
            elapsed = time.monotonic() - t0
            answers = [f.result() for f in inflight]
        finally:
            pool.shutdown(wait=True)
            if grpc_client:
                grpc_client.close()
        code = int(run(["podman", "inspect", "--format", "{{.State.ExitCode}}",
                        self.cid]).stdout.strip())
        events = self.events()
        finished = self.named("shutdown_finished", events)
        killed = self.named("worker_killed", events)
        note(f"podman stop: exit code {code} after {elapsed:.1f}s (timeout {STOP_TIMEOUT_S}s); "
             f"{sum(1 for s, _ in answers if s == 200)}/{in_flight} in-flight {slow} "
             f"completed with 200" + (f"; readiness NOT_SERVING while draining, liveness "
                                      f"{STATUS_NAMES.get(probe[0], probe[0])}" if probe else ""))
        self.assertEqual([s for s, _ in answers], [200] * in_flight, answers)
        if probe:
            self.assertEqual(probe[0], SERVING, "liveness must stay SERVING while draining")
        self.assertEqual(code, 0)
        self.assertLess(elapsed, STOP_TIMEOUT_S / 2, "the drain should finish well inside -t")
        self.assertTrue(finished, "no shutdown_finished event")
        self.assertEqual(finished[-1]["exit_code"], 0)
        self.assertIs(finished[-1]["killed"], False)
        self.assertFalse(killed, f"workers were killed: {killed}")
        self.assertTrue(self.named("shutdown_started", events))


if __name__ == "__main__":
    unittest.main(verbosity=2)
