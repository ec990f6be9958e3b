"""Polling with a deadline: the only way these tests wait."""

import time


def wait_for(predicate, timeout, what, interval=0.02):
    """Polls predicate() until it returns something truthy; returns that.
    Fails with `what` (a string, or a callable giving one) when `timeout`
    seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {text}")
        time.sleep(interval)
