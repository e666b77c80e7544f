#!/usr/bin/env python3
"""Renders each Grafana dashboard's panels from a live Prometheus into one PNG per dashboard.

    python3 tools/render_dashboards.py --prom http://127.0.0.1:9090 --start T0 --end T1 \\
        --out target/dashboard-images [--instance REGEX] [--pair REGEX] [--job REGEX] \\
        [--probe REGEX] [--scrape-interval 1] [--only failbackd-node]

Grafana cannot run here, so this draws what an operator would see: every panel of
dashboards/*.json at its gridPos (x, y, w, h on the 24-column grid), with the panel's own queries
(template variables substituted as Grafana would: $__interval is the step, $__rate_interval
max(step + scrape, 4 x scrape), $__range the whole window), value mappings, thresholds and
units. Panel types: timeseries (lines, bars), state-timeline, stat, bargauge, table, heatmap;
annotations are drawn as vertical lines on the time panels. A query without data draws
"no data" (or the panel's noValue text), never an error. Needs matplotlib (Debian
python3-matplotlib); the images are written as <dashboard>.png.
Exit status 1 if Prometheus cannot be reached or a query does not evaluate (status error).
"""

import argparse
import datetime
import json
import math
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

# Grafana's named colours (dark theme) used by the dashboards.
COLORS = {
    "green": "#73BF69", "orange": "#FF9830", "red": "#F2495C", "yellow": "#FADE2A",
    "blue": "#5794F2", "light-blue": "#8AB8FF", "purple": "#B877D9", "text": "#CCCCDC",
    "transparent": "#22252b",
}
PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#705DA0",
           "#37872D", "#FADE2A"]
BG, PANEL_BG, FG, GRID = "#111217", "#181b1f", "#CCCCDC", "#2c3036"
VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LEGEND_RE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
COL_IN, ROW_IN = 0.75, 0.42  # inches per grid column / grid row


class Prom:
    def __init__(self, url):
        self.url, self.errors = url.rstrip("/"), []

    def get(self, path, **params):
        url = self.url + path + "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=15) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                body = {"status": "error", "error": "HTTP %d" % e.code}
        except (OSError, ValueError) as e:
            body = {"status": "error", "error": repr(e)}
        if body.get("status") != "success":
            self.errors.append("%s: %s" % (params.get("query", path), body.get("error")))
            return []
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "values": [data["result"]]}]
        if data["resultType"] == "vector":
            return [{"metric": r["metric"], "values": [r["value"]]} for r in data["result"]]
        return data["result"]


def fmt_duration(ts):
    return "%ds" % max(1, int(round(ts)))


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return "" if name == "datasource" else values.get(name, m.group(0))
    return VAR_RE.sub(repl, expr)


def legend(fmt, metric):
    if not fmt or fmt == "__auto":
        labels = {k: v for k, v in metric.items() if k != "__name__"}
        return ", ".join("%s=%s" % kv for kv in sorted(labels.items())) or metric.get("__name__", "value")
    return LEGEND_RE.sub(lambda m: metric.get(m.group(1), ""), fmt)


def numbers(series):
    out = []
    for t, v in series["values"]:
        v = float(v)
        if not math.isnan(v):
            out.append((float(t), v))
    return out


def fmt_value(v, unit, decimals=None):
    if v is None:
        return "-"
    if unit == "s":
        a = abs(v)
        if a >= 3600:
            return "%.1f h" % (v / 3600)
        if a >= 60:
            return "%.1f min" % (v / 60)
        if a >= 1 or v == 0:
            return ("%.0f s" if a >= 10 or decimals == 0 else "%.2g s") % v
        return "%.3g ms" % (v * 1000)
    if unit == "percentunit":
        return "%.0f%%" % (v * 100)
    if unit == "bytes":
        for div, suf in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
            if abs(v) >= div:
                return "%.1f %s" % (v / div, suf)
        return "%.0f B" % v
    if unit == "ops":
        return "%.2g/s" % v
    if decimals == 0 or float(v).is_integer():
        return "%d" % round(v)
    return "%.3g" % v


def mapping_for(mappings, v):
    """(text, colour) of a value mapping, or None."""
    for m in mappings or []:
        if m.get("type") == "value":
            opt = m["options"].get(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
            if opt:
                return opt.get("text"), COLORS.get(opt.get("color"), opt.get("color"))
    return None


def threshold_color(steps, v):
    color = None
    for st in (steps or {}).get("steps", []):
        if st["value"] is None or (v is not None and v >= st["value"]):
            color = st["color"]
    return COLORS.get(color, color)


def field_cfg(panel, name):
    """fieldConfig defaults with the byName overrides for `name` applied (unit, mappings, ...)."""
    d = dict(panel.get("fieldConfig", {}).get("defaults", {}))
    for o in panel.get("fieldConfig", {}).get("overrides", []):
        if o["matcher"].get("options") == name:
            for prop in o["properties"]:
                d[prop["id"]] = prop["value"]
    return d


class Renderer:
    def __init__(self, prom, start, end, values, scrape):
        self.prom, self.start, self.end = prom, start, end
        self.step = max(1, int((end - start) / 240))
        rate = max(self.step + scrape, 4 * scrape)
        self.values = dict(values, __interval=fmt_duration(self.step), __rate_interval=fmt_duration(rate),
                           __range=fmt_duration(end - start))

    def range(self, expr):
        return self.prom.get("/api/v1/query_range", query=substitute(expr, self.values),
                             start=self.start, end=self.end, step=self.step)

    def instant(self, expr):
        return self.prom.get("/api/v1/query", query=substitute(expr, self.values), time=self.end)

    def results(self, panel, force_instant=False):
        """[(target, legend, metric, [(t, v)])] for every series of every target."""
        out = []
        for t in panel.get("targets", []):
            res = self.instant(t["expr"]) if (t.get("instant") or force_instant) else self.range(t["expr"])
            for s in res:
                pts = numbers(s)
                if pts:
                    out.append((t, legend(t.get("legendFormat"), s["metric"]), s["metric"], pts))
        return out

    # ---- panel kinds ---------------------------------------------------------------------

    def time_axis(self, ax):
        ax.set_xlim(mdates.date2num(dt(self.start)), mdates.date2num(dt(self.end)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))

    def timeseries(self, ax, panel, anns):
        data = self.results(panel)
        if not data:
            return False
        custom = panel["fieldConfig"]["defaults"].get("custom", {})
        bars = custom.get("drawStyle") == "bars"
        stack = custom.get("stacking", {}).get("mode") == "normal"
        bottoms = {}
        width = self.step / 86400.0
        for i, (t, name, _m, pts) in enumerate(data):
            cfg = field_cfg(panel, name)
            color = cfg.get("color", {}).get("fixedColor") if cfg.get("color", {}).get("mode") == "fixed" else None
            color = COLORS.get(color, color) or PALETTE[i % len(PALETTE)]
            xs = [mdates.date2num(dt(p[0])) for p in pts]
            ys = [p[1] for p in pts]
            if bars:
                base = [bottoms.get(x, 0.0) for x in xs] if stack else [0.0] * len(xs)
                ax.bar(xs, ys, width=width, bottom=base, color=color, label=name, align="center")
                if stack:
                    for x, y, b in zip(xs, ys, base):
                        bottoms[x] = b + y
            else:
                dashed = "custom.lineStyle" in cfg
                ax.step(xs, ys, where="post", color=color, label=name, linestyle="--" if dashed else "-", lw=1.4)
        unit = panel["fieldConfig"]["defaults"].get("unit", "short")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: fmt_value(v, unit)))
        self.time_axis(ax)
        self.annotate(ax, anns)
        ax.legend(loc="upper left", fontsize=6, facecolor=PANEL_BG, edgecolor=GRID, labelcolor=FG,
                  ncol=2 if len(data) > 4 else 1, framealpha=0.8)
        return True

    def state_timeline(self, ax, panel, anns):
        data = self.results(panel)
        if not data:
            return False
        rows = list(reversed(data))
        for r, (_t, name, _m, pts) in enumerate(rows):
            mappings = field_cfg(panel, name).get("mappings", panel["fieldConfig"]["defaults"].get("mappings"))
            segs = []  # (start, end, value)
            for (t0, v), nxt in zip(pts, pts[1:] + [(None, None)]):
                t1 = nxt[0] if nxt[0] is not None and nxt[0] - t0 <= 2 * self.step else t0 + self.step
                if segs and segs[-1][2] == v and abs(segs[-1][1] - t0) < 1e-6:
                    segs[-1] = (segs[-1][0], t1, v)
                else:
                    segs.append((t0, t1, v))
            for t0, t1, v in segs:
                mp = mapping_for(mappings, v)
                text, color = mp if mp else (fmt_value(v, "short"), PALETTE[0])
                x0, x1 = mdates.date2num(dt(t0)), mdates.date2num(dt(t1))
                ax.broken_barh([(x0, x1 - x0)], (r + 0.05, 0.9), facecolors=color, edgecolor=PANEL_BG, lw=0.5)
                if (t1 - t0) > (self.end - self.start) / 14:
                    ax.text((x0 + x1) / 2, r + 0.5, text, ha="center", va="center", fontsize=6, color="#111217")
        ax.set_ylim(0, len(rows))
        ax.set_yticks([r + 0.5 for r in range(len(rows))])
        ax.set_yticklabels([name for _t, name, _m, _p in rows], fontsize=6)
        self.time_axis(ax)
        self.annotate(ax, anns)
        return True

    def stat(self, ax, panel, _anns):
        data = self.results(panel)
        d = panel["fieldConfig"]["defaults"]
        ax.set_axis_off()
        if not data:
            return self.no_data(ax, panel)
        opts = panel.get("options", {})
        n = len(data)
        for i, (_t, name, _m, pts) in enumerate(data):
            v = pts[-1][1]
            cfg = field_cfg(panel, name)
            unit = cfg.get("unit", d.get("unit", "short"))
            mp = mapping_for(cfg.get("mappings", d.get("mappings")), v)
            text = mp[0] if mp else fmt_value(v, unit, cfg.get("decimals"))
            color = (mp[1] if mp else None) or threshold_color(cfg.get("thresholds", d.get("thresholds")), v)
            x0, w = i / n, 1.0 / n
            if opts.get("colorMode") == "background" and color:
                ax.add_patch(matplotlib.patches.Rectangle((x0 + 0.01, 0.03), w - 0.02, 0.94, color=color,
                                                          transform=ax.transAxes))
                fg = "#111217"
            else:
                fg = color or FG
            if opts.get("textMode") == "name":
                big, small = name, None
            else:
                big, small = text, (name if n > 1 else None)
            size = max(7, min(22, 60 / max(1, len(big)) * (1.0 / n) * 8))
            ax.text(x0 + w / 2, 0.45, big, ha="center", va="center", fontsize=size, color=fg, weight="bold",
                    transform=ax.transAxes)
            if small:
                ax.text(x0 + w / 2, 0.85, small, ha="center", va="center", fontsize=6, color=fg,
                        transform=ax.transAxes)
        return True

    def bargauge(self, ax, panel, _anns):
        data = self.results(panel, force_instant=True)
        if not data:
            ax.set_axis_off()
            return self.no_data(ax, panel)
        unit = panel["fieldConfig"]["defaults"].get("unit", "short")
        names = [name for _t, name, _m, _p in data]
        vals = [pts[-1][1] for _t, _n, _m, pts in data]
        ys = range(len(vals))
        top = max(vals) or 1.0
        ax.barh(list(ys), vals, color=[plt.cm.RdYlGn_r(min(1.0, v / top) * 0.8 + 0.1) for v in vals], height=0.6)
        for y, v in zip(ys, vals):
            ax.text(v, y, " " + fmt_value(v, unit), va="center", fontsize=7, color=FG)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(names, fontsize=7)
        ax.set_xlim(0, top * 1.3)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: fmt_value(v, unit)))
        return True

    def table(self, ax, panel, _anns):
        ax.set_axis_off()
        trans = {t["id"]: t["options"] for t in panel.get("transformations", [])}
        org = trans.get("organize", {})
        exclude, renames = set(org.get("excludeByName", {})), org.get("renameByName", {})
        rows, cols = {}, []
        for t in panel.get("targets", []):
            vcol = "Value #%s" % t["refId"] if len(panel["targets"]) > 1 else "Value"
            for s in self.instant(t["expr"]):
                pts = numbers(s)
                labels = {k: v for k, v in s["metric"].items() if k != "__name__"}
                key = tuple(sorted((k, v) for k, v in labels.items() if k in ("pair", "instance", "alertname", "probe",
                                                                              "vhid", "interface", "severity")))
                row = rows.setdefault(key, {})
                for k, v in labels.items():
                    row[k] = v
                    if k not in cols:
                        cols.append(k)
                row[vcol] = pts[-1][1] if pts else None
                if vcol not in cols:
                    cols.append(vcol)
        cols = [c for c in cols if c not in exclude and c not in ("job",)]
        if not rows or not cols:
            return self.no_data(ax, panel)
        sort = (panel.get("options", {}).get("sortBy") or [{}])[0].get("displayName")
        inv = {v: k for k, v in renames.items()}
        body, colors = [], []
        for _k, row in sorted(rows.items(), key=lambda kv: str(kv[1].get(inv.get(sort, sort), ""))):
            line, cl = [], []
            for c in cols:
                name = renames.get(c, c)
                v = row.get(c)
                cfg = field_cfg(panel, name)
                if isinstance(v, float):
                    mp = mapping_for(cfg.get("mappings"), v)
                    line.append(mp[0] if mp else fmt_value(v, cfg.get("unit", "short")))
                    color = mp[1] if mp else (threshold_color(cfg.get("thresholds"), v) if "thresholds" in cfg else None)
                else:
                    mp = mapping_for(cfg.get("mappings"), v) if v is not None else None
                    line.append(mp[0] if mp else ("" if v is None else str(v)))
                    color = mp[1] if mp else None
                cl.append(color or PANEL_BG)
            body.append(line)
            colors.append(cl)
        tbl = ax.table(cellText=body[:14], colLabels=[renames.get(c, c) for c in cols], cellColours=colors[:14],
                       loc="upper center", cellLoc="left", colLoc="left")
        tbl.auto_set_font_size(False)
        tbl.set_fontsize(6.5)
        for (r, _c), cell in tbl.get_celld().items():
            cell.set_edgecolor(GRID)
            cell.get_text().set_color(FG if r == 0 or cell.get_facecolor()[:3] == matplotlib.colors.to_rgb(PANEL_BG)
                                      else "#111217")
            if r == 0:
                cell.set_facecolor("#22252b")
        tbl.scale(1, 1.25)
        return True

    def heatmap(self, ax, panel, _anns):
        data = self.results(panel)
        if not data:
            return False
        buckets = sorted(((float(m.get("le", "inf")), pts) for _t, _n, m, pts in data), key=lambda b: b[0])
        times = sorted({t for _le, pts in buckets for t, _v in pts})
        idx = {t: i for i, t in enumerate(times)}
        grid, prev = [], [0.0] * len(times)
        for _le, pts in buckets:  # cumulative -> per bucket
            cur = [0.0] * len(times)
            for t, v in pts:
                cur[idx[t]] = v
            grid.append([max(0.0, c - p) for c, p in zip(cur, prev)])
            prev = cur
        x0, x1 = mdates.date2num(dt(times[0])), mdates.date2num(dt(times[-1] + self.step))
        cmap = matplotlib.colors.LinearSegmentedColormap.from_list("cells", ["#5c2c06", "#FF9830", "#FADE2A"])
        cmap.set_bad(PANEL_BG)  # empty cells show the panel, as in Grafana
        masked = [[v if v > 0 else float("nan") for v in row] for row in grid]
        ax.imshow(masked, aspect="auto", origin="lower", cmap=cmap, extent=(x0, x1, 0, len(buckets)),
                  interpolation="nearest")
        labels = [fmt_value(le, "s") if not math.isinf(le) else "+Inf" for le, _p in buckets]
        every = max(1, len(labels) // 6)
        ax.set_yticks([i + 0.5 for i in range(0, len(labels), every)])
        ax.set_yticklabels(labels[::every], fontsize=6)
        self.time_axis(ax)
        return True

    # ---- common ---------------------------------------------------------------------------

    def no_data(self, ax, panel):
        text = panel["fieldConfig"]["defaults"].get("noValue") or "no data"
        ax.set_axis_off()
        ax.text(0.5, 0.45, text, ha="center", va="center", fontsize=10, color="#8e8e8e", transform=ax.transAxes)
        return True

    def annotate(self, ax, anns):
        for name, color, times in anns:
            for t in times:
                ax.axvline(mdates.date2num(dt(t)), color=color, lw=0.8, ls=":", alpha=0.9)
        if anns:
            ax.set_title(" ".join("| %s" % n for n, _c, ts in anns if ts), fontsize=5, color="#8e8e8e", loc="right")

    def annotation_times(self, dash):
        """[(name, colour, [start of each run of samples])] of the dashboard's annotations."""
        out = []
        for a in dash.get("annotations", {}).get("list", []):
            times = set()
            for s in self.range(a["expr"]):
                for t, _v in numbers(s):
                    times.add(t)
            starts = [t for t in sorted(times) if t - self.step not in times]
            out.append((a["name"], COLORS.get(a.get("iconColor"), a.get("iconColor")), starts))
        return out

    def draw(self, dash, path):
        panels = dash["panels"]
        rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
        title_h = 0.5
        fig = plt.figure(figsize=(24 * COL_IN, rows * ROW_IN + title_h), facecolor=BG)
        total_h = rows * ROW_IN + title_h
        fig.text(0.005, 1 - 0.3 / total_h, "%s   (%s .. %s, step %ss)" % (
            dash["title"], dt(self.start).strftime("%H:%M:%S"), dt(self.end).strftime("%H:%M:%S UTC"), self.step),
            color=FG, fontsize=11, weight="bold", va="center")
        anns = self.annotation_times(dash)
        kinds = {"timeseries": self.timeseries, "state-timeline": self.state_timeline, "stat": self.stat,
                 "bargauge": self.bargauge, "table": self.table, "heatmap": self.heatmap}
        for p in panels:
            gp = p["gridPos"]
            pad_x, pad_y = 0.004, 0.06 / total_h
            left = gp["x"] / 24 + pad_x
            width = gp["w"] / 24 - 2 * pad_x
            top = 1 - (title_h + gp["y"] * ROW_IN) / total_h
            height = gp["h"] * ROW_IN / total_h
            frame = fig.add_axes((left, top - height + pad_y, width, height - 2 * pad_y))
            frame.set_facecolor(PANEL_BG)
            frame.set_xticks([])
            frame.set_yticks([])
            for sp in frame.spines.values():
                sp.set_color(GRID)
            frame.text(0.01, 1 - 0.16 / (gp["h"] * ROW_IN), p["title"], transform=frame.transAxes, fontsize=8,
                       color=FG, weight="bold", va="top")
            inner_h = (gp["h"] * ROW_IN - 0.32) / total_h
            side = 0.045 if p["type"] in ("stat", "table") else (0.16 if p["type"] in ("state-timeline", "bargauge")
                                                                 else 0.05)
            ax = fig.add_axes((left + width * side, top - height + pad_y + (0.05 if p["type"] not in ("stat", "table")
                                                                            else 0.01) * height,
                               width * (1 - side - 0.015), inner_h * (0.82 if p["type"] not in ("stat", "table")
                                                                      else 0.95)))
            ax.set_facecolor(PANEL_BG)
            ax.tick_params(colors=FG, labelsize=6)
            for sp in ax.spines.values():
                sp.set_color(GRID)
            ax.grid(color=GRID, lw=0.5)
            time_anns = anns if p["type"] in ("timeseries", "state-timeline") else []
            if not kinds[p["type"]](ax, p, time_anns):
                ax.cla()
                ax.set_facecolor(PANEL_BG)
                self.no_data(ax, p)
        fig.savefig(path, dpi=80, facecolor=BG)
        plt.close(fig)


def dt(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--prom", required=True, help="Prometheus base URL")
    ap.add_argument("--start", type=float, required=True, help="Unix time of the left edge")
    ap.add_argument("--end", type=float, required=True, help="Unix time of the right edge")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--dir", default=os.path.join(HERE, "..", "dashboards"), help="dashboards directory")
    ap.add_argument("--instance", default=".+")
    ap.add_argument("--pair", default=".*")
    ap.add_argument("--job", default=".+")
    ap.add_argument("--probe", default=".+")
    ap.add_argument("--scrape-interval", type=float, default=1.0, help="seconds (for $__rate_interval)")
    ap.add_argument("--only", action="append", help="render only this dashboard (file name without .json)")
    args = ap.parse_args()
    prom = Prom(args.prom)
    values = {"instance": args.instance, "pair": args.pair, "job": args.job, "probe": args.probe}
    os.makedirs(args.out, exist_ok=True)
    r = Renderer(prom, args.start, args.end, values, args.scrape_interval)
    for name in sorted(os.listdir(args.dir)):
        if not name.endswith(".json") or (args.only and name[: -len(".json")] not in args.only):
            continue
        with open(os.path.join(args.dir, name), encoding="utf-8") as f:
            dash = json.load(f)
        path = os.path.join(args.out, name[: -len(".json")] + ".png")
        r.draw(dash, path)
        print("render_dashboards: wrote %s (%d panels)" % (path, len(dash["panels"])), file=sys.stderr)
    for e in prom.errors:
        print("render_dashboards: query failed: %s" % e, file=sys.stderr)
    return 1 if prom.errors else 0


if __name__ == "__main__":
    sys.exit(main())
