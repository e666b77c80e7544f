#!/usr/bin/env python3
"""Checks the committed Grafana dashboards; Python 3 standard library only.

    python3 tools/check_dashboards.py                  # (a) regenerate + diff, (b) structure
    python3 tools/check_dashboards.py --print-queries  # also (c): one JSON line per query
        [--instance REGEX] [--pair REGEX] [--job REGEX] [--probe REGEX] [--interval 1m]

(a) tools/gen_dashboards.py is run in memory and its output compared byte for byte with
    dashboards/*.json (a unified diff is shown on a mismatch: regenerate and commit).
(b) Structure: schemaVersion, uid/title, the template variables (datasource, job, instance, pair;
    instance from up{job=~"$job"}, job from failback_build_info without an allValue), every panel's datasource {"type":"prometheus",
    "uid":"${datasource}"}, targets with expr and a refId unique in the panel, a gridPos inside
    the 24-column grid that overlaps no other panel, unique panel ids, no datasource UID other
    than ${datasource} anywhere, and no $variable in a query that the dashboard does not define.
(c) Every panel, annotation and variable query, with the template variables substituted
    ($instance/$pair/$job/$probe by the regexes given, $__rate_interval and $__interval by 1m
    or --rate-interval/--interval,
    $__range by 1h, ${datasource} removed; label_values(S, L) becomes group by (L) (S)), printed
    to stdout as {"dashboard", "panel", "expr"} lines for evaluation against a live Prometheus.
Problems go to stderr; the exit status is 1 if there is any.
"""

import argparse
import difflib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep tools/ free of __pycache__
sys.path.insert(0, HERE)
import gen_dashboards  # noqa: E402  (the one source of the dashboards)

DS = {"type": "prometheus", "uid": "${datasource}"}
BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
PANEL_TYPES = {"stat", "table", "timeseries", "state-timeline", "bargauge", "heatmap"}
REQUIRED_VARS = {
    "failbackd-fleet.json": ["datasource", "job", "pair", "instance"],
    "failbackd-node.json": ["datasource", "job", "instance", "pair"],
}
VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES_RE = re.compile(r"^\s*label_values\((.+),\s*(\w+)\s*\)\s*$", re.S)


class Problems:
    def __init__(self):
        self.items = []

    def __call__(self, where, msg):
        self.items.append("%s: %s" % (where, msg))


def check_generated(dash_dir, problems):
    for name, build in gen_dashboards.DASHBOARDS.items():
        path = os.path.join(dash_dir, name)
        want = gen_dashboards.render(build)
        try:
            with open(path, encoding="utf-8") as f:
                have = f.read()
        except OSError as e:
            problems(name, "cannot read: %s (run tools/gen_dashboards.py)" % e)
            continue
        if have != want:
            diff = difflib.unified_diff(have.splitlines(True), want.splitlines(True),
                                        "%s (committed)" % path, "%s (generated)" % path, n=2)
            sys.stderr.writelines(list(diff)[:80])
            problems(name, "differs from tools/gen_dashboards.py output (run it and commit the JSON)")


def walk_datasources(node, where, problems):
    """Every datasource reference anywhere must be the ${datasource} variable."""
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and ds != DS:
            problems(where, "datasource %s is not %s" % (json.dumps(ds), json.dumps(DS)))
        elif isinstance(ds, str):
            problems(where, "datasource given as a name (%r), not as a reference" % ds)
        for k, v in node.items():
            walk_datasources(v, where, problems)
    elif isinstance(node, list):
        for v in node:
            walk_datasources(v, where, problems)


def check_vars_used(expr, defined, where, problems):
    names = {m.group(1) or m.group(2) or m.group(3) for m in VAR_RE.finditer(expr)}
    for name in sorted(names - set(defined) - set(BUILTINS)):
        problems(where, "query uses undefined variable $%s" % name)


def check_structure(name, d, problems):
    if d.get("schemaVersion") != gen_dashboards.SCHEMA_VERSION:
        problems(name, "schemaVersion %r, expected %r" % (d.get("schemaVersion"), gen_dashboards.SCHEMA_VERSION))
    for key in ("uid", "title"):
        if not isinstance(d.get(key), str) or not d[key]:
            problems(name, "missing %s" % key)
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    for var in REQUIRED_VARS.get(name, []):
        if var not in variables:
            problems(name, "template variable %r missing" % var)
    ds_var = variables.get("datasource", {})
    if ds_var and (ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus"):
        problems(name, "variable datasource must be type datasource, query prometheus")
    # instance (and pair) come from `up` of the failbackd job(s), so a node whose failbackd is down
    # stays listed; the job list comes from failback_build_info and "All" must not be `.+`
    # (that would make up{job=~"$job"} match every target Prometheus scrapes).
    inst = variables.get("instance", {})
    if inst and (inst.get("type") != "query" or not str(inst.get("query", "")).startswith('label_values(up{job=~"$job"')
                 or not str(inst.get("query", "")).endswith(", instance)")):
        problems(name, 'variable instance must be label_values(up{job=~"$job"...}, instance)')
    job = variables.get("job", {})
    if job and (not str(job.get("query", "")).startswith("label_values(failback_build_info") or "allValue" in job):
        problems(name, "variable job must be label_values(failback_build_info, job) without an allValue")
    for v in variables.values():
        if v.get("type") == "query":
            check_vars_used(str(v.get("query", "")), variables, "%s variable %s" % (name, v.get("name")), problems)
    walk_datasources(d, name, problems)

    ids, cells = set(), {}
    panels = d.get("panels", [])
    if not panels:
        problems(name, "no panels")
    for p in panels:
        where = "%s panel %r" % (name, p.get("title"))
        pid = p.get("id")
        if not isinstance(pid, int) or pid in ids:
            problems(where, "id %r missing or not unique" % pid)
        ids.add(pid)
        if p.get("type") not in PANEL_TYPES:
            problems(where, "unexpected panel type %r" % p.get("type"))
        if p.get("datasource") != DS:
            problems(where, "panel datasource must be %s" % json.dumps(DS))
        gp = p.get("gridPos", {})
        if not all(isinstance(gp.get(k), int) for k in "hwxy"):
            problems(where, "gridPos needs integer h, w, x, y")
        elif gp["x"] < 0 or gp["y"] < 0 or gp["w"] <= 0 or gp["h"] <= 0 or gp["x"] + gp["w"] > 24:
            problems(where, "gridPos %s outside the 24-column grid" % gp)
        else:
            for x in range(gp["x"], gp["x"] + gp["w"]):
                for y in range(gp["y"], gp["y"] + gp["h"]):
                    if (x, y) in cells:
                        problems(where, "gridPos overlaps panel %r" % cells[(x, y)])
                        break
                    cells[(x, y)] = p.get("title")
                else:
                    continue
                break
        tgts = p.get("targets") or []
        if not tgts:
            problems(where, "no targets")
        refs = set()
        for t in tgts:
            if not isinstance(t.get("expr"), str) or not t["expr"].strip():
                problems(where, "target without expr")
            if not t.get("refId") or t["refId"] in refs:
                problems(where, "target refId %r missing or repeated" % t.get("refId"))
            refs.add(t.get("refId"))
            check_vars_used(t.get("expr", ""), variables, where, problems)
    for a in d.get("annotations", {}).get("list", []):
        where = "%s annotation %r" % (name, a.get("name"))
        if a.get("datasource") != DS:
            problems(where, "annotation datasource must be %s" % json.dumps(DS))
        if not isinstance(a.get("expr"), str) or not a["expr"].strip():
            problems(where, "annotation without expr")
        check_vars_used(a.get("expr", ""), variables, where, problems)


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name == "datasource":
            return ""
        return BUILTINS.get(name, values.get(name, m.group(0)))

    return VAR_RE.sub(repl, expr)


def queries(name, d, values):
    dash = name[: -len(".json")]
    for v in d.get("templating", {}).get("list", []):
        m = LABEL_VALUES_RE.match(str(v.get("query", ""))) if v.get("type") == "query" else None
        if m:
            expr = "group by (%s) (%s)" % (m.group(2), m.group(1).strip())
            yield {"dashboard": dash, "panel": "variable: " + v["name"], "expr": substitute(expr, values)}
    for a in d.get("annotations", {}).get("list", []):
        yield {"dashboard": dash, "panel": "annotation: " + a.get("name", ""), "expr": substitute(a["expr"], values)}
    for p in d.get("panels", []):
        for t in p.get("targets", []):
            yield {"dashboard": dash, "panel": p.get("title", ""), "expr": substitute(t["expr"], values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--dir", default=os.path.join(HERE, "..", "dashboards"), help="dashboards directory")
    ap.add_argument("--print-queries", action="store_true", help="print every query as a JSON line")
    ap.add_argument("--instance", default=".+", help="value or regex for $instance (default .+)")
    ap.add_argument("--pair", default=".*", help="value or regex for $pair (default .*)")
    ap.add_argument("--job", default=".+", help="value or regex for $job (default .+)")
    ap.add_argument("--probe", default=".+", help="value or regex for $probe (default .+)")
    ap.add_argument("--interval", default=BUILTINS["__interval"],
                    help="value for $__interval, Grafana's step (default %(default)s)")
    ap.add_argument("--rate-interval", default=BUILTINS["__rate_interval"],
                    help="value for $__rate_interval (default %(default)s)")
    args = ap.parse_args()
    BUILTINS.update(__interval=args.interval, __rate_interval=args.rate_interval)
    values = {"instance": args.instance, "pair": args.pair, "job": args.job, "probe": args.probe}

    problems = Problems()
    check_generated(args.dir, problems)
    count = 0
    for name in gen_dashboards.DASHBOARDS:
        path = os.path.join(args.dir, name)
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            problems(name, "cannot load: %s" % e)
            continue
        check_structure(name, d, problems)
        for q in queries(name, d, values):
            count += 1
            if VAR_RE.search(q["expr"]):
                problems("%s %s" % (name, q["panel"]), "unsubstituted variable left in %r" % q["expr"])
            if args.print_queries:
                print(json.dumps(q, ensure_ascii=False))
    for p in problems.items:
        print("check_dashboards: " + p, file=sys.stderr)
    status = "FAILED (%d problems)" % len(problems.items) if problems.items else "OK"
    print("check_dashboards: %d dashboards, %d queries: %s" % (len(gen_dashboards.DASHBOARDS), count, status),
          file=sys.stderr)
    return 1 if problems.items else 0


if __name__ == "__main__":
    sys.exit(main())
