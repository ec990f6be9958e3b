"""Health as the kubelet does it: grpc.health.v1.Health/Check on the probe
port from a client corral did not write (python3-grpcio), through a drain and
a SIGTERM; nothing else answers on the probe port. Also /livez, /readyz and
/metrics on the HTTP port, and reflection on the control socket only."""

import signal
import unittest

import grpc

from pylib.agent import AUTO, SHELL_WORKER, Agent
from pylib.grpc_health import (NOT_SERVING, SERVING, HealthClient, channel, raw_stream,
                               raw_unary)
from pylib.http_client import http_get
from pylib.testcase import TestCase
from pylib.waiting import wait_for


class ProbePortTest(TestCase):
    def start(self, drain_delay="300ms"):
        self.agent = Agent(self, [
            "--workers=2", "--ready=delay:50ms", f"--drain-delay={drain_delay}",
            "--stop-timeout=3s", f"--probe-port={AUTO}", f"--http-port={AUTO}",
            "--probe-address=127.0.0.1"], command=SHELL_WORKER).start()
        self.probe = self.agent.probe_port
        self.http = self.agent.http_port
        self.agent.wait_status_ready(2)
        self.probe_channel = channel(self, f"127.0.0.1:{self.probe}")
        self.health_client = HealthClient(channel=self.probe_channel)

    def health(self, service):
        return self.health_client.check(service, timeout=5)

    def all_health(self):
        return {s: self.health(s) for s in ("liveness", "readiness", "")}

    def get(self, path):
        return http_get(self.http, path)

    def test_check_through_a_drain(self):
        self.start()
        self.assertEqual(self.all_health(),
                         {"liveness": SERVING, "readiness": SERVING, "": SERVING})
        code, out, err = self.agent.ctl("drain")
        self.assertEqual(code, 0, err)
        # Not ready the moment Drain returned; still live.
        self.assertEqual(self.all_health(), {"liveness": SERVING,
                                             "readiness": NOT_SERVING,
                                             "": NOT_SERVING})
        wait_for(lambda: all(w["pid"] == 0 for w in self.agent.status()["workers"]),
                 what="workers stopped by the drain")
        self.assertEqual(self.health("liveness"), SERVING)
        self.assertEqual(self.health("readiness"), NOT_SERVING)
        code, out, err = self.agent.ctl("resume")
        self.assertEqual(code, 0, err)
        wait_for(lambda: self.health("readiness") == SERVING, what="ready again")
        self.assertEqual(self.health(""), SERVING)

    def test_check_through_sigterm(self):
        self.start(drain_delay="2s")
        self.agent.proc.send_signal(signal.SIGTERM)
        # Readiness flips first; liveness holds while the agent drains.
        wait_for(lambda: self.health("readiness") == NOT_SERVING,
                 what="readiness off after SIGTERM")
        self.assertEqual(self.health("liveness"), SERVING)
        self.assertEqual(self.health(""), NOT_SERVING)
        self.assertIsNone(self.agent.proc.poll(), "still draining")
        self.assertEqual(self.agent.proc.wait(timeout=10), 0)

    def test_unknown_service_is_not_found(self):
        self.start()
        with self.assertRaises(grpc.RpcError) as e:
            self.health("database")
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("liveness", e.exception.details())

    def test_nothing_but_health_answers_on_the_probe_port(self):
        self.start()
        for method in ("/corral.v1.Agent/GetStatus", "/corral.v1.Agent/Shutdown",
                       "/corral.v1.Agent/Drain"):
            with self.assertRaises(grpc.RpcError) as e:
                raw_unary(self.probe_channel, method)(b"", timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED, method)
        reflect = raw_stream(self.probe_channel, REFLECTION)
        with self.assertRaises(grpc.RpcError) as e:
            list(reflect(iter([b"\x3a\x00"]), timeout=5))
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        # The agent did not drain or stop.
        self.assertEqual(self.agent.status()["state"], "running")

    def test_watch_on_the_probe_port(self):
        self.start()
        stream = self.health_client.watch("readiness", timeout=20)
        self.assertEqual(next(stream), SERVING)
        self.assertEqual(self.agent.ctl("drain")[0], 0)
        self.assertEqual(next(stream), NOT_SERVING)
        stream.cancel()

    def test_http_endpoints(self):
        self.start()
        self.assertEqual(self.get("/livez"), (200, "ok\n"))
        status, body = self.get("/readyz")
        self.assertEqual(status, 200)
        self.assertIn("2 of 2 workers READY", body)
        status, body = self.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn('corral_worker_state{worker="0",state="READY"} 1', body)
        self.assertIn('corral_workers{state="READY"} 2', body)
        self.assertIn("corral_restarts_total 0", body)
        for family in ("corral_worker_restarts_total", "corral_worker_cpu_seconds_total",
                       "corral_worker_resident_memory_bytes", "corral_orphans_reaped_total",
                       "corral_log_lines_dropped_total", "corral_notify_rejected_total"):
            self.assertIn(f"# TYPE {family} ", body)
        wait_for(lambda: 'corral_worker_resident_memory_bytes{worker="0"} 0\n'
                 not in self.get("/metrics")[1], what="an RSS sample")
        self.assertEqual(self.get("/nope")[0], 404)
        self.assertEqual(self.agent.ctl("drain")[0], 0)
        status, body = self.get("/readyz")
        self.assertEqual(status, 503)
        self.assertIn("drained", body)
        self.assertEqual(self.get("/livez")[0], 200)


class ReflectionTest(TestCase):
    def test_control_socket_serves_reflection(self):
        agent = Agent(self, ["--workers=1", "--ready=delay:50ms", "--drain-delay=100ms"],
                      command=SHELL_WORKER).start()
        reflect = raw_stream(channel(self, f"unix:{agent.socket}"), REFLECTION)
        # ServerReflectionRequest{list_services: ""}
        response = next(reflect(iter([b"\x3a\x00"]), timeout=5))
        self.assertIn(b"corral.v1.Agent", response)
        self.assertIn(b"grpc.health.v1.Health", response)


REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


if __name__ == "__main__":
    unittest.main()
