"""Health as the kubelet does it: grpc.health.v1.Health/Check on the probe
port from a client corral did not write (python3-grpcio), through a drain and
a SIGTERM; nothing else answers on the probe port. Also /livez, /readyz and
/metrics on the HTTP port, and reflection on the control socket only."""

import http.client
import signal

import grpc

from rpcharness import (NOT_SERVING, SERVING, Agent, TestCase, free_port,
                        health_request, health_status, identity, wait_for)


class ProbePortTest(TestCase):
    def start(self, drain_delay="300ms"):
        self.probe = free_port()
        self.http = free_port()
        self.agent = Agent(self, flags=[
            "--workers=2", "--ready=delay:50ms", f"--drain-delay={drain_delay}",
            "--stop-timeout=3s", f"--probe-port={self.probe}",
            f"--http-port={self.http}", "--probe-address=127.0.0.1"])
        self.agent.wait_ready(2)
        self.probe_channel = self.agent.channel(f"127.0.0.1:{self.probe}")
        self.check = self.probe_channel.unary_unary(
            "/grpc.health.v1.Health/Check", request_serializer=identity,
            response_deserializer=identity)

    def health(self, service):
        return health_status(self.check(health_request(service), timeout=5))

    def all_health(self):
        return {s: self.health(s) for s in ("liveness", "readiness", "")}

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.http, timeout=5)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        return r.status, body

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
            call = self.probe_channel.unary_unary(
                method, request_serializer=identity, response_deserializer=identity)
            with self.assertRaises(grpc.RpcError) as e:
                call(b"", timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED, method)
        reflect = self.probe_channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=identity, response_deserializer=identity)
        with self.assertRaises(grpc.RpcError) as e:
            list(reflect(iter([b"\x3a\x00"]), timeout=5))
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        # The agent did not drain or stop.
        self.assertEqual(self.agent.status()["state"], "AGENT_STATE_RUNNING")

    def test_watch_on_the_probe_port(self):
        self.start()
        watch = self.probe_channel.unary_stream(
            "/grpc.health.v1.Health/Watch", request_serializer=identity,
            response_deserializer=identity)
        stream = watch(health_request("readiness"), timeout=20)
        self.assertEqual(health_status(next(stream)), SERVING)
        self.assertEqual(self.agent.ctl("drain")[0], 0)
        self.assertEqual(health_status(next(stream)), NOT_SERVING)
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
        agent = Agent(self, flags=["--workers=1", "--ready=delay:50ms",
                                   "--drain-delay=100ms"])
        reflect = agent.channel().stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=identity, response_deserializer=identity)
        # ServerReflectionRequest{list_services: ""}
        response = next(reflect(iter([b"\x3a\x00"]), timeout=5))
        self.assertIn(b"corral.v1.Agent", response)
        self.assertIn(b"grpc.health.v1.Health", response)


if __name__ == "__main__":
    import unittest
    unittest.main()
