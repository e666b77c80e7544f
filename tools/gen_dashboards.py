#!/usr/bin/env python3
"""Generates the failbackd Grafana dashboards (classic JSON model) from this one source.

    python3 tools/gen_dashboards.py            # writes dashboards/failbackd-{fleet,node}.json
    python3 tools/gen_dashboards.py --out DIR  # writes them into DIR instead

Python 3 standard library only; the output is deterministic (same input, same bytes), so
tools/check_dashboards.py can regenerate and diff. Edit this file, never the JSON.

Conventions every panel follows (checked by tools/check_dashboards.py):
- datasource {"type": "prometheus", "uid": "${datasource}"}: no hard-coded datasource UID;
- failback_* series are selected by instance (and pair) only; `up` and process_* also by $job,
  a variable discovered from failback_build_info, so no job name is written here;
- counts of rare events use increase() over $__rate_interval (time series) or $__range (stats).
"""

import argparse
import json
import os
import sys

# Grafana's current classic-model schemaVersion: what @grafana/schema 13.2.x declares in its
# defaultDashboard. Older Grafana versions import newer dashboards unchanged.
SCHEMA_VERSION = 42

DS = {"type": "prometheus", "uid": "${datasource}"}
RUNBOOK = "https://github.com/failbackd/failbackd/blob/main/docs/runbook.md"

# The phases in the order of failback_phase's `phase` label (src/machine/types.rs PHASES), with
# the number each is encoded as for state-timeline panels (0 stays "no data") and a color.
PHASES = [
    ("idle", "text"),
    ("holding", "orange"),
    ("probing", "yellow"),
    ("stabilizing", "light-blue"),
    ("releasing", "blue"),
    ("released", "green"),
    ("failed", "red"),
    ("draining", "purple"),
]
CARP_STATES = [("INIT", "orange"), ("BACKUP", "blue"), ("MASTER", "green")]
HELD_MAP = [{"type": "value", "options": {"0": {"text": "not held", "color": "green", "index": 0},
                                         "1": {"text": "held", "color": "orange", "index": 1}}}]
OUTCOME_COLORS = {"released": "green", "forced": "orange", "failed": "red", "aborted": "text"}


# ---- PromQL helpers ----------------------------------------------------------------------------


def sel(base, **extra):
    """A label selector: the dashboard's base matchers plus extra equality matchers."""
    parts = [base] + ['%s="%s"' % (k, v) for k, v in extra.items()]
    return "{" + ",".join(p for p in parts if p) + "}"


def encoded(metric, label, values, base, by):
    """One series per `by` group whose value encodes the label value that is 1 (1..n)."""
    terms = ["%s%s * %d" % (metric, sel(base, **{label: v}), i) for i, (v, _) in enumerate(values, 1)]
    return "max by (%s) (\n  " % by + "\n  or ".join(terms) + "\n)"


def value_mappings(values):
    return [
        {
            "type": "value",
            "options": {str(i): {"text": v, "color": c, "index": i - 1} for i, (v, c) in enumerate(values, 1)},
        }
    ]


def held_seconds(base):
    s = sel(base)
    return "(time() - failback_maintenance_since_timestamp_seconds%s)\n  and failback_held_in_maintenance%s == 1" % (s, s)


def required_down(base, by):
    s = sel(base)
    return "sum by (%s) ((failback_probe_up%s == bool 0) * failback_probe_required%s)" % (by, s, s)


# ---- panel builders ----------------------------------------------------------------------------


def target(expr, legend="__auto", ref="A", instant=False, fmt="time_series"):
    return {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "format": fmt,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref,
    }


def targets(*specs, **common):
    """targets(("expr", "legend"), ...) with refIds A, B, ..."""
    return [target(e, l, chr(ord("A") + i), **common) for i, (e, l) in enumerate(specs)]


def thresholds(*steps):
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def panel(kind, title, description, tgts, unit="short", mappings=None, custom=None, options=None,
          overrides=None, transformations=None, color=None, steps=None, extra=None):
    p = {
        "datasource": DS,
        "description": description,
        "fieldConfig": {
            "defaults": {
                "color": color or {"mode": "palette-classic"},
                "custom": custom or {},
                "mappings": mappings or [],
                "thresholds": steps or thresholds((None, "green")),
                "unit": unit,
            },
            "overrides": overrides or [],
        },
        "options": options or {},
        "targets": tgts,
        "title": title,
        "type": kind,
    }
    if transformations:
        p["transformations"] = transformations
    p.update(extra or {})
    return p


LEGEND = {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True}
TOOLTIP = {"mode": "multi", "sort": "desc"}


def timeseries(title, description, tgts, unit="short", bars=False, stack=False, **kw):
    custom = {
        "axisPlacement": "auto",
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if bars else 10,
        "lineInterpolation": "stepAfter",
        "lineWidth": 1,
        "pointSize": 4,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
    }
    opts = {"legend": LEGEND, "tooltip": TOOLTIP}
    return panel("timeseries", title, description, tgts, unit=unit, custom=custom, options=opts, **kw)


def state_timeline(title, description, tgts, mappings, **kw):
    opts = {
        "alignValue": "left",
        "legend": dict(LEGEND, showLegend=False),
        "mergeValues": True,
        "rowHeight": 0.9,
        "showValue": "auto",
        "tooltip": {"mode": "single", "sort": "none"},
    }
    custom = {"fillOpacity": 80, "lineWidth": 0}
    return panel("state-timeline", title, description, tgts, mappings=mappings, custom=custom, options=opts,
                 color={"mode": "thresholds"}, **kw)


def stat(title, description, tgts, unit="short", mappings=None, steps=None, text_mode="auto", calc="lastNotNull", **kw):
    opts = {
        "colorMode": "background" if steps else "value",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "percentChangeColorMode": "standard",
        "reduceOptions": {"calcs": [calc], "fields": "", "values": False},
        "showPercentChange": False,
        "textMode": text_mode,
        "wideLayout": True,
    }
    return panel("stat", title, description, tgts, unit=unit, mappings=mappings, options=opts,
                 color={"mode": "thresholds"}, steps=steps, **kw)


def bargauge(title, description, tgts, unit="s", **kw):
    opts = {
        "displayMode": "gradient",
        "legend": dict(LEGEND, showLegend=False),
        "maxVizHeight": 300,
        "minVizHeight": 16,
        "minVizWidth": 8,
        "namePlacement": "auto",
        "orientation": "horizontal",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
        "sizing": "auto",
        "valueMode": "color",
    }
    return panel("bargauge", title, description, tgts, unit=unit, options=opts,
                 color={"mode": "continuous-GrYlRd"}, **kw)


def heatmap(title, description, tgts):
    opts = {
        "calculate": False,
        "cellGap": 1,
        "color": {"exponent": 0.5, "fill": "dark-orange", "mode": "scheme", "reverse": False,
                  "scale": "exponential", "scheme": "Oranges", "steps": 64},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-9},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "never",
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": "s"},
    }
    custom = {"hideFrom": {"legend": False, "tooltip": False, "viz": False},
              "scaleDistribution": {"type": "linear"}}
    return panel("heatmap", title, description, tgts, unit="short", custom=custom, options=opts)


def table(title, description, tgts, renames, overrides):
    opts = {"cellHeight": "sm", "frameIndex": 0, "showHeader": True,
            "sortBy": [{"desc": False, "displayName": "pair"}]}
    custom = {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": False, "inspect": False}
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True, "Value #F": True},
                                       "indexByName": {}, "renameByName": renames}},
    ]
    return panel("table", title, description, tgts, custom=custom, options=opts, overrides=overrides,
                 transformations=transformations)


def override(name, **props):
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": k.replace("_", "."), "value": v} for k, v in props.items()]}


def outcome_overrides():
    return [override(o, color={"fixedColor": c, "mode": "fixed"}) for o, c in OUTCOME_COLORS.items()]


# ---- layout and dashboard ----------------------------------------------------------------------


class Grid:
    """Places panels left to right in rows of 24 columns and numbers them."""

    def __init__(self):
        self.panels, self.x, self.y, self.row_h = [], 0, 0, 0

    def add(self, p, w, h):
        if self.x + w > 24:
            self.newline()
        p["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        p["id"] = len(self.panels) + 1
        self.panels.append(p)
        self.x += w
        self.row_h = max(self.row_h, h)

    def newline(self):
        self.x, self.y, self.row_h = 0, self.y + self.row_h, 0


def datasource_var():
    return {"hide": 0, "includeAll": False, "label": "Data source", "multi": False,
            "name": "datasource", "options": [], "query": "prometheus", "refresh": 1, "regex": "",
            "type": "datasource"}


def query_var(name, label, query, multi, all_value=None, hide=0):
    v = {
        "datasource": DS,
        "hide": hide,
        "includeAll": multi,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": query,  # the classic string form: every Grafana version reads it
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "type": "query",
    }
    if all_value is not None:
        v["allValue"] = all_value
    if multi:
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return v


def job_var():
    # The scrape job is read from failbackd's own metric, so no job name is hard-coded here.
    return query_var("job", "Job", "label_values(failback_build_info, job)", True, ".+", hide=2)


def dashboard(uid, title, description, grid, variables, annotations=None):
    return {
        "annotations": {"list": annotations or []},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {"asDropdown": False, "icon": "external link", "includeVars": True, "keepTime": True,
             "tags": ["failbackd"], "targetBlank": False, "title": "failbackd", "tooltip": "",
             "type": "dashboards", "url": ""},
            {"asDropdown": False, "icon": "doc", "includeVars": False, "keepTime": False, "tags": [],
             "targetBlank": True, "title": "Runbook", "tooltip": "Alert runbook", "type": "link",
             "url": RUNBOOK},
        ],
        "panels": grid.panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["failbackd", "carp", "ha"],
        "templating": {"list": variables},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
    }


# ---- the fleet dashboard -----------------------------------------------------------------------


def fleet():
    base = 'pair=~"$pair",instance=~"$instance"'
    by = "pair, instance"
    g = Grid()
    phase_map, carp_map = value_mappings(PHASES), value_mappings(CARP_STATES)

    g.add(stat("Nodes", "failbackd instances reporting (failback_build_info).",
               targets(("count(failback_build_info%s)" % sel(base), "nodes"))), 4, 4)
    g.add(stat("failbackd down", "Targets of the failbackd job that Prometheus cannot scrape.",
               targets(("count(up%s == 0) or vector(0)" % sel('job=~"$job",' + base), "down")),
               steps=thresholds((None, "green"), (1, "red"))), 4, 4)
    g.add(stat("Held now", "Nodes that failbackd holds in CARP maintenance right now.",
               targets(("sum(failback_held_in_maintenance%s)" % sel(base), "held")),
               steps=thresholds((None, "green"), (1, "orange"))), 4, 4)
    g.add(stat("Failed now", "Nodes whose failback failed (max_hold ran out, left demoted).",
               targets(("sum(failback_phase%s)" % sel(base, phase="failed"), "failed")),
               steps=thresholds((None, "green"), (1, "red"))), 4, 4)
    g.add(stat("Forced releases", "Releases without passing probes in the selected range.",
               targets(("sum(increase(failback_failbacks_total%s[$__range]))" % sel(base, outcome="forced"), "forced")),
               steps=thresholds((None, "green"), (0.5, "orange"))), 4, 4)
    g.add(stat("Peer lost", "Failbacks during which the peer died (range).",
               targets(("sum(increase(failback_peer_lost_total%s[$__range]))" % sel(base), "peer lost")),
               steps=thresholds((None, "green"), (0.5, "red"))), 4, 4)
    g.newline()

    s = sel(base)
    node_table = targets(
        (encoded("failback_phase", "phase", PHASES, base, by), ""),
        (encoded("failback_carp_state", "state", CARP_STATES, base, by), ""),
        ("max by (%s) (failback_held_in_maintenance%s)" % (by, s), ""),
        ("max by (%s) (%s)" % (by, held_seconds(base)), ""),
        (required_down(base, by), ""),
        ("max by (%s, version) (failback_build_info%s)" % (by, s), ""),
        instant=True, fmt="table")
    renames = {"Value #A": "Phase", "Value #B": "CARP (highest state)", "Value #C": "Held",
               "Value #D": "Held for", "Value #E": "Required probes down"}
    node_link = ("/d/failbackd-node/failbackd-node?var-instance=${__data.fields.instance}"
                 "&${datasource:queryparam}&${__url_time_range}")
    overrides = [
        override("Phase", mappings=phase_map, custom_cellOptions={"type": "color-background"}),
        override("CARP (highest state)", mappings=carp_map, custom_cellOptions={"type": "color-background"}),
        override("Held", mappings=HELD_MAP, custom_cellOptions={"type": "color-text"}),
        override("Held for", unit="s"),
        override("Required probes down", thresholds=thresholds((None, "green"), (1, "red")),
                 custom_cellOptions={"type": "color-text"}),
        override("instance", links=[{"title": "Node dashboard", "url": node_link}]),
    ]
    g.add(table("Nodes now", "Current phase, CARP state, hold and probes of every node. "
                "CARP shows the highest state over the node's watched vhids (MASTER > BACKUP > INIT).",
                node_table, renames, overrides), 24, 8)
    g.newline()

    g.add(state_timeline("Who is MASTER", "CARP state of every watched vhid@interface, per node.",
                         targets((encoded("failback_carp_state", "state", CARP_STATES, base,
                                          "pair, instance, vhid, interface"),
                                  "{{pair}} {{instance}} vhid {{vhid}}@{{interface}}")),
                         carp_map), 12, 8)
    g.add(state_timeline("Who is held", "Whether failbackd holds each node in CARP maintenance.",
                         targets(("max by (%s) (failback_held_in_maintenance%s)" % (by, s), "{{pair}} {{instance}}")),
                         HELD_MAP), 12, 8)
    g.newline()

    g.add(timeseries("Failbacks by outcome",
                     "Failbacks that ended, by outcome: released (probes passed), forced (released "
                     "without), failed (left demoted), aborted.",
                     targets(("sum by (outcome) (increase(failback_failbacks_total%s[$__rate_interval])) > 0" % s,
                              "{{outcome}}")),
                     bars=True, stack=True, overrides=outcome_overrides()), 12, 8)
    g.add(timeseries("Time held (current hold)",
                     "How long each held node has been demoted. The dashed line is the FailbackStuck "
                     "threshold from the alert rules (absent if they are not loaded).",
                     targets(("max by (%s) (%s)" % (by, held_seconds(base)), "{{pair}} {{instance}}"),
                             ("failback:stuck_threshold_seconds", "stuck threshold")),
                     unit="s",
                     overrides=[override("stuck threshold", color={"fixedColor": "red", "mode": "fixed"},
                                         custom_lineStyle={"dash": [10, 10], "fill": "dash"})]), 12, 8)
    g.newline()

    g.add(state_timeline("Phase by node", "failbackd's phase on each node.",
                         targets((encoded("failback_phase", "phase", PHASES, base, by), "{{pair}} {{instance}}")),
                         phase_map), 12, 8)
    g.add(bargauge("Failback duration p90 (range)", "90th percentile of arm -> outcome over the selected "
                   "range, per node with at least one failback in it.",
                   targets(("histogram_quantile(0.9, sum by (%s, le) (increase(failback_duration_seconds_bucket%s[$__range])))\n"
                            "  and on (%s) sum by (%s) (increase(failback_duration_seconds_count%s[$__range])) > 0"
                            % (by, s, by, by, s), "{{pair}} {{instance}}"), instant=True)), 12, 8)

    variables = [
        datasource_var(),
        job_var(),
        query_var("pair", "Pair", "label_values(failback_build_info, pair)", True, ".*"),
        query_var("instance", "Instance", 'label_values(failback_build_info{pair=~"$pair"}, instance)', True, ".+"),
    ]
    return dashboard("failbackd-fleet", "failbackd / Fleet",
                     "Every failbackd HA pair: who is MASTER, who is held, failbacks by outcome, time held.",
                     g, variables)


# ---- the node dashboard ------------------------------------------------------------------------


def node():
    base = 'instance=~"$instance"'
    pbase = base + ',probe=~"$probe"'
    s, ps = sel(base), sel(pbase)
    jbase = sel('job=~"$job",' + base)
    g = Grid()
    phase_map, carp_map = value_mappings(PHASES), value_mappings(CARP_STATES)

    g.add(stat("Phase", "failbackd's current phase.",
               targets((encoded("failback_phase", "phase", PHASES, base, "instance"), "phase")),
               mappings=phase_map, steps=thresholds((None, "transparent"))), 5, 4)
    g.add(stat("Held for", "Time since the current hold began (no value: not held).",
               targets(("max(%s)" % held_seconds(base), "held for")), unit="s"), 4, 4)
    g.add(stat("max_hold ends in", "Time left before max_hold decides (no value: no failback in progress).",
               targets(("max(failback_hold_deadline_timestamp_seconds%s - time() > 0)" % s, "left")), unit="s"), 4, 4)
    g.add(stat("Required probes down", "Required probes that are not up by their rise/fall rule.",
               targets((required_down(base, "instance"), "down")),
               steps=thresholds((None, "green"), (1, "red"))), 4, 4)
    g.add(stat("Scrape", "Whether Prometheus can scrape failbackd.",
               targets(("max(up%s)" % jbase, "up")),
               mappings=[{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                                       "1": {"text": "UP", "color": "green", "index": 1}}}],
               steps=thresholds((None, "red"), (1, "green"))), 3, 4)
    g.add(stat("Version", "failbackd version and git revision.",
               targets(("max by (version, revision) (failback_build_info%s)" % s, "{{version}} ({{revision}})")),
               text_mode="name"), 4, 4)
    g.newline()

    g.add(state_timeline("Phase timeline", "failbackd's phase, and whether it holds the node demoted.",
                         targets((encoded("failback_phase", "phase", PHASES, base, "instance"), "phase"),
                                 ("max(failback_held_in_maintenance%s)" % s, "held")),
                         phase_map, overrides=[override("held", mappings=HELD_MAP)]), 24, 5)
    g.newline()

    g.add(state_timeline("CARP state per vhid", "CARP state of each watched vhid@interface (appears after "
                         "the first CARP event failbackd sees).",
                         targets((encoded("failback_carp_state", "state", CARP_STATES, base, "vhid, interface"),
                                  "vhid {{vhid}}@{{interface}}")),
                         carp_map), 12, 7)
    g.add(timeseries("CARP transitions", "CARP transitions by vhid@interface and new state.",
                     targets(("sum by (vhid, interface, state) (increase(failback_carp_transitions_total%s[$__rate_interval])) > 0" % s,
                              "vhid {{vhid}}@{{interface}} -> {{state}}")),
                     bars=True, stack=True), 12, 7)
    g.newline()

    mean = ("sum by (phase) (increase(failback_phase_duration_seconds_sum%s[$__range]))\n"
            "  / (sum by (phase) (increase(failback_phase_duration_seconds_count%s[$__range])) > 0)" % (s, s))
    p90 = ("histogram_quantile(0.9, sum by (phase, le) (increase(failback_phase_duration_seconds_bucket%s[$__range])))\n"
           "  and on (phase) sum by (phase) (increase(failback_phase_duration_seconds_count%s[$__range])) > 0" % (s, s))
    g.add(bargauge("Mean time in phase (range)", "Mean time spent in each phase, for phases left during the range.",
                   targets((mean, "{{phase}}"), instant=True)), 8, 8)
    g.add(bargauge("p90 time in phase (range)", "90th percentile of the time spent in each phase (bucket estimate).",
                   targets((p90, "{{phase}}"), instant=True)), 8, 8)
    fb = "failback_duration_seconds_bucket%s[$__range]" % s
    any_fb = "\n  and on () sum(increase(failback_duration_seconds_count%s[$__range])) > 0" % s
    g.add(stat("Failback duration (range)", "Arm -> outcome, over failbacks that ended in the range.",
               targets(("histogram_quantile(0.5, sum by (le) (increase(%s)))%s" % (fb, any_fb), "p50"),
                       ("histogram_quantile(0.9, sum by (le) (increase(%s)))%s" % (fb, any_fb), "p90"),
                       ("sum(increase(failback_failbacks_total%s[$__range]))" % s, "failbacks"),
                       instant=True),
               unit="s", overrides=[override("failbacks", unit="short")]), 8, 8)
    g.newline()

    g.add(heatmap("Probe latency", "Duration of probe attempts of the selected probes (histogram buckets).",
                  targets(("sum by (le) (increase(failback_probe_duration_seconds_bucket%s[$__rate_interval]))" % ps,
                           "{{le}}"), fmt="heatmap")), 12, 8)
    q = "histogram_quantile(%s, sum by (probe, le) (rate(failback_probe_duration_seconds_bucket%s[$__rate_interval])))"
    g.add(timeseries("Probe latency quantiles", "p50 and p99 of probe attempt durations, per probe.",
                     targets((q % ("0.5", ps), "{{probe}} p50"), (q % ("0.99", ps), "{{probe}} p99")), unit="s"), 12, 8)
    g.newline()

    updown = [{"type": "value", "options": {"0": {"text": "down", "color": "red", "index": 0},
                                            "1": {"text": "up", "color": "green", "index": 1}}}]
    g.add(state_timeline("Probe up (rise/fall) and last attempt",
                         "up: the probe's rise/fall state, which gates the release. last: the last attempt.",
                         targets(("max by (probe) (failback_probe_up%s)" % ps, "{{probe}} up"),
                                 ("max by (probe) (failback_probe_success%s)" % ps, "{{probe}} last")),
                         updown), 12, 8)
    g.add(timeseries("Probe attempts by result", "Probe attempts per second by result.",
                     targets(("sum by (probe, result) (rate(failback_probe_attempts_total%s[$__rate_interval]))" % ps,
                              "{{probe}} {{result}}")),
                     unit="ops"), 12, 8)
    g.newline()

    g.add(timeseries("Backend errors", "Failed backend calls (demote, promote, state).",
                     targets(("sum by (backend, operation) (increase(failback_backend_errors_total%s[$__rate_interval])) > 0" % s,
                              "{{backend}} {{operation}}")),
                     bars=True), 8, 7)
    g.add(timeseries("Time held", "Time since the current hold began, against the FailbackStuck threshold "
                     "and the max_hold deadline.",
                     targets(("max(%s)" % held_seconds(base), "held for"),
                             ("failback:stuck_threshold_seconds", "stuck threshold"),
                             ("max(failback_hold_deadline_timestamp_seconds%s - failback_maintenance_since_timestamp_seconds%s > 0)"
                              % (s, s), "max_hold")),
                     unit="s",
                     overrides=[override("stuck threshold", color={"fixedColor": "orange", "mode": "fixed"},
                                         custom_lineStyle={"dash": [10, 10], "fill": "dash"}),
                                override("max_hold", color={"fixedColor": "red", "mode": "fixed"},
                                         custom_lineStyle={"dash": [10, 10], "fill": "dash"})]), 8, 7)
    g.add(timeseries("Process", "failbackd's resident memory and CPU use.",
                     targets(("max(process_resident_memory_bytes%s)" % jbase, "resident memory"),
                             ("max(rate(process_cpu_seconds_total%s[$__rate_interval]))" % jbase, "CPU")),
                     unit="bytes", overrides=[override("CPU", unit="percentunit", custom_axisPlacement="right")]), 8, 7)

    annotations = [
        {"datasource": DS, "enable": True, "expr":
         "sum by (outcome) (increase(failback_failbacks_total%s[$__rate_interval])) > 0" % s,
         "hide": False, "iconColor": "orange", "name": "Failbacks", "step": "60s",
         "tagKeys": "outcome", "textFormat": "", "titleFormat": "Failback {{outcome}}", "useValueForTime": False},
        {"datasource": DS, "enable": True, "expr":
         "increase(failback_peer_lost_total%s[$__rate_interval]) > 0" % s,
         "hide": False, "iconColor": "red", "name": "Peer lost", "step": "60s",
         "tagKeys": "", "textFormat": "The peer died while failbackd held this node",
         "titleFormat": "Peer lost", "useValueForTime": False},
    ]
    variables = [
        datasource_var(),
        job_var(),
        query_var("instance", "Instance", "label_values(failback_build_info, instance)", False),
        query_var("probe", "Probe", 'label_values(failback_probe_up{instance=~"$instance"}, probe)', True, ".+"),
    ]
    return dashboard("failbackd-node", "failbackd / Node",
                     "One failbackd node: phase timeline, phase durations, probes, CARP, backend errors.",
                     g, variables, annotations)


DASHBOARDS = {"failbackd-fleet.json": fleet, "failbackd-node.json": node}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "dashboards"), help="output directory")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, build in DASHBOARDS.items():
        path = os.path.join(args.out, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(build))
        print("wrote", os.path.normpath(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
