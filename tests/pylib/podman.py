"""podman for container tests: commands with clear failures, a container's
log followed into an EventLog, and removal by id (also after a failed
check)."""

import shutil
import subprocess

from .events import EventLog
from .processes import spawn, stop

PODMAN = shutil.which("podman")


def run(args, check=True, timeout=120, **kw):
    """subprocess.run with text output; a failure (when check) names the
    command, its exit code and its stderr."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def podman(*args, check=True, timeout=60, **kw):
    return run([PODMAN or "podman", *args], check=check, timeout=timeout, **kw)


def remove_container(cid):
    podman("rm", "-f", "-t", "0", cid, check=False)


def remove_image(image):
    podman("rmi", "-f", image, check=False)


class ContainerLog:
    """`podman logs -f CONTAINER` (stdout and stderr) as an EventLog, from
    the container's first line. close() ends the follower by pid."""

    def __init__(self, cid):
        self.log = EventLog()
        self.proc = spawn([PODMAN or "podman", "logs", "-f", cid], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.log.feed(self.proc.stdout)

    def close(self, save_to=None, header=""):
        stop(self.proc, timeout=10)
        self.log.eof.wait(5)
        self.proc.stdout.close()
        if save_to:
            self.log.write(save_to, header)
