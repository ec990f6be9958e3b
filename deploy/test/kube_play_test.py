#!/usr/bin/python3
"""`podman kube play` of a kustomize overlay: a local stand-in for a
cluster (docs/kubernetes.md "A local stand-in: podman kube play").

Renders the overlay (default dev) with `kubectl kustomize`, plays its corral
Deployment and ConfigMap with podman + runc, and checks what a kubelet would
give the pod: the agent is PID 1 as uid 10001 on a read-only root with the
emptyDir mounts, sized from the CPU limit; it serves; the gRPC readiness
probe answers SERVING; `corralctl status` works in the container; stopping
the pod drains and the agent exits 0.

What differs from a cluster, and why (each is an edit of the rendered YAML):
  * the image is the one this test builds (deploy/docker/build-local-image);
  * host network on loopback ports the agent picks (this machine is shared,
    8080 may be taken), so no container ports (podman 4.3 maps them only
    with a bridge network);
  * env from a Secret is inlined: podman 4.3 stores a played Secret as YAML
    and reads it back as JSON (its secretKeyRef fails);
  * Redis (a StatefulSet, which podman kube play does not run) is left out:
    sessions answer 503, everything else serves.
podman's own needs: catatonit (the pause image it builds for the pod's
infra container) and, for runc on this host, ulimits from a containers.conf
(CONTAINERS_CONF, `default_ulimits`). Everything it creates (pod, containers,
images, the pause image if it was not there before) is removed by id.

  /usr/bin/python3 deploy/test/kube_play_test.py [-v]
      env CORRAL_AGENT, CORRAL_WORKER (default corral-worker), CORRALCTL,
          CORRAL_OVERLAY (default dev)
"""

import base64
import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))

from pylib import paths  # noqa: E402
from pylib.grpc_health import SERVING, HealthClient  # noqa: E402
from pylib.http_client import http_get  # noqa: E402
from pylib.podman import ContainerLog, remove_image, run  # noqa: E402
from pylib.testcase import TestCase, note  # noqa: E402
from pylib.waiting import wait_for  # noqa: E402

AGENT = paths.binary("CORRAL_AGENT")
WORKER = os.environ.get("CORRAL_WORKER") or paths.binary("CORRAL_WORKER")
CTL = paths.binary("CORRALCTL")
OVERLAY = os.environ.get("CORRAL_OVERLAY", "dev")
PAUSE = "localhost/podman-pause"


def kubectl():
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    cached = os.path.join(HERE, ".cache", "kubectl")
    return found or (cached if os.path.exists(cached) else None)


def adapt(objects, image, name):
    """The rendered overlay -> what podman kube play runs here (see the
    module doc for each edit)."""
    import yaml  # Debian's python3-yaml
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    dep = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "corral")
    dep["metadata"]["name"] = name
    c = next(x for x in dep["spec"]["template"]["spec"]["containers"] if x["name"] == "corral")
    c["image"] = image
    c.pop("ports", None)
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            e.pop("valueFrom")
            e["value"] = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
    names = {s["configMapRef"]["name"] for s in c.get("envFrom", []) if "configMapRef" in s}
    cms = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] in names]
    for cm in cms:
        if cm["metadata"]["name"].startswith("corral-agent"):
            cm["data"].update({"CORRAL_LISTEN": "tcp://127.0.0.1:0", "CORRAL_PROBE_PORT": "auto",
                               "CORRAL_PROBE_ADDRESS": "127.0.0.1", "CORRAL_HTTP_PORT": "auto"})
    return yaml.safe_dump_all(cms + [dep]), c


class KubePlayTest(TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (rootful podman with runc)")
        paths.require(("CORRAL_AGENT", AGENT), ("CORRAL_WORKER", WORKER), ("CORRALCTL", CTL))
        if not kubectl():
            raise AssertionError("no kubectl: run deploy/test/setup.sh")
        if not shutil.which("catatonit"):
            raise AssertionError("podman kube play needs catatonit (apt-get install catatonit)")
        cls.work = tempfile.mkdtemp(prefix="corral-kube-play-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        had_pause = run(["podman", "image", "exists", f"{PAUSE}:{cls.podman_version()}-0"],
                        check=False).returncode == 0
        tag = f"localhost/corral-kube-play-{os.getpid()}:dev"
        p = run([os.path.join(REPO, "deploy/docker/build-local-image"), "--tag", tag, "--agent", AGENT,
                 "--worker", WORKER, "--ctl", CTL], timeout=300)
        image = p.stdout.strip().splitlines()[-1]
        cls.addClassCleanup(remove_image, image)
        import yaml
        rendered = run([kubectl(), "kustomize", os.path.join(REPO, "deploy/k8s/overlays", OVERLAY)]).stdout
        name = f"corral-kp-{os.getpid()}"
        text, cls.container = adapt([o for o in yaml.safe_load_all(rendered) if o], image, name)
        cls.yaml_path = os.path.join(cls.work, "play.yaml")
        with open(cls.yaml_path, "w") as f:
            f.write(text)
        conf = os.path.join(cls.work, "containers.conf")
        with open(conf, "w") as f:
            f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n')
        env = dict(os.environ, CONTAINERS_CONF=conf)
        cls.pod = f"{name}-pod-0"
        cls.cid = f"{cls.pod}-corral"
        cls.addClassCleanup(run, ["podman", "pod", "rm", "-f", "-t", "0", cls.pod], False)
        if not had_pause:
            cls.addClassCleanup(remove_image, f"{PAUSE}:{cls.podman_version()}-0")
        p = run(["podman", "--runtime", "runc", "kube", "play", "--network", "host", cls.yaml_path],
                check=False, timeout=180, env=env)
        if p.returncode != 0:
            raise AssertionError(f"podman kube play failed: {p.stderr.strip()}")
        note(f"podman kube play overlays/{OVERLAY}: pod {cls.pod}, image {image[:12]}")
        cls.logs = ContainerLog(cls.cid)
        cls.addClassCleanup(cls.logs.close)
        cls.log = cls.logs.log
        started = cls.log.wait_event("agent_started", 30)
        cls.http_port = int(started["listen"].rsplit(":", 1)[1])
        cls.probe_port = cls.log.wait_event("control_listening", 10)["probe_port"]

    @staticmethod
    def podman_version():
        return run(["podman", "version", "--format", "{{.Client.Version}}"]).stdout.strip()

    def test_1_pid1_as_the_manifest_says(self):
        self.log.wait_until(lambda: self.log.ready_workers(), 30, "a READY worker")
        started = self.log.agent_events("agent_started")[0]
        self.assertEqual(started["pid"], 1)
        limit = self.container["resources"]["limits"]["cpu"]
        cores = float(limit[:-1]) / 1000 if limit.endswith("m") else float(limit)
        self.assertEqual(started["workers"], max(1, -(-int(cores * 1000) // 1000)))
        top = run(["podman", "top", self.cid, "pid", "user", "args"]).stdout.splitlines()
        pid1 = next(l for l in top[1:] if l.split()[0] == "1")
        self.assertIn("/usr/local/bin/corral-agent", pid1)
        self.assertEqual(pid1.split()[1], "corral")
        inspect = json.loads(run(["podman", "inspect", self.cid]).stdout)[0]
        self.assertIs(inspect["HostConfig"]["ReadonlyRootfs"], True)
        mounts = {m["Destination"] for m in inspect["Mounts"]}
        self.assertTrue({"/run/corral", "/tmp"} <= mounts, mounts)
        note(f"kube play: {pid1.strip()}; {started['workers']} worker(s) for CPU limit {limit}; "
             f"read-only root, emptyDirs {sorted(mounts)}")

    def test_2_serves_probes_corralctl(self):
        self.log.wait_until(lambda: self.log.ready_workers(), 30, "a READY worker")
        status, body = http_get(self.http_port, "/")
        self.assertEqual(status, 200, body)
        client = HealthClient(f"127.0.0.1:{self.probe_port}")
        try:
            wait_for(lambda: client.probe("readiness") == SERVING, 15, "readiness SERVING")
        finally:
            client.close()
        p = run(["podman", "exec", self.cid, "corralctl", "status"], check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        note(f"kube play: GET / -> 200; readiness SERVING; corralctl status: {p.stdout.splitlines()[1]}")

    def test_3_pod_stop_drains(self):
        mark = self.log.mark()
        grace = str(self.container.get("terminationGracePeriodSeconds", 30))
        run(["podman", "pod", "stop", "-t", grace, self.pod], timeout=90)
        code = int(run(["podman", "inspect", "--format", "{{.State.ExitCode}}", self.cid]).stdout)
        finished = self.log.wait_event("shutdown_finished", 10, after=mark)
        note(f"podman pod stop: agent exit {code}, shutdown_finished {finished['msg']}")
        self.assertEqual(code, 0)
        self.assertEqual(finished["exit_code"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
