#!/usr/bin/python3
"""Bundle test: the corral bundle (/corral, deploy/docker/build-bundle) runs
the agent as PID 1 in images that have nothing of corral's, under real
podman + runc:

  DebianPython   debian 12 (debootstrap) + python3, built from the docs'
                 Dockerfile deploy/your-app/python (a stdlib server on fd 3)
  Node           the same base + the machine's nodejs package (Node 20),
                 built from deploy/docker/Dockerfile.node: the Express
                 example on @corral/node (npm ci inside the build)
  Distroless     FROM scratch: /corral and one static worker, nothing else
  Musl           FROM scratch: musl's libc and loader (Debian's `musl`) and a
                 worker linked against it, no glibc but the bundle's
  Go             deploy/your-app/go: its main.go built on the host with
                 Debian's Go (CGO_ENABLED=0), its Dockerfile's final stage
                 on scratch (the build stage's golang image is not pullable)
  Cpp            deploy/your-app/cpp: its Dockerfile's final stage on the
                 Debian 12 base (apt-get of the SDK's runtime libraries) and
                 corral-worker, the SDK's reference app, from the build tree

In each: the agent is PID 1 and runs from /corral (its own libc mapped); its
workers map nothing of /corral and get the image's environment and no
LD_* variable; requests are served on the agent's port; the gRPC readiness
probe answers SERVING; corralctl from the bundle talks to the agent; a
SIGHUP reload replaces every worker without a failed request; `podman
stop` drains (a slow in-flight request completes) and the container exits 0.
Every image and container it creates is removed by id, also on failure.

  /usr/bin/python3 deploy/test/bundle_test.py [-v] [Class]
      env CORRAL_AGENT, CORRALCTL, CORRAL_SDK_APP (corral-worker) (defaults
      under build/), CORRAL_KEEP_LOGS=DIR
"""

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))

from pylib import paths, procfs  # noqa: E402
from pylib.grpc_health import SERVING, HealthClient  # noqa: E402
from pylib.http_client import Connection, http_get  # noqa: E402
from pylib.podman import ContainerLog, remove_container, remove_image, run  # noqa: E402
from pylib.testcase import TestCase, note  # noqa: E402
from pylib.waiting import wait_for  # noqa: E402

AGENT = paths.binary("CORRAL_AGENT")
CTL = paths.binary("CORRALCTL")
PODMAN = ["podman", "--runtime", "runc"]
BUILD_FLAGS = ["--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
TAG = f"localhost/corral-bundle-test-{os.getpid()}"
# Set by setUpModule; every id here is removed in the module cleanups.
S = {"from": set()}


def build(context, tag, dockerfile=None, build_args=(), timeout=300, extra=()):
    """podman build, the image id. The build's every image (each step's
    "--> ID", the final one too) is removed at module cleanup, also when the
    build fails; --no-cache, so none of them is someone else's cached layer."""
    iid = os.path.join(S["work"], f"iid-{tag.rsplit(':', 1)[-1]}")
    # Not --layers=false: podman 4.3 then deletes the image a stage is FROM (the bundle).
    args = PODMAN + ["build", *BUILD_FLAGS, "--no-cache", *extra, "--iidfile", iid, "-t", tag]
    if dockerfile:
        args += ["-f", dockerfile]
    for a in build_args:
        args += ["--build-arg", a]
    p = run(args + [context], check=False, timeout=timeout)
    for line in (p.stdout + p.stderr).splitlines():
        m = re.match(r"^--> ([0-9a-f]{11,64})$", line.strip())
        if m and not any(known.startswith(m.group(1)) for known in S["from"]):
            unittest.addModuleCleanup(remove_image, m.group(1))
    if p.returncode != 0:
        raise AssertionError(f"podman build {tag} failed ({p.returncode}):\n"
                             f"{(p.stdout + p.stderr)[-3000:]}")
    image = read(iid).strip().split(":")[-1]
    unittest.addModuleCleanup(remove_image, image)
    S["from"].add(image)
    return image


def read(path):
    with open(path) as f:
        return f.read()


def image_size(image):
    return int(run(["podman", "image", "inspect", "--format", "{{.Size}}", image]).stdout)


def setUpModule():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (rootful podman with runc)")
    paths.require(("CORRAL_AGENT", AGENT), ("CORRALCTL", CTL))
    S["work"] = tempfile.mkdtemp(prefix="corral-bundle-test-")
    unittest.addModuleCleanup(shutil.rmtree, S["work"], True)
    bundle_dir = os.path.join(S["work"], "bundle", "corral")
    p = run([os.path.join(REPO, "deploy/docker/build-bundle"), "--agent", AGENT, "--ctl", CTL,
             "--out", bundle_dir, "--tar", os.path.join(S["work"], "corral-bundle.tar.gz"),
             "--image", f"{TAG}:bundle"], timeout=300)
    S["bundle"] = p.stdout.strip().splitlines()[-1]
    S["from"].add(S["bundle"])
    unittest.addModuleCleanup(remove_image, S["bundle"])
    note(f"bundle image {S['bundle'][:12]}: {image_size(S['bundle']) / 1e6:.1f} MB; tarball "
         f"{os.path.getsize(os.path.join(S['work'], 'corral-bundle.tar.gz')) / 1e6:.1f} MB")
    # Debian 12 from Debian's archive (cached tarball; ~4 min the first time).
    p = run([os.path.join(HERE, "base-rootfs.sh")], check=False, timeout=900)
    if p.returncode == 0:
        tar = p.stdout.strip().splitlines()[-1]
        base = run(["podman", "import", "--change", 'CMD ["/bin/bash"]', tar,
                    f"{TAG}:debian12"], timeout=300).stdout.strip().split(":")[-1]
        unittest.addModuleCleanup(remove_image, base)
        S["debian"] = base
        S["from"].add(base)
    else:
        S["debian_error"] = p.stderr.strip()[-500:]


def need_debian():
    if "debian" not in S:
        raise unittest.SkipTest(f"no Debian 12 base (deploy/test/base-rootfs.sh): {S.get('debian_error')}")


def compile_worker(compiler, out, *flags):
    if not shutil.which(compiler):
        raise unittest.SkipTest(f"{compiler} not installed (apt-get install gcc musl-tools)")
    run([compiler, "-O2", "-Wall", "-Wextra", "-Werror", *flags, "-o", out,
         os.path.join(HERE, "fd3-worker.c")], timeout=120)


class BundleCase(TestCase):
    """One image, one container, the checks in order. Subclasses make the
    image (make_image) and say how to get a slow request (SLOW_PATH)."""
    SLOW_PATH = "/?sleep_ms=2500"
    GREETING = "hello from"
    CPUS = 1.5           # -> 2 workers (ceil)
    EXTRA_RUN = ()
    WORKER_LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"  # the image's own; None: static

    @classmethod
    def make_image(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        if cls is BundleCase:
            raise unittest.SkipTest("base class")
        t0 = time.monotonic()
        cls.image = cls.make_image()
        note(f"{cls.__name__}: image {cls.image[:12]}, {image_size(cls.image) / 1e6:.1f} MB, "
             f"built in {time.monotonic() - t0:.0f}s")
        cls.config = json.loads(run(["podman", "image", "inspect", "--format", "{{json .Config}}",
                                     cls.image]).stdout)
        cls.overrides = {
            "CORRAL_LISTEN": "tcp://127.0.0.1:0", "CORRAL_PROBE_PORT": "auto",
            "CORRAL_PROBE_ADDRESS": "127.0.0.1", "CORRAL_HTTP_PORT": "auto",
            "CORRAL_DRAIN_DELAY": "1s", "CORRAL_STOP_TIMEOUT": "15s", "CORRAL_LOG_FORMAT": "json",
        }
        args = PODMAN + [
            "run", "-d", "--network", "host", f"--cpus={cls.CPUS}",
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
            "--user", "10001:10001", "--read-only", "--tmpfs", "/tmp:rw,size=16m",
            "--tmpfs", "/run/corral:rw,size=1m,mode=0750,U",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges", *cls.EXTRA_RUN]
        for k, v in cls.overrides.items():
            args += ["-e", f"{k}={v}"]
        cls.cid = run(args + [cls.image]).stdout.strip()
        cls.addClassCleanup(remove_container, cls.cid)
        cls.logs = ContainerLog(cls.cid)
        cls.addClassCleanup(cls._close_logs)
        cls.log = cls.logs.log
        started = cls.log.wait_event("agent_started", 30)
        cls.http_port = int(started["listen"].rsplit(":", 1)[1])
        cls.probe_port = cls.log.wait_event("control_listening", 10).get("probe_port")
        cls.host_pid = int(run(["podman", "inspect", "--format", "{{.State.Pid}}", cls.cid]).stdout)
        cls.expected = min(2, os.cpu_count())

    @classmethod
    def _close_logs(cls):
        keep = os.environ.get("CORRAL_KEEP_LOGS")
        cls.logs.close(os.path.join(keep, f"bundle-{cls.__name__}.log") if keep else None)

    def wait_ready(self, timeout=60):
        self.log.wait_until(lambda: len(self.log.ready_workers()) >= self.expected or
                            self.log.agent_events("gave_up"), timeout, f"{self.expected} READY workers")
        gave_up = self.log.agent_events("gave_up")
        self.assertFalse(gave_up, f"the agent gave up: {gave_up}\n{self.log.excerpt(30)}")

    def workers_host_pids(self):
        return procfs.children(self.host_pid)

    # --- checks, in order ----------------------------------------------------
    def test_1_pid1_from_the_bundle(self):
        self.wait_ready()
        started = self.log.agent_events("agent_started")[0]
        self.assertEqual(started["pid"], 1)
        self.assertEqual(os.readlink(f"/proc/{self.host_pid}/exe"), "/corral/bin/corral-agent")
        agent_maps = read(f"/proc/{self.host_pid}/maps")
        self.assertIn("/corral/lib/libc.so.6", agent_maps, "the agent must use the bundle's libc")
        workers = self.workers_host_pids()
        self.assertEqual(len(workers), self.expected, workers)
        image_env = dict(e.split("=", 1) for e in self.config.get("Env") or [])
        for pid in workers:
            maps = read(f"/proc/{pid}/maps")
            self.assertNotIn("/corral/", maps, f"worker {pid} maps bundle files")
            if self.WORKER_LIBC:
                self.assertIn(self.WORKER_LIBC, maps, f"worker {pid}: the image's libc")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(e.split("=", 1) for e in f.read().decode().split("\0") if "=" in e)
            leaked = [k for k in env if k.startswith("LD_")]
            self.assertEqual(leaked, [], f"worker {pid} got loader variables")
            for k, v in image_env.items():
                if k not in self.overrides:
                    self.assertEqual(env.get(k), v, f"worker {pid}: the image's {k}")
        libc = sorted({line.split()[-1] for line in read(f"/proc/{workers[0]}/maps").splitlines()
                       if "libc.so" in line or "ld-musl" in line})
        note(f"{type(self).__name__}: PID 1 = /corral/bin/corral-agent (bundle libc); "
             f"worker {os.readlink(f'/proc/{workers[0]}/exe')} maps {libc or 'no libc (static)'}")

    def test_2_serves_and_probes(self):
        self.wait_ready()
        for _ in range(20):
            status, body = http_get(self.http_port, "/")
            self.assertEqual(status, 200, body)
            self.assertIn(self.GREETING, body)
        client = HealthClient(f"127.0.0.1:{self.probe_port}")
        try:
            wait_for(lambda: client.probe("readiness") == SERVING, 15, "readiness SERVING")
        finally:
            client.close()
        p = run(["podman", "exec", self.cid, "/corral/bin/corralctl", "status"], check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        note(f"{type(self).__name__}: 20 GET / -> 200 ({body.strip()[:50]!r}); readiness SERVING; "
             f"corralctl status: {p.stdout.splitlines()[0][:80] if p.stdout else ''}")

    def test_3_reload(self):
        self.wait_ready()
        before = set(self.log.ready_workers().values())
        mark = self.log.mark()
        load = self.start_load(self.http_port, threads=2, pace=0.01, timeout=10)
        load.wait_ok(20, 20)
        run(["podman", "kill", "--signal", "HUP", self.cid])
        self.log.wait_event("reload_finished", 60, after=mark)
        self.wait_ready()
        load.wait_ok(20, 20)
        results = load.stop()
        after = set(self.log.ready_workers().values())
        self.assertNoFailedRequests(results)
        self.assertFalse(before & after, f"every worker replaced: {before} -> {after}")

    def test_4_stop_drains(self):
        self.wait_ready()
        conn = Connection(self.http_port, timeout=60)
        pool = concurrent.futures.ThreadPoolExecutor(2)
        try:
            conn.connect()
            slow = pool.submit(conn.request, "GET", self.SLOW_PATH, {"Connection": "close"})
            wait_for(lambda: procfs.server_has_read(self.http_port, [conn.local_port]), 10,
                     "the slow request read by a worker")
            mark = self.log.mark()
            t0 = time.monotonic()
            run(["podman", "stop", "-t", "30", self.cid], timeout=60)
            elapsed = time.monotonic() - t0
            status = slow.result(30).status
        finally:
            pool.shutdown(wait=True)
            conn.close()
        code = int(run(["podman", "inspect", "--format", "{{.State.ExitCode}}", self.cid]).stdout)
        finished = self.log.wait_event("shutdown_finished", 10, after=mark)
        note(f"{type(self).__name__}: podman stop -> exit {code} in {elapsed:.1f}s; "
             f"in-flight {self.SLOW_PATH} -> {status}")
        self.assertEqual(status, 200)
        self.assertEqual(code, 0)
        self.assertEqual(finished["exit_code"], 0)
        self.assertIs(finished["killed"], False)


class DebianPython(BundleCase):
    GREETING = "hello from python worker"

    @classmethod
    def make_image(cls):
        need_debian()
        return build(os.path.join(REPO, "deploy/your-app/python"), f"{TAG}:python",
                     build_args=[f"PYTHON_IMAGE={S['debian']}", f"CORRAL_BUNDLE={S['bundle']}"])


class Node(BundleCase):
    GREETING = "hello from node worker"
    SLOW_PATH = "/heavy?n=200000000"  # blocks one Node worker ~1 s (more on a busy host)

    @classmethod
    def make_image(cls):
        need_debian()
        node = shutil.which("node")
        if not node or subprocess.run(["dpkg-query", "-W", "nodejs"], capture_output=True).returncode:
            raise unittest.SkipTest("no nodejs package on this machine (scripts/deps.sh)")
        # A Node base image: the Debian base + the files of the machine's
        # nodejs package (what `apt-get install nodejs` puts there).
        ctx = os.path.join(S["work"], "node-base")
        os.makedirs(ctx)
        files = run(["dpkg-query", "-L", "nodejs"]).stdout.split()
        with open(os.path.join(ctx, "files"), "w") as f:
            f.write("\n".join(x for x in files if x != "/." and os.path.lexists(x)) + "\n")
        tar = os.path.join(ctx, "nodejs.tar")
        run(["tar", "--no-recursion", "-C", "/", "-cf", tar, "-T", os.path.join(ctx, "files")],
            timeout=120)
        # npm as it is on disk (it may have upgraded itself since dpkg put it there).
        if os.path.isdir("/usr/lib/node_modules/npm"):
            run(["tar", "-C", "/", "-rf", tar, "usr/lib/node_modules/npm"], timeout=120)
        with open(os.path.join(ctx, "Containerfile"), "w") as f:
            f.write(f"FROM {S['debian']}\nADD nodejs.tar /\n")
        base = build(ctx, f"{TAG}:node-base")
        version = run(["node", "--version"]).stdout.strip()
        note(f"Node base: Debian 12 + nodejs {version} ({image_size(base) / 1e6:.0f} MB)")
        # npm ci inside the build from the npm cache worker/node/setup.sh
        # filled from the lockfiles (--offline: the build reaches no registry).
        run([os.path.join(REPO, "worker/node/setup.sh")], timeout=600)
        cache = run(["npm", "config", "get", "cache"]).stdout.strip()
        return build(REPO, f"{TAG}:node", os.path.join(REPO, "deploy/docker/Dockerfile.node"),
                     [f"NODE_IMAGE={base}", f"CORRAL_BUNDLE={S['bundle']}", "NPM_FLAGS=--offline"],
                     timeout=500, extra=["--ignorefile",
                                         os.path.join(REPO, "deploy/docker/Dockerfile.node.dockerignore"),
                                         "-v", f"{cache}:/root/.npm"])


    def test_5_image_settings(self):
        # What a plain `docker run` needs: the control socket's folder owned
        # by the image's user, corralctl on PATH, the agent as ENTRYPOINT.
        self.assertEqual(self.config.get("Entrypoint"), ["/corral/bin/corral-agent"])
        self.assertEqual(self.config.get("User"), "10001:10001")
        root = run(["podman", "image", "mount", self.image]).stdout.strip()
        try:
            st = os.stat(os.path.join(root, "run/corral"))
            self.assertEqual((st.st_uid, st.st_gid), (10001, 10001))
            self.assertTrue(os.access(os.path.join(root, "corral/bin/corralctl"), os.X_OK))
        finally:
            run(["podman", "image", "unmount", self.image], check=False)
        env = dict(e.split("=", 1) for e in self.config.get("Env") or [])
        self.assertTrue(env["PATH"].startswith("/corral/bin:"), env["PATH"])


class Go(BundleCase):
    """deploy/your-app/go: main.go built on the host with Debian's Go (the
    Dockerfile's build stage pulls golang, which this machine cannot), then
    the Dockerfile itself with that stage swapped for the binary and
    RUNTIME_IMAGE=scratch (distroless/static is scratch + /etc files)."""
    GREETING = "hello from go worker"
    WORKER_LIBC = None  # CGO_ENABLED=0: static, no loader

    @classmethod
    def make_image(cls):
        if not shutil.which("go"):
            raise unittest.SkipTest("go not installed (scripts/deps.sh: golang-go)")
        src = os.path.join(REPO, "deploy/your-app/go")
        ctx = os.path.join(S["work"], "go")
        os.makedirs(ctx)
        # The Dockerfile's command; offline (GOPROXY=off: stdlib only), caches in the temp dir.
        env = dict(os.environ, CGO_ENABLED="0", GOPROXY="off", GOFLAGS="",
                   GOCACHE=os.path.join(ctx, "gocache"), GOPATH=os.path.join(ctx, "gopath"))
        p = subprocess.run(["go", "build", "-trimpath", "-o", os.path.join(ctx, "server"), "."],
                           cwd=src, env=env, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"go build failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        headers = run(["readelf", "-l", os.path.join(ctx, "server")]).stdout
        if "INTERP" in headers:
            raise AssertionError("the Go server is not static (it names an ELF interpreter)")
        version = run(["go", "version"]).stdout.strip()
        size = os.path.getsize(os.path.join(ctx, "server")) / 1e6
        note(f"Go: main.go built with {version} ({size:.1f} MB, static)")
        return swapped_build_stage(os.path.join(src, "Dockerfile"), "GO_IMAGE", ctx, "go",
                                   "scratch")


class Cpp(BundleCase):
    """deploy/your-app/cpp: the SDK's reference app (corral-worker, from the
    build tree) in the Dockerfile's final stage on the Debian 12 base, its
    apt-get of the SDK's runtime libraries included (Debian's archive, as
    base-rootfs.sh reaches it)."""
    GREETING = "hello from corral-worker"
    SLOW_PATH = "/heavy?n=1000000000"  # blocks its worker (corral-worker has no sleep)

    @classmethod
    def make_image(cls):
        need_debian()
        # Not $CORRAL_WORKER: container-test.sh points it at the test worker.
        worker = (os.environ.get("CORRAL_SDK_APP") or
                  os.path.join(paths.BUILD_DIR, "worker/corral-worker"))
        if not os.path.exists(worker):
            raise unittest.SkipTest(f"no {worker} (cmake --build build --target corral-worker)")
        ctx = os.path.join(S["work"], "cpp")
        os.makedirs(ctx)
        shutil.copy(worker, os.path.join(ctx, "server"))
        return swapped_build_stage(os.path.join(REPO, "deploy/your-app/cpp/Dockerfile"),
                                   "BUILD_IMAGE", ctx, "cpp", S["debian"], timeout=600)


def swapped_build_stage(dockerfile, image_arg, ctx, name, runtime, timeout=300):
    """Builds `dockerfile` with its `FROM ${image_arg} AS build` stage
    replaced by ctx/server (built on the host) and RUNTIME_IMAGE=runtime:
    every other line is the file's own."""
    swapped, n = re.subn(r"^FROM \$\{%s\} AS build\n(?:.+\n)*?\n" % image_arg,
                         "FROM scratch AS build\nCOPY server /server\n\n", read(dockerfile),
                         flags=re.M)
    if n != 1:
        raise AssertionError(f"{dockerfile}: no `FROM ${{{image_arg}}} AS build` stage")
    with open(os.path.join(ctx, "Containerfile"), "w") as f:
        f.write(swapped)
    return build(ctx, f"{TAG}:{name}", timeout=timeout,
                 build_args=[f"RUNTIME_IMAGE={runtime}", f"CORRAL_BUNDLE={S['bundle']}"])


def scratch_image(name, files, entry_cmd):
    """FROM scratch + /corral + files {dest: src}, built with podman build."""
    ctx = os.path.join(S["work"], name)
    os.makedirs(ctx)
    lines = [f"FROM {S['bundle']} AS corral", "FROM scratch", "COPY --from=corral /corral /corral"]
    for i, (dest, src) in enumerate(files.items()):
        shutil.copy(src, os.path.join(ctx, f"f{i}"))
        lines.append(f"COPY f{i} {dest}")
    lines += ["ENV PATH=/corral/bin CORRAL_IMAGE_KIND=" + name,
              'ENTRYPOINT ["/corral/bin/corral-agent"]', f"CMD {json.dumps(entry_cmd)}"]
    with open(os.path.join(ctx, "Containerfile"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return build(ctx, f"{TAG}:{name}")


class Distroless(BundleCase):
    GREETING = "hello from static worker"
    WORKER_LIBC = None

    @classmethod
    def make_image(cls):
        worker = os.path.join(S["work"], "fd3-worker-static")
        compile_worker("gcc", worker, "-static")
        return scratch_image("distroless", {"/fd3-worker": worker}, ["--", "/fd3-worker", "static"])


class Musl(BundleCase):
    GREETING = "hello from musl worker"
    WORKER_LIBC = "/lib/ld-musl-x86_64.so.1"

    @classmethod
    def make_image(cls):
        worker = os.path.join(S["work"], "fd3-worker-musl")
        compile_worker("musl-gcc", worker)
        libc = os.path.realpath("/lib/ld-musl-x86_64.so.1")
        return scratch_image("musl", {"/lib/ld-musl-x86_64.so.1": libc, "/fd3-worker": worker},
                             ["--", "/fd3-worker", "musl"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
