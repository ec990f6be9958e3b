"""Waiting with deadlines: the only ways these tests wait.

wait_for polls until a condition holds; hold checks that one keeps holding
for a bounded window (a negative check: "no ping arrived in 4 periods").
Neither sleeps and hopes: both poll the real condition and fail with a
message saying what was awaited.
"""

import time


class Timeout(AssertionError):
    """A condition did not come true in time (an AssertionError, so unittest
    reports it as a failure, not an error)."""


def _text(what):
    return what() if callable(what) else what


def wait_for(predicate, timeout=10, what="a condition", interval=0.02):
    """Polls predicate() until it returns something truthy; returns that.
    Fails naming `what` (a string, or a callable giving one, evaluated only
    on failure) when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout}s waiting for {_text(what)}")
        time.sleep(interval)


def hold(predicate, duration, what, interval=0.02):
    """Checks predicate() stays truthy for `duration` seconds, polling; fails
    at the first falsy answer naming `what`."""
    t0 = time.monotonic()
    deadline = t0 + duration
    while True:
        if not predicate():
            raise AssertionError(
                f"{_text(what)} stopped holding after {time.monotonic() - t0:.2f}s "
                f"(of {duration}s)")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
