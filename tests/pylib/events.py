"""The agent's JSON log (one object a line on stdout, docs/agent-contract.md)
as a list of events that tests look at and wait on.

Each parsed object gets '_t' (time.monotonic() when this process read it);
agent events (src == "agent") also get '_i', their index among agent
events, so a test can ask for events after a mark. Lines that are not UTF-8
JSON objects are kept in bad_lines: a test of the log format asserts there
are none, a test of the text format reads them.
"""

import calendar
import json
import os
import threading
import time

from .waiting import Timeout


def parse_ts(ts):
    """An event's 'ts' (2024-01-02T03:04:05.123456Z, UTC) as epoch seconds."""
    whole, _, frac = ts.rstrip("Z").partition(".")
    t = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return t + (float("0." + frac) if frac else 0.0)


def _matches(e, fields):
    return all(e.get(k) == v for k, v in fields.items())


class EventLog:
    """Lines from any source (a pipe, `podman logs -f`), parsed as they come.
    Thread-safe; waiters wake on each new line."""

    def __init__(self):
        self.events = []      # every JSON object, in order
        self.bad_lines = []   # lines that are not UTF-8 JSON objects
        self.eof = threading.Event()
        self._agent_count = 0
        self._cond = threading.Condition()
        self._reading = threading.Event()  # cleared = reader paused
        self._reading.set()

    # --- feeding ---------------------------------------------------------------

    def feed(self, stream):
        """Reads `stream` (binary, line by line) in a daemon thread until EOF;
        returns the thread."""
        def run():
            try:
                while True:
                    self._reading.wait()
                    raw = stream.readline()
                    if not raw:
                        return
                    self.add_line(raw)
            except (OSError, ValueError):
                return  # the stream was closed under us: the end
            finally:
                self.eof.set()
                with self._cond:
                    self._cond.notify_all()
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    @property
    def paused(self):
        return not self._reading.is_set()

    def pause(self):
        """Stops reading (after the current line), so the writer's pipe fills."""
        self._reading.clear()

    def resume(self):
        self._reading.set()

    def add_line(self, raw):
        """One line (bytes or str, newline optional)."""
        try:
            # JSON is UTF-8: invalid bytes make a bad line, not a guess.
            line = (raw.decode() if isinstance(raw, bytes) else raw).rstrip("\n")
            event = json.loads(line)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:  # UnicodeDecodeError and JSONDecodeError too
            text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            with self._cond:
                self.bad_lines.append(text.rstrip("\n"))
                self._cond.notify_all()
            return
        event["_t"] = time.monotonic()
        with self._cond:
            if event.get("src") == "agent":
                event["_i"] = self._agent_count
                self._agent_count += 1
            self.events.append(event)
            self._cond.notify_all()

    # --- looking -----------------------------------------------------------------

    def snapshot(self):
        with self._cond:
            return list(self.events)

    def mark(self):
        """The '_i' of the last agent event so far (-1: none): pass it as
        `after` to look only at what comes next."""
        with self._cond:
            return self._agent_count - 1

    def agent_events(self, name=None, after=-1, **fields):
        """Agent events called `name` (any when None), with '_i' > after,
        whose fields equal `fields`."""
        return [e for e in self.snapshot() if e.get("src") == "agent"
                and (name is None or e.get("event") == name)
                and e["_i"] > after and _matches(e, fields)]

    def worker_lines(self, **fields):
        """Worker output lines (src == worker) whose fields match."""
        return [e for e in self.snapshot() if e.get("src") == "worker" and _matches(e, fields)]

    def worker_text(self, pid):
        """The text of every output line of the worker with this pid."""
        return [e.get("msg", "") for e in self.worker_lines(pid=pid)]

    def ready_workers(self):
        """{worker id: pid} of workers that reported READY and have not
        exited, by the events."""
        live = {}
        for e in self.agent_events():
            if e.get("event") == "worker_ready":
                live[e["worker"]] = e["pid"]
            elif e.get("event") == "worker_exited" and live.get(e.get("worker")) == e.get("pid"):
                del live[e["worker"]]
        return live

    # --- waiting -----------------------------------------------------------------

    def wait_until(self, predicate, timeout, what):
        """Polls predicate() until truthy, waking on every new line; returns
        its value. Fails naming `what` with the last events."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                text = what() if callable(what) else what
                raise Timeout(f"timed out after {timeout}s waiting for {text}; "
                              f"last events:\n{self.tail()}")
            with self._cond:
                self._cond.wait(min(left, 0.05))

    def wait_event(self, name, timeout=10, count=1, after=-1, **fields):
        """Waits for `count` agent events called `name` matching `fields`
        after mark `after`; returns the count-th."""
        def found():
            events = self.agent_events(name, after, **fields)
            return events[count - 1] if len(events) >= count else None
        return self.wait_until(found, timeout, f"{count} x {name} {fields} after #{after}")

    def wait_any(self, names, timeout=10, after=-1):
        """The first agent event after `after` whose name is in `names`."""
        return self.wait_until(
            lambda: next((e for e in self.agent_events(after=after)
                          if e.get("event") in names), None),
            timeout, f"one of {names} after #{after}")

    def wait_ready(self, n, timeout=10):
        """Waits for n READY workers; returns {worker id: pid}."""
        return self.wait_until(lambda: (lambda r: r if len(r) >= n else None)(
            self.ready_workers()), timeout, f"{n} READY workers")

    # --- reporting ---------------------------------------------------------------

    def tail(self, n=25):
        """The last n lines (long messages cut), for failure messages."""
        def short(e):
            e = {k: v for k, v in e.items() if k not in ("_t", "_i")}
            if len(e.get("msg", "")) > 160:
                e["msg"] = e["msg"][:160] + f"...({len(e['msg'])} chars)"
            return json.dumps(e)
        with self._cond:
            lines = [short(e) for e in self.events[-n:]]
            lines += ["not json: " + line[:200] for line in self.bad_lines[-5:]]
        return "\n".join(lines)

    def excerpt(self, last=40):
        """The last agent events, compact, with their '_i'."""
        out = []
        for e in self.agent_events()[-last:]:
            extra = {k: v for k, v in e.items()
                     if k not in ("ts", "src", "level", "event", "msg", "_i", "_t")}
            out.append(f"    #{e['_i']} {e.get('event')} {json.dumps(extra)} "
                       f"{e.get('msg', '')[:160]}")
        return "\n".join(out)

    def write(self, path, header="", extra_lines=()):
        """Writes every line (events as JSON, bad lines marked) to `path`,
        appending."""
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "a") as f:
            if header:
                f.write(f"# {header}\n")
            for e in self.snapshot():
                f.write(json.dumps({k: v for k, v in e.items() if k not in ("_t", "_i")}) + "\n")
            with self._cond:
                for line in self.bad_lines:
                    f.write("# not json: " + line + "\n")
            for line in extra_lines:
                f.write(line + "\n")
