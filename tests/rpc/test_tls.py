"""Remote control over TCP is mutual TLS only: a client with a certificate
from the client CA gets the Agent service; without one, or with one from
another CA, it does not get past the handshake. Certificates are made with
openssl for each run."""

import os
import shutil
import subprocess
import unittest

import grpc

from pylib import paths
from pylib.agent import SHELL_WORKER, Agent, agent_env
from pylib.grpc_health import raw_unary
from pylib.testcase import TestCase

FLAGS = ["--workers=1", "--ready=delay:50ms", "--drain-delay=100ms"]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            cwd=d)


def make_cert(d, name, ca, san=None):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    ext = []
    if san:
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        ext = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
            f"{ca}.key", "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
            *ext, cwd=d)


class MutualTlsTest(TestCase):
    def setUp(self):
        super().setUp()
        if shutil.which("openssl") is None:
            self.skipTest("openssl is not installed")
        self.certs = self.temp_dir("corral-tls-")
        make_ca(self.certs, "ca")
        make_ca(self.certs, "other-ca")
        make_cert(self.certs, "server", "ca", san="IP:127.0.0.1,DNS:localhost")
        make_cert(self.certs, "client", "ca")
        make_cert(self.certs, "stranger", "other-ca")

    def read(self, name):
        with open(os.path.join(self.certs, name), "rb") as f:
            return f.read()

    def tls_flags(self):
        c = self.certs
        # Port 0: the agent binds a free port and names it in control_listening.
        return ["--control-tls-listen=127.0.0.1:0",
                f"--control-tls-cert={c}/server.pem", f"--control-tls-key={c}/server.key",
                f"--control-tls-client-ca={c}/ca.pem"]

    def get_status(self, port, client=None):
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.read("ca.pem"),
            private_key=self.read(f"{client}.key") if client else None,
            certificate_chain=self.read(f"{client}.pem") if client else None)
        with grpc.secure_channel(f"127.0.0.1:{port}", creds) as ch:
            return raw_unary(ch, "/corral.v1.Agent/GetStatus")(b"", timeout=5)

    def test_only_clients_of_the_client_ca_get_in(self):
        agent = Agent(self, [*FLAGS, *self.tls_flags()], command=SHELL_WORKER).start()
        port = agent.tls_port
        self.assertIn(f"mTLS port {port}", agent.control_listening()["msg"])
        self.assertTrue(self.get_status(port, "client"))
        for client in (None, "stranger"):
            with self.assertRaises(grpc.RpcError) as e:
                self.get_status(port, client)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE, client)

    def test_unreadable_certificate_fails_at_start(self):
        flags = [f for f in self.tls_flags() if "tls-cert=" not in f]
        flags.append(f"--control-tls-cert={self.certs}/missing.pem")
        d = self.temp_dir("corral-rpc-")
        agent = paths.binary("CORRAL_AGENT")
        paths.require(("CORRAL_AGENT", agent))
        p = subprocess.run([agent, f"--control-socket={d}/a.sock", *FLAGS, *flags,
                            "--", "/bin/true"],
                           capture_output=True, text=True, timeout=20, env=agent_env())
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"--control-tls-cert={self.certs}/missing.pem: cannot read",
                      p.stderr)


if __name__ == "__main__":
    unittest.main()
