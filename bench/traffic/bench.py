#!/usr/bin/env python3
"""Traffic benchmark: throughput, spread and lost requests, corral vs peers.

Systems (2 workers each, one at a time, in interleaved rounds):
  corral-worker  corral-agent -- corral-worker (the C++ SDK)
  corral-node    corral-agent --ready=ipc -- node app.js
  corral-node-register
                 corral-agent --ready=ipc -- node -r worker/node/register.js
                 tutorial-app.js (an unmodified app.listen(3000) app)
  pm2            pm2 start app.js -i 2 (cluster mode), pm2 reload
  node-cluster   node node-cluster.js (a tutorial primary, SIGHUP restart)
  bare-node      2 x node app.js on one socket opened here: no supervisor
  bare-worker    2 x corral-worker on one socket: no supervisor
Per system and round: req/s and p50/p99 of / and /heavy (corral-loadgen,
closed loop, 32 keep-alive connections), each worker's share, then under
load on /: 5 rolling reloads, one worker SIGKILL, scale 4->2->4 (corral), and
a SIGTERM drain of the whole supervisor, every failed request classified.

usage: bench/traffic/bench.py [--rounds 3] [--duration 5] [--systems a,b]
                              [--agent-flag=--balance=reuseport ...]
Builds nothing: build corral-agent, corral-worker, corralctl and
corral-loadgen first (cmake --build build). Installs PM2 into
bench/traffic/node_modules when missing. Honours TMPDIR and REDIS_URL.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import report  # noqa: E402
import systems  # noqa: E402
from systems import poll, spawn  # noqa: E402

ALL = ["corral-worker", "corral-node", "corral-node-register", "pm2", "node-cluster", "bare-node",
       "bare-worker"]
PM2 = os.path.join(HERE, "node_modules", ".bin", "pm2")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="the CMake build folder (default: build/)")
    ap.add_argument("--systems", default=",".join(ALL),
                    help="comma separated, from: " + ",".join(ALL))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5,
                    help="seconds per throughput measurement")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2,
                    help="load generator threads")
    ap.add_argument("--heavy-n", type=int, default=200000,
                    help="n of /heavy?n= (sum of sqrt(i), i < n)")
    ap.add_argument("--reloads", type=int, default=5)
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds after each event still counted as its")
    ap.add_argument("--timeout", type=float, default=5,
                    help="load generator request timeout, seconds")
    ap.add_argument("--agent-flag", action="append", default=[],
                    help="extra corral-agent flag for the corral rows "
                         "(repeatable), e.g. --agent-flag=--balance=reuseport")
    ap.add_argument("--json", default=os.path.join(ROOT, "docs",
                                                   "traffic-bench.json"))
    ap.add_argument("--svg", default=os.path.join(ROOT, "docs",
                                                  "traffic-bench.svg"))
    ap.add_argument("--raw", help="keep every load generator output here")
    ap.add_argument("--report", metavar="JSON",
                    help="run nothing: print the table and draw the chart "
                         "of an earlier run's --json file")
    args = ap.parse_args()
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in args.systems:
        if s not in ALL:
            ap.error("--systems: unknown system %r (known: %s)" %
                     (s, ", ".join(ALL)))
    for f in args.agent_flag:
        if not f.startswith("--"):
            ap.error("--agent-flag=%r: expected an agent flag like "
                     "--balance=reuseport" % f)
    if args.rounds < 1 or args.duration <= 0 or args.reloads < 0:
        ap.error("--rounds >= 1, --duration > 0 and --reloads >= 0, please")
    return args


def tool_paths(args):
    build = os.path.abspath(args.build)
    paths = {"agent": os.path.join(build, "agent", "corral-agent"),
             "worker": os.path.join(build, "worker", "corral-worker"),
             "ctl": os.path.join(build, "ctl", "corralctl"),
             "loadgen": os.path.join(build, "bench", "traffic",
                                     "corral-loadgen")}
    for key, env in (("agent", "CORRAL_AGENT"), ("worker", "CORRAL_WORKER"),
                     ("ctl", "CORRAL_CTL"), ("loadgen", "CORRAL_LOADGEN")):
        paths[key] = os.path.abspath(os.environ.get(env, paths[key]))
        if not os.access(paths[key], os.X_OK):
            raise SystemExit(
                "bench: %s is missing (%s); build it: cmake --build %s "
                "--target corral-agent corral-worker corralctl "
                "corral-loadgen (or pass --build DIR / set %s)" %
                (key, paths[key], build, env))
    if shutil.which("node") is None:
        raise SystemExit("bench: node is not on PATH (Node 18+ needed)")
    return paths


def install_pm2():
    if os.access(PM2, os.X_OK):
        return
    if shutil.which("npm") is None:
        raise SystemExit("bench: npm is not on PATH; it installs PM2")
    print("installing PM2 into %s/node_modules ..." % HERE, flush=True)
    subprocess.run(["npm", "install", "--prefix", HERE, "--no-audit",
                    "--no-fund", "--loglevel=error", "pm2@7"], check=True)


def measure(system, paths, args, path, out):
    """One throughput run, with the CPU the workers and the supervisor
    spent on it (the supervisor's share shows who is on the data path)."""
    workers, sup = system.worker_pids(), system.supervisor()
    w0 = systems.cpu_seconds(workers)
    s0 = systems.cpu_seconds([sup] if sup else [])
    res = report.summary(loadgen(paths, args, system.port, path,
                                 args.duration, out), system.workers)
    ok = max(res["ok"], 1)
    res["worker_us"] = 1e6 * (systems.cpu_seconds(workers) - w0) / ok
    res["supervisor_us"] = 1e6 * (systems.cpu_seconds(
        [sup] if sup else []) - s0) / ok
    return res


def loadgen(paths, args, port, path, duration, out, wait=True,
            extra=()):
    argv = [paths["loadgen"], "--url", "http://127.0.0.1:%d%s" % (port, path),
            "--connections", str(args.connections), "--threads",
            str(args.threads), "--duration", str(duration), "--timeout",
            str(args.timeout), "--out", out] + list(extra)
    if wait:
        subprocess.run(argv, check=True, timeout=duration + 60)
        with open(out) as f:
            return json.load(f)
    return spawn(argv)


class Windows:
    """Times of the events under load; failures are attributed to them."""

    def __init__(self, settle):
        self.settle, self.list = settle, []

    def run(self, kind, action, **extra):
        t0 = time.monotonic()
        action()
        t1 = time.monotonic()
        time.sleep(self.settle)
        self.list.append(dict(kind=kind, t0=t0, t1=t1, end=time.monotonic(),
                              seconds=t1 - t0, **extra))

    def attribute(self, events):
        """Failed requests per window, by kind. A failure belongs to the
        window holding the time it failed (a timeout: the time it was sent).
        """
        for w in self.list:
            w.update(failed=0, kinds={}, on_victim=0)
        outside = {}
        for e in events:
            t = e["start"] if e["kind"] == "timeout" else e["fail"]
            w = next((w for w in self.list if w["t0"] <= t < w["end"]), None)
            if w is None:
                outside[e["kind"]] = outside.get(e["kind"], 0) + 1
                continue
            w["failed"] += 1
            w["kinds"][e["kind"]] = w["kinds"].get(e["kind"], 0) + 1
            if str(w.get("victim")) == e["worker"]:
                w["on_victim"] += 1
        return outside


def kill_one(system, windows):
    victim = system.worker_pids()[0]

    def kill():
        os.kill(victim, signal.SIGKILL)
        poll(lambda: victim not in system.worker_pids() and system.serving(),
             60, "%s to replace worker %d" % (system.name, victim))
    windows.run("kill", kill, victim=victim)


def under_load(system, paths, args, out):
    """Reloads, a kill, a scale and a drain, all under one load run on /."""
    ack = out + ".drain-ack"
    lg = loadgen(paths, args, system.port, "/", 900, out, wait=False,
                 extra=["--drain-ack", ack])
    time.sleep(1.0)  # connections established, traffic steady
    windows = Windows(args.settle)
    for _ in range(args.reloads):
        windows.run("reload", lambda: (system.reload(),
                                       system.wait_serving()))
    kill_one(system, windows)
    if system.scalable:
        # Keep-alive connections stay where they are: after 2->4 the new
        # workers have none, and removing them would prove nothing. A reload
        # at 4 spreads the connections over all four first (its failures
        # stay in the prelude window, out of the table).
        windows.run("scale_prelude", lambda: (
            system.scale(4), system.wait_serving(4), system.reload(),
            system.wait_serving(4)))
        for kind, count in (("scale_down", 2), ("scale_up", 4),
                            ("scale_back", 2)):
            windows.run(kind, lambda c=count: (system.scale(c),
                                               system.wait_serving(c)))
    # SIGTERM drain: the load generator stops opening connections (the
    # endpoint is gone from the load balancer) and uses the open ones until
    # the server closes them. The SIGTERM waits for the load generator to
    # say drain mode is in effect on every thread: sent at once, a loaded
    # machine let the draining workers close connections that the load
    # generator, not yet draining, opened again (issue 10: 16 and 32 resets
    # at load average 13+). The removal precedes the SIGTERM, as a
    # --drain-delay would make it.
    t0 = time.monotonic()
    lg.send_signal(signal.SIGUSR1)
    poll(lambda: os.path.exists(ack), 30, "the load generator to drain")
    system.terminate()
    poll(lambda: not system.running(), 60, "%s to exit" % system.name)
    t1 = time.monotonic()
    try:
        lg.wait(args.timeout + 5)
    except subprocess.TimeoutExpired:
        lg.send_signal(signal.SIGINT)
        lg.wait(10)
    windows.list.append(dict(kind="drain", t0=t0, t1=t1, end=float("inf"),
                             seconds=t1 - t0))
    with open(out) as f:
        result = json.load(f)
    outside = windows.attribute(result["events"])
    for w in windows.list:
        w.pop("end")
        w.pop("t0")
        w.pop("t1")
    return {"windows": windows.list, "outside": outside,
            "ok": result["ok"], "failed": result["failed"]}


def make_system(name, tmp, env, log, paths, args):
    w = 2
    if name == "corral-worker":
        return systems.Corral(name, w, tmp, env, log, paths, False,
                              args.agent_flag)
    if name == "corral-node":
        return systems.Corral(name, w, tmp, env, log, paths, True,
                              args.agent_flag)
    if name == "corral-node-register":
        return systems.Corral(name, w, tmp, env, log, paths, True,
                              args.agent_flag, register=True)
    if name == "pm2":
        return systems.Pm2(name, w, tmp, env, log, PM2)
    if name == "node-cluster":
        return systems.NodeCluster(name, w, tmp, env, log)
    if name == "bare-node":
        return systems.Bare(name, w, tmp, env, log,
                            ["node", systems.APP_JS])
    return systems.Bare(name, w, tmp, env, log, [paths["worker"]])


def run_system(name, rnd, tmp, env, log, paths, args):
    system = make_system(name, tmp, env, log, paths, args)
    out = lambda what: os.path.join(args.raw or tmp, "%s-r%d-%s.json" %
                                    (name, rnd, what))
    try:
        system.start()
        loadgen(paths, args, system.port, "/", 1, out("warmup"))
        res = {"cheap": measure(system, paths, args, "/", out("cheap")),
               "heavy": measure(system, paths, args,
                                "/heavy?n=%d" % args.heavy_n, out("heavy"))}
        if system.events:
            res.update(under_load(system, paths, args, out("events")))
        else:
            system.terminate()
            poll(lambda: not system.running(), 30, name + " to exit")
        return res
    finally:
        system.cleanup()


def report_only(args):
    with open(args.report) as f:
        doc = json.load(f)
    print(report.table(doc))
    print()
    print(report.markdown(doc))
    with open(args.svg, "w") as f:
        f.write(report.svg(doc))
    print("wrote %s" % args.svg)


def main():
    args = parse_args()
    if args.report:
        return report_only(args)
    paths = tool_paths(args)
    if "pm2" in args.systems:
        install_pm2()
    if args.raw:
        os.makedirs(args.raw, exist_ok=True)
    # Ctrl-C and SIGTERM both unwind through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LISTEN_") and k not in ("PORT", "PM2_HOME")}
    env["PM2_DISABLE_VERSION_CHECK"] = "true"
    tmp = tempfile.mkdtemp(prefix="corral-traffic-")
    results = {name: [] for name in args.systems}
    load = [os.getloadavg()]
    try:
        if not env.get("REDIS_URL"):
            rport = systems.free_port()
            spawn(["redis-server", "--port", str(rport), "--bind",
                   "127.0.0.1", "--save", "", "--dir", tmp],
                  stdout=subprocess.DEVNULL)
            env["REDIS_URL"] = "redis://127.0.0.1:%d/0" % rport
        with open(os.path.join(tmp, "systems.log"), "w") as log:
            for rnd in range(args.rounds):
                order = args.systems if rnd % 2 == 0 else args.systems[::-1]
                for name in order:
                    print("round %d/%d: %s" % (rnd + 1, args.rounds, name),
                          flush=True)
                    results[name].append(run_system(name, rnd, tmp, env, log,
                                                    paths, args))
                    load.append(os.getloadavg())
    except Exception:
        print("bench: failed; the systems' output is in %s/systems.log" % tmp,
              file=sys.stderr)
        tmp = None  # keep it for the post-mortem
        raise
    finally:
        for p in systems.PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    doc = report.build(args, results, load)
    print(report.table(doc))
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    with open(args.svg, "w") as f:
        f.write(report.svg(doc))
    print("wrote %s and %s" % (args.json, args.svg))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench: interrupted; every process it started is gone")
