"""Real cgroup v1 directories for the sizing tests: found through
/proc/self/cgroup and /proc/self/mountinfo, created under this process's own
cgroup, emptied (by pid) and removed in the test's cleanups."""

import errno
import os
import signal
import unittest

from .processes import kill_quietly
from .testcase import note
from .waiting import wait_for


def _unescape(field):
    for esc, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(esc, ch)
    return field


def v1_cgroup_dir(controller):
    """(directory of this process's v1 `controller` cgroup, mount point), found
    through /proc/self/cgroup and /proc/self/mountinfo with the path mapped
    against the mount's root; raises unittest.SkipTest saying why not."""
    cg_path = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            if hid != "0" and controller in controllers.split(","):
                cg_path = path
    if cg_path is None:
        raise unittest.SkipTest(f"no cgroup v1 hierarchy with the {controller} controller "
                                "in /proc/self/cgroup (a cgroup v2 only host?)")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            fields = left.split(" ")
            fstype, _source, superopts = right.split(" ", 2)
            if fstype != "cgroup" or controller not in superopts.split(","):
                continue
            root, mount = _unescape(fields[3]), _unescape(fields[4])
            prefix = root.rstrip("/")
            if cg_path == root or cg_path.startswith(prefix + "/"):
                return os.path.join(mount, cg_path[len(prefix):].lstrip("/")), mount
    raise unittest.SkipTest(f"the v1 {controller} cgroup {cg_path} is not visible in any "
                            "cgroup mount in /proc/self/mountinfo")


def read(path):
    with open(path) as f:
        return f.read().strip()


def make_v1_cgroup(test, controller, name, settings):
    """Creates `name` under this process's v1 `controller` cgroup and writes
    `settings` ([(file, value)], in order); skips the test (saying why) when
    that is not possible. The cgroup is removed in a cleanup registered now,
    so it runs after cleanups registered later (the agent's): whatever is
    still in it then is one of the agent's processes, SIGKILLed by pid and
    reported, and rmdir is retried until the cgroup is empty."""
    if os.geteuid() != 0:
        test.skipTest(f"needs root to create a {controller} cgroup")
    parent, _mount = v1_cgroup_dir(controller)
    cg = os.path.join(parent, name)
    try:
        os.mkdir(cg)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            test.skipTest(f"cgroup fs not writable: mkdir {cg}: {e.strerror}")
        raise
    test.addCleanup(_remove_cgroup, cg)
    for file, value in settings:
        try:
            with open(os.path.join(cg, file), "w") as f:
                f.write(str(value))
        except OSError as e:
            test.skipTest(f"cgroup fs not writable: {cg}/{file} = {value}: {e.strerror}")
    note(f"cgroup {cg}: " + ", ".join(f"{file}={read(os.path.join(cg, file))}"
                                      for file, _ in settings))
    return cg


def _remove_cgroup(cg):
    procs = os.path.join(cg, "cgroup.procs")
    leftovers = [int(p) for p in read(procs).split()] if os.path.exists(procs) else []
    for pid in leftovers:
        kill_quietly(pid, signal.SIGKILL)
    if leftovers:
        note(f"cleanup: processes left in {cg}: {leftovers} (SIGKILLed)")

    def removed():
        try:
            os.rmdir(cg)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise AssertionError(f"cannot remove {cg}: {e}") from e
            return False  # the killed processes are not gone yet
        return True
    wait_for(removed, 15, lambda: f"{cg} to empty (procs: {read(procs)})", interval=0.05)


def join_fn(cg):
    """A preexec_fn that moves the child into cgroup `cg` before exec."""
    procs = os.path.join(cg, "cgroup.procs")

    def join():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    return join
