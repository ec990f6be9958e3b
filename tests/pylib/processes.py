"""Child processes that cannot outlive the test: each gets
PR_SET_PDEATHSIG=SIGKILL and its own session, and is stopped by pid (never by
name: other engineers' agents and redis-servers run on the same machine)."""

import ctypes
import os
import signal
import subprocess
import sys

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """A preexec_fn: SIGKILL this child when the process that started it dies."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(argv, preexec=None, **kw):
    """subprocess.Popen in a new session that dies with us; `preexec` runs
    in the child too (after the death signal is set)."""
    def before_exec():
        die_with_parent()
        if preexec:
            preexec()
    return subprocess.Popen(argv, preexec_fn=before_exec, start_new_session=True, **kw)


def kill_quietly(pid, sig=signal.SIGKILL):
    """Signals pid; a process already gone is fine."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(proc, sig=signal.SIGTERM, timeout=20, group=False):
    """Sends `sig` to a Popen we started (its group too when `group`), waits
    up to `timeout` s, then SIGKILLs it. Returns its exit code. A reaped
    Popen is never signalled, so a reused pid is never hit."""
    if proc.poll() is None:
        _signal(proc, sig, group)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            sys.stderr.write(f"  [pid {proc.pid} ignored {signal.Signals(sig).name} "
                             f"for {timeout}s: SIGKILL]\n")
            _signal(proc, signal.SIGKILL, group)
            proc.wait(10)
    return proc.returncode


def _signal(proc, sig, group):
    if group:
        try:
            os.killpg(proc.pid, sig)
            return
        except ProcessLookupError:
            pass
    proc.send_signal(sig)
