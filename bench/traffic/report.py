"""Figures, table and chart of the traffic benchmark (bench.py's output)."""
import datetime
import os
import platform
import subprocess

NA = "n/a"
ORDER = ["corral-worker", "corral-node", "corral-node-register", "pm2", "node-cluster", "bare-node",
         "bare-worker"]
LABEL = {"corral-worker": "corral + corral-worker",
         "corral-node": "corral + Node app",
         "corral-node-register": "corral + tutorial app, node -r register",
         "pm2": "PM2 cluster",
         "node-cluster": "Node cluster", "bare-node": "no supervisor, Node",
         "bare-worker": "no supervisor, corral-worker"}
COLOR = {"corral-worker": "#1b6ca8", "corral-node": "#4fa3d9",
         "corral-node-register": "#8e44ad",
         "pm2": "#c0392b", "node-cluster": "#27ae60", "bare-node": "#7f8c8d",
         "bare-worker": "#b0b7bb"}
# The no-supervisor run of the same app: the throughput limit.
LIMIT = {"corral-worker": "bare-worker", "bare-worker": "bare-worker",
         "corral-node": "bare-node", "corral-node-register": "bare-node",
         "pm2": "bare-node",
         "node-cluster": "bare-node", "bare-node": "bare-node"}
KINDS = ["refused", "reset", "eof_idle", "eof_mid", "eof_new", "timeout",
         "non2xx", "other"]


def spread(counts, workers):
    """max/min over `workers` workers (missing ones count 0); None = inf."""
    counts = sorted(counts + [0] * max(0, workers - len(counts)),
                    reverse=True)
    return None if counts[-1] == 0 else counts[0] / counts[-1]


def summary(lg, workers):
    """One load generator run, reduced to its figures."""
    ws = sorted(lg["workers"], key=lambda w: -w["requests"])
    return {"rps": lg["rps"], "p50": lg["latency_ms"]["p50"],
            "p99": lg["latency_ms"]["p99"], "ok": lg["ok"],
            "failed": lg["failed"],
            "kinds": {k: v for k, v in lg["failures"].items() if v},
            "workers": [[w["id"], w["requests"], w["connections"]]
                        for w in ws],
            "req_spread": spread([w["requests"] for w in ws], workers),
            "conn_spread": spread([w["connections"] for w in ws], workers),
            "conns": "/".join(str(c) for c in sorted(
                [w["connections"] for w in ws] +
                [0] * max(0, workers - len(ws)), reverse=True))}


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] +
                                         values[n // 2]) / 2


def aggregate(rounds):
    agg = {}
    for route in ("cheap", "heavy"):
        runs = [r[route] for r in rounds]
        agg[route] = {
            "rps": median([r["rps"] for r in runs]),
            "rps_rounds": [round(r["rps"]) for r in runs],
            "p50": median([r["p50"] for r in runs]),
            "p99": median([r["p99"] for r in runs]),
            "worker_us": median([r["worker_us"] for r in runs]),
            "supervisor_us": median([r["supervisor_us"] for r in runs]),
            "failed": sum(r["failed"] for r in runs),
            # None (a worker got nothing) sorts as the worst.
            "req_spread": [r["req_spread"] for r in runs],
            "conn_spread": [r["conn_spread"] for r in runs],
            "conns": [r["conns"] for r in runs]}
    if "windows" not in rounds[0]:
        return agg
    windows = [w for r in rounds for w in r["windows"]]
    of = lambda kind: [w for w in windows if w["kind"] == kind]
    per_round = lambda kinds: [sum(w["failed"] for w in r["windows"]
                                   if w["kind"] in kinds) for r in rounds]
    kinds = {}
    for w in windows:
        for k, v in w["kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    agg.update({
        "reload": [w["failed"] for w in of("reload")],
        "reload_seconds": [w["seconds"] for w in of("reload")],
        "kill": [w["failed"] for w in of("kill")],
        "kill_on_victim": [w["on_victim"] for w in of("kill")],
        "kill_seconds": [w["seconds"] for w in of("kill")],
        "scale": per_round(("scale_down", "scale_up")) if of("scale_down")
        else None,
        "drain": [w["failed"] for w in of("drain")],
        "drain_seconds": [w["seconds"] for w in of("drain")],
        "kinds": kinds,
        "outside": sum(sum(r["outside"].values()) for r in rounds)})
    return agg


def version(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except OSError:
        return ""


def build(args, results, load):
    pm2 = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "node_modules", "pm2", "package.json")
    doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "command": "bench/traffic/bench.py " + " ".join(
               "--%s=%s" % (k.replace("_", "-"), v) for k, v in (
                   ("rounds", args.rounds), ("duration", args.duration),
                   ("connections", args.connections),
                   ("heavy_n", args.heavy_n), ("reloads", args.reloads))) +
           "".join(" --agent-flag=" + f for f in args.agent_flag),
           "connections": args.connections, "cpus": os.cpu_count(), "kernel": platform.release(),
           "node": version(["node", "--version"]),
           "pm2": version(["node", "-p", "require(%r).version" % pm2]),
           "load": [round(min(x[0] for x in load), 2),
                    round(max(x[0] for x in load), 2)],
           "systems": {}}
    for name in ORDER:
        if name in results and results[name]:
            doc["systems"][name] = {"rounds": results[name],
                                    "agg": aggregate(results[name])}
    for name, d in doc["systems"].items():
        limit = doc["systems"].get(LIMIT[name])
        for route in ("cheap", "heavy"):
            # Per round: the system and its limit ran minutes apart at most.
            d["agg"][route]["vs_limit"] = [
                r[route]["rps"] / l[route]["rps"] for r, l in zip(
                    d["rounds"], limit["rounds"])] if limit else []
    return doc


def fmt_range(values, digits=0):
    values = [v for v in (values or []) if v is not None]
    if not values:
        return NA
    f = "%%.%df" % digits
    lo, hi = f % min(values), f % max(values)
    return lo if lo == hi else lo + "-" + hi


def spread_median(values):
    """Median of max/min ratios where None (a worker got nothing) is
    infinite; None if the median itself is."""
    m = median([float("inf") if v is None else v for v in values])
    return None if m == float("inf") else m


def fmt_spread(values):
    if not values:
        return NA
    text = lambda v: "inf" if v is None else "%.2f" % v
    worst = None if None in values else max(values)
    return "%s (worst %s)" % (text(spread_median(values)), text(worst))


def rows(doc):
    """(figure, {system: text}) for the table."""
    s = {n: d["agg"] for n, d in doc["systems"].items()}
    get = lambda f: {n: f(a) for n, a in s.items()}
    ev = lambda f: get(lambda a: f(a) if "reload" in a else NA)
    out = []
    for route, path in (("cheap", "/"), ("heavy", "/heavy")):
        out += [("req/s %s" % path, get(lambda a: "%.0f" % a[route]["rps"])),
                ("  vs no supervisor", get(lambda a: "%.2f (%s)" % (
                    median(a[route]["vs_limit"]), fmt_range(
                        a[route]["vs_limit"], 2)) if a[route]["vs_limit"]
                    else NA)),
                ("  p50 / p99 ms",
                 get(lambda a: "%.2f / %.1f" % (a[route]["p50"],
                                                a[route]["p99"]))),
                ("  CPU us/req workers+sup.",
                 get(lambda a: "%.0f + %.0f" % (a[route]["worker_us"],
                                                a[route]["supervisor_us"])))]
    out += [
        ("requests max/min /", get(lambda a: fmt_spread(
            a["cheap"]["req_spread"]))),
        ("requests max/min /heavy", get(lambda a: fmt_spread(
            a["heavy"]["req_spread"]))),
        ("connections per worker /", get(lambda a: " ".join(
            a["cheap"]["conns"]))),
        ("failed per reload", ev(lambda a: fmt_range(a["reload"]) +
                                 " (median %s)" % fmt_range(
                                     [median(a["reload"])]))),
        ("reload time s", ev(lambda a: fmt_range(a["reload_seconds"], 1))),
        ("failed per worker SIGKILL", ev(lambda a: "%s (%s on its conns)" % (
            fmt_range(a["kill"]), fmt_range(a["kill_on_victim"])))),
        ("failed per scale 4->2->4", ev(lambda a: fmt_range(a["scale"])
                                        if a["scale"] else NA)),
        ("failed per SIGTERM drain", ev(lambda a: fmt_range(a["drain"]))),
        ("failures by kind (all events)", ev(lambda a: " ".join(
            "%s=%d" % (k, a["kinds"][k]) for k in KINDS if k in a["kinds"])
            or "none")),
        ("failed outside events", ev(lambda a: str(a["outside"]))),
        ("failed in throughput runs", get(lambda a: str(
            a["cheap"]["failed"] + a["heavy"]["failed"]))),
    ]
    return out


def table(doc):
    names = list(doc["systems"])
    data = rows(doc)
    widths = [max(len(f) for f, _ in data)] + [
        max(len(n), *(len(v[n]) for _, v in data)) for n in names]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))
    head = ("%s; %d CPUs, load average %.1f-%.1f, node %s, pm2 %s\n" % (
        doc["command"], doc["cpus"], doc["load"][0], doc["load"][1],
        doc["node"], doc["pm2"]))
    return head + "\n".join([line(["figure"] + names)] + [
        line([f] + [v[n] for n in names]) for f, v in data])


def markdown(doc):
    """The same table in Markdown, for docs/BENCHMARKS.md."""
    names = list(doc["systems"])
    out = ["| figure | " + " | ".join(LABEL[n] for n in names) + " |",
           "|---" * (len(names) + 1) + "|"]
    for f, v in rows(doc):
        out.append("| %s | %s |" % (f, " | ".join(v[n] for n in names)))
    return "\n".join(out)


from svg_chart import svg  # noqa: E402,F401  (kept apart: it is long)
