"""Only root and the agent's uid may use the control socket: the file is
0600, and even when its mode is loosened the agent checks each peer's uid
(SO_PEERCRED) and answers everyone else PERMISSION_DENIED."""

import os
import stat
import subprocess
import sys
import unittest

from pylib.agent import SHELL_WORKER, Agent
from pylib.testcase import TestCase

# Runs as another uid: one GetStatus over the socket, prints code and details.
CLIENT = r"""
import sys, grpc
ch = grpc.insecure_channel("unix:" + sys.argv[1])
call = ch.unary_unary(sys.argv[2], request_serializer=lambda x: x,
                      response_deserializer=lambda x: x)
try:
    call(b"", timeout=5)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name)
    print(e.details())
"""


def as_nobody(*cmd):
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd],
        capture_output=True, text=True, timeout=30)


class PermissionTest(TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run a client as another uid")
        # The directory is open to all, so only the socket's own protection
        # is under test.
        self.agent = Agent(self, ["--workers=1", "--ready=delay:50ms", "--drain-delay=100ms"],
                           command=SHELL_WORKER, dir_mode=0o755).start()

    def grpc_as_nobody(self, method="/corral.v1.Agent/GetStatus"):
        p = as_nobody(sys.executable, "-c", CLIENT, self.agent.socket, method)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        return lines[0], "\n".join(lines[1:])

    def test_socket_file_is_0600(self):
        st = os.stat(self.agent.socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.geteuid())

    def test_other_uid_cannot_connect(self):
        code, details = self.grpc_as_nobody()
        self.assertEqual(code, "UNAVAILABLE")
        self.assertIn("Permission denied", details)
        code, out, err = self.agent.ctl("status", user="nobody")
        self.assertEqual(code, 3, err)
        self.assertIn("permission denied (you are uid 65534", err)

    def test_other_uid_is_denied_even_with_a_loose_mode(self):
        os.chmod(self.agent.socket, 0o666)  # as a careless operator might
        for method in ("/corral.v1.Agent/GetStatus", "/corral.v1.Agent/Shutdown",
                       "/grpc.health.v1.Health/Check"):
            code, details = self.grpc_as_nobody(method)
            self.assertEqual(code, "PERMISSION_DENIED", method)
            self.assertIn("only answers root and uid 0", details)
        code, out, err = self.agent.ctl("stop", user="nobody")
        self.assertEqual(code, 1, err)
        self.assertIn("permission denied", err)
        self.assertIn("you are uid 65534", err)
        # Nothing happened, and root still gets in.
        self.assertEqual(self.agent.status()["state"], "running")


if __name__ == "__main__":
    unittest.main()
