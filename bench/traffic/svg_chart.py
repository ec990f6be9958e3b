"""docs/traffic-bench.svg: six small bar charts, drawn without matplotlib."""
from xml.sax.saxutils import escape

PANEL_W, LABEL_W, BAR_W, ROW_H, TITLE_H = 500, 175, 255, 22, 34
SUB = {"kill": "#8e44ad", "scale": "#e67e22", "drain": "#34495e"}


def _median(values):
    from report import median
    return median(values)


def _text(x, y, s, size=11, anchor="start", weight="normal", fill="#222"):
    return ('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" '
            'font-weight="%s" fill="%s">%s</text>' % (
                x, y, size, anchor, weight, fill, escape(s)))


def _panel(x, y, title, rows, goal=None, goal_text=""):
    """rows: [(label, [(value or None, lo, hi, text, color)])]; a row of
    several bars gets 12 px per bar."""
    row_h = max(ROW_H, 6 + 12 * max(len(bars) for _, bars in rows))
    values = [v for _, bars in rows for b in bars
              for v in (b[0], b[2]) if v is not None]
    top = max(values + [goal or 0, 1e-9]) * 1.05
    scale = BAR_W / top
    out = [_text(x, y + 14, title, 12, weight="bold")]
    y0 = y + TITLE_H
    for i, (label, bars) in enumerate(rows):
        ry = y0 + i * row_h
        out.append(_text(x + LABEL_W - 6, ry + row_h / 2 + 4, label,
                         anchor="end"))
        if all(b[0] is None for b in bars):
            bars = bars[:1]  # one "n/a" for the row
        h = (row_h - 6) / len(bars)
        for j, (v, lo, hi, text, color) in enumerate(bars):
            by = ry + 3 + j * h
            if v is None:
                if len(bars) == 1:
                    out.append(_text(x + LABEL_W + 4, by + h - 2, text,
                                     11, fill="#777"))
                continue
            w = max(v * scale, 1)
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                       'fill="%s"/>' % (x + LABEL_W, by, w, h - 1, color))
            if lo is not None and hi is not None and hi > lo:
                mid = by + (h - 1) / 2
                out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                           'stroke="#222" stroke-width="1"/>' % (
                               x + LABEL_W + lo * scale, mid,
                               x + LABEL_W + hi * scale, mid))
            end = max(w, (hi or 0) * scale)
            out.append(_text(x + LABEL_W + end + 4, by + h - 2, text,
                             10 if len(bars) > 1 else 11))
    if goal is not None:
        gx = x + LABEL_W + goal * scale
        gy1 = y0 + len(rows) * row_h
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                   'stroke="#c0392b" stroke-dasharray="4,3"/>' % (
                       gx, y0 - 4, gx, gy1))
        out.append(_text(gx + 3, gy1 + 11, goal_text, 10, fill="#c0392b"))
    return "\n".join(out), TITLE_H + len(rows) * row_h + 16


def _bar(values, color, digits=0, na="n/a"):
    values = [v for v in (values or []) if v is not None]
    if not values:
        return (None, None, None, na, color)
    m = _median(values)
    f = "%%.%df" % digits
    text = f % m if len(values) == 1 or min(values) == max(values) else (
        (f + " (" + f + "-" + f + ")") % (m, min(values), max(values)))
    return (m, min(values), max(values), text, color)


def _spread_bar(values, color, cap):
    if not values:
        return (None, None, None, "n/a", color)
    from report import spread_median
    m = spread_median(values)
    worst = None if None in values else max(values)
    text = "%s (worst %s)" % ("inf" if m is None else "%.2f" % m,
                              "inf" if worst is None else "%.2f" % worst)
    return (cap if m is None else min(m, cap), None, None, text, color)


def svg(doc):
    from report import COLOR, LABEL
    names = list(doc["systems"])
    agg = {n: doc["systems"][n]["agg"] for n in names}
    ev = lambda n, key: agg[n].get(key)
    rows = lambda f: [(LABEL[n], f(n)) for n in names]
    spreads = [v for n in names for v in agg[n]["cheap"]["conn_spread"]
               if v is not None]
    cap = max(spreads + [1.5]) * 1.1
    panels = [
        ("requests/s on /, share of no supervisor (same app, round)",
         rows(lambda n: [_bar(agg[n]["cheap"]["vs_limit"], COLOR[n], 2)]),
         0.98, "goal 0.98"),
        ("requests/s on /heavy (CPU-bound), share of no supervisor",
         rows(lambda n: [_bar(agg[n]["heavy"]["vs_limit"], COLOR[n], 2)]),
         0.98, "goal 0.98"),
        ("p99 latency on /heavy, ms (median of rounds)",
         rows(lambda n: [_bar([agg[n]["heavy"]["p99"]], COLOR[n], 1)]),
         None, ""),
        ("connections per worker, busiest/idlest, on /",
         rows(lambda n: [_spread_bar(agg[n]["cheap"]["conn_spread"],
                                     COLOR[n], cap)]), 1.25, "goal 1.25"),
        ("failed requests per rolling reload (median, range)",
         rows(lambda n: [_bar(ev(n, "reload"), COLOR[n])]), 0, "goal 0"),
        ("failed requests per SIGKILL / scale 4-2-4 / drain",
         rows(lambda n: [_bar(ev(n, "kill"), SUB["kill"]),
                         _bar(ev(n, "scale"), SUB["scale"]),
                         _bar(ev(n, "drain"), SUB["drain"])]), 0, "goal 0"),
    ]
    body, heights = [], []
    for i, (title, r, goal, gtext) in enumerate(panels):
        x = 10 + (i % 2) * (PANEL_W + 20)
        y = 60 + sum(heights[j] for j in range(i % 2, i, 2))
        part, h = _panel(x, y, title, r, goal, gtext)
        body.append(part)
        heights.append(h)
    height = 60 + max(sum(heights[0::2]), sum(heights[1::2])) + 10
    width = 2 * PANEL_W + 40
    legend = ("SIGKILL (purple), scale 4-2-4, corral only (orange), "
              "SIGTERM drain (dark)")
    head = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
        'viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">'
        % (width, height, width, height),
        '<rect width="100%" height="100%" fill="white"/>',
        _text(10, 22, "Traffic: 2 workers, %d keep-alive connections, "
              "closed loop (bench/traffic/bench.py)" % doc["connections"],
              15, weight="bold"),
        _text(10, 42, "%s; %d CPUs, load %.1f-%.1f; node %s, pm2 %s. %s" % (
            doc["date"][:10], doc["cpus"], doc["load"][0], doc["load"][1],
            doc["node"], doc["pm2"], legend), 11, fill="#555")]
    return "\n".join(head + body + ["</svg>\n"])
