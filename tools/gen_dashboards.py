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
    """failbackd's own monotonic count of the current hold (failed and draining included): not
    Prometheus' clock minus the node's, which shows a firewall's clock offset (booted before NTP)
    as hold time."""
    s = sel(base)
    return "failback_held_for_seconds%s\n  and failback_held_in_maintenance%s == 1" % (s, s)


def events(metric, base, by, window="$__interval"):
    """Counter increments per step, each counted once at any zoom: the exact difference to the
    previous step (Grafana's step is $__interval), so the bars of a range add up to the range's
    total. increase() over $__rate_interval would count an event in every overlapping window
    (about 3x at 6 h). After a counter reset (daemon restart) the new value is the increment;
    a series without a value one step back (new) shows nothing yet."""
    x = metric + sel(base)
    return "sum by (%s) (\n  (%s - %s offset %s) >= 0\n  or %s < %s offset %s\n)" % (by, x, x, window, x, x, window)


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


def stat(title, description, tgts, unit="short", mappings=None, steps=None, text_mode="auto", calc="lastNotNull",
         no_value=None, **kw):
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
    for t in tgts:  # a stat shows the value now: a range's last value would outlive a series that ended
        t["instant"], t["range"] = True, False
    p = panel("stat", title, description, tgts, unit=unit, mappings=mappings, options=opts,
              color={"mode": "thresholds"}, steps=steps, **kw)
    if no_value is not None:
        p["fieldConfig"]["defaults"]["noValue"] = no_value
    return p


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


def table(title, description, tgts, renames, overrides, exclude=("Time", "Value #F"), sort_by="pair", no_value=None):
    opts = {"cellHeight": "sm", "frameIndex": 0, "showHeader": True,
            "sortBy": [{"desc": False, "displayName": sort_by}]}
    custom = {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": False, "inspect": False}
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {k: True for k in exclude},
                                       "indexByName": {}, "renameByName": renames}},
    ]
    p = panel("table", title, description, tgts, custom=custom, options=opts, overrides=overrides,
              transformations=transformations)
    if no_value is not None:
        p["fieldConfig"]["defaults"]["noValue"] = no_value
    return p


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
    # No allValue: "All" is then the list of jobs found here, not `.+` (which would make
    # up{job=~"$job"} match every target Prometheus scrapes).
    return query_var("job", "Job", "label_values(failback_build_info, job)", True, hide=2)


def dashboard(uid, title, description, grid, variables, annotations=None, links=None):
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
        ] + (links or []),
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

NODE_LINK = ("/d/failbackd-node/failbackd-node?var-instance=${__data.fields.instance}"
             "&${datasource:queryparam}&${__url_time_range}")
ALERTS_SEL = 'alertstate="firing",alertname=~"Failback.+|CarpFlapping"'
MASTER_COUNT_STEPS = thresholds((None, "red"), (1, "green"), (2, "red"))


def fleet():
    base = 'pair=~"$pair",instance=~"$instance"'
    by = "pair, instance"
    g = Grid()
    phase_map, carp_map = value_mappings(PHASES), value_mappings(CARP_STATES)
    s = sel(base)
    up = sel('job=~"$job",' + base)

    g.add(stat("Nodes", "Scrape targets of the failbackd job(s), up or down (up{job=~\"$job\"}).",
               targets(("count(up%s)" % up, "nodes"))), 4, 4)
    g.add(stat("failbackd down", "Targets of the failbackd job(s) that Prometheus cannot scrape. The job "
               "list comes from failback_build_info, so other jobs' targets are never counted.",
               targets(("count(up%s == 0) or vector(0)" % up, "down")),
               steps=thresholds((None, "green"), (1, "red"))), 4, 4)
    g.add(stat("Held now", "Nodes whose failbackd hold is measured in place right now.",
               targets(("sum(failback_held_in_maintenance%s)" % s, "held")),
               steps=thresholds((None, "green"), (1, "orange"))), 4, 4)
    g.add(stat("Failed now", "Nodes whose failback failed (max_hold ran out, left demoted).",
               targets(("sum(failback_phase%s)" % sel(base, phase="failed"), "failed")),
               steps=thresholds((None, "green"), (1, "red"))), 4, 4)
    g.add(stat("Forced releases", "Releases without passing probes in the selected range.",
               targets(("sum(increase(failback_failbacks_total%s[$__range]))" % sel(base, outcome="forced"), "forced")),
               steps=thresholds((None, "green"), (0.5, "orange"))), 4, 4)
    g.add(stat("Peer lost", "Failbacks during which the peer died (range).",
               targets(("sum(increase(failback_peer_lost_total%s[$__range]))" % s, "peer lost")),
               steps=thresholds((None, "green"), (0.5, "red"))), 4, 4)
    g.newline()

    # "Is this pair healthy?"
    g.add(stat("MASTER count per pair and vhid",
               "Nodes of each pair measured CARP MASTER on each vhid@interface: 1 is good, 0 (no "
               "MASTER: FailbackPairNoMaster) and 2 (split brain: FailbackPairSplitBrain) alert.",
               targets(('sum by (pair, vhid, interface) (failback_carp_state%s)' % sel(base, state="MASTER"),
                        "{{pair}} vhid {{vhid}}@{{interface}}")),
               steps=MASTER_COUNT_STEPS), 8, 6)
    g.add(state_timeline("Both nodes' phases, by pair", "failbackd's phase on each node, the two nodes of "
                         "a pair next to each other.",
                         targets((encoded("failback_phase", "phase", PHASES, base, by), "{{pair}} {{instance}}")),
                         phase_map), 8, 6)
    alert_cols = {"alertname": "alert", "severity": "severity", "pair": "pair", "instance": "instance",
                  "vhid": "vhid", "interface": "interface", "probe": "probe"}
    g.add(table("Firing failbackd alerts", "Every failbackd alert firing now (Prometheus' ALERTS series), "
                "for the selected pairs and for alerts that have no pair.",
                targets(('max by (alertname, severity, pair, instance, vhid, interface, probe) '
                         '(ALERTS{%s,pair=~"$pair"})' % ALERTS_SEL, ""), instant=True, fmt="table"),
                alert_cols, [override("severity", mappings=[{"type": "value", "options": {
                    "critical": {"text": "critical", "color": "red", "index": 0},
                    "warning": {"text": "warning", "color": "orange", "index": 1}}}],
                    custom_cellOptions={"type": "color-text"})],
                exclude=("Time", "Value"), sort_by="alert", no_value="no failbackd alert is firing"), 8, 6)
    g.newline()

    node_table = targets(
        (encoded("failback_phase", "phase", PHASES, base, by), ""),
        (encoded("failback_carp_state", "state", CARP_STATES, base, by), ""),
        ("max by (%s) (failback_held_in_maintenance%s)" % (by, s), ""),
        ("max by (%s) (%s)" % (by, held_seconds(base)), ""),
        ("sum by (%s) (failback_release_blocked%s)" % (by, s), ""),
        ("max by (%s, version) (failback_build_info%s)" % (by, s), ""),
        instant=True, fmt="table")
    renames = {"Value #A": "Phase", "Value #B": "CARP (highest state)", "Value #C": "Held",
               "Value #D": "Held for", "Value #E": "Probes blocking the release"}
    overrides = [
        override("Phase", mappings=phase_map, custom_cellOptions={"type": "color-background"}),
        override("CARP (highest state)", mappings=carp_map, custom_cellOptions={"type": "color-background"}),
        override("Held", mappings=HELD_MAP, custom_cellOptions={"type": "color-text"}),
        override("Held for", unit="s"),
        override("Probes blocking the release", thresholds=thresholds((None, "green"), (1, "red")),
                 custom_cellOptions={"type": "color-text"}),
        override("instance", links=[{"title": "Node dashboard", "url": NODE_LINK}]),
    ]
    g.add(table("Nodes now", "Current phase, CARP state, hold and blocking probes of every node. "
                "CARP shows the highest state over the node's watched vhids (MASTER > BACKUP > INIT).",
                node_table, renames, overrides), 16, 8)
    g.add(table("Which probe blocks the release", "Required probes that are down while a failback is in "
                "progress (failback_release_blocked), by node: what each held node waits for.",
                targets(("failback_release_blocked%s == 1" % s, ""), instant=True, fmt="table"),
                {"pair": "pair", "instance": "instance", "probe": "probe"},
                [override("instance", links=[{"title": "Node dashboard", "url": NODE_LINK}])],
                exclude=("Time", "Value", "__name__", "job"), no_value="nothing blocks a release"), 8, 8)
    g.newline()

    g.add(state_timeline("Who is MASTER", "Measured CARP state of every watched vhid@interface, per node.",
                         targets((encoded("failback_carp_state", "state", CARP_STATES, base,
                                          "pair, instance, vhid, interface"),
                                  "{{pair}} {{instance}} vhid {{vhid}}@{{interface}}")),
                         carp_map), 12, 8)
    g.add(state_timeline("Who is held", "Whether failbackd's hold is measured in place on each node.",
                         targets(("max by (%s) (failback_held_in_maintenance%s)" % (by, s), "{{pair}} {{instance}}")),
                         HELD_MAP), 12, 8)
    g.newline()

    g.add(timeseries("Failbacks by outcome",
                     "Failbacks that ended, by outcome: released (probes passed), forced (released "
                     "without), failed (left demoted), aborted. Each one is counted once at any zoom.",
                     targets((events("failback_failbacks_total", base, "outcome") + " > 0", "{{outcome}}")),
                     bars=True, stack=True, overrides=outcome_overrides()), 12, 8)
    g.add(timeseries("Share of max_hold used",
                     "Time since the failback in progress armed, as a share of the node's own max_hold "
                     "(failbackd's monotonic gauges). FailbackStuck fires from the dashed line "
                     "(failback:stuck_max_hold_ratio, absent if the rules are not loaded) with a probe blocking.",
                     targets(("max by (%s) (failback_hold_elapsed_seconds%s / failback_max_hold_seconds%s)" % (by, s, s),
                              "{{pair}} {{instance}}"),
                             ("failback:stuck_max_hold_ratio", "stuck from")),
                     unit="percentunit",
                     overrides=[override("stuck from", color={"fixedColor": "orange", "mode": "fixed"},
                                         custom_lineStyle={"dash": [10, 10], "fill": "dash"})]), 12, 8)
    g.newline()

    g.add(bargauge("Last failback took", "Arm -> outcome of the last failback that ended, per node (exact, "
                   "from failback_last_failback_duration_seconds; 0: none yet).",
                   targets(("max by (%s) (failback_last_failback_duration_seconds%s)" % (by, s), "{{pair}} {{instance}}"),
                           instant=True)), 12, 8)
    g.add(bargauge("Mean failback duration (range)", "Mean arm -> outcome over the failbacks that ended in the "
                   "selected range (sum / count of failback_duration_seconds), per node with at least one.",
                   targets(("sum by (%s) (increase(failback_duration_seconds_sum%s[$__range]))\n"
                            "  / (sum by (%s) (increase(failback_duration_seconds_count%s[$__range])) > 0)"
                            % (by, s, by, s), "{{pair}} {{instance}}"), instant=True)), 12, 8)

    variables = [
        datasource_var(),
        job_var(),
        # From `up`, not failback_build_info: a node whose failbackd is down stays listed.
        query_var("pair", "Pair", 'label_values(up{job=~"$job"}, pair)', True, ".*"),
        query_var("instance", "Instance", 'label_values(up{job=~"$job",pair=~"$pair"}, instance)', True, ".+"),
    ]
    return dashboard("failbackd-fleet", "failbackd / Fleet",
                     "Every failbackd HA pair: is it healthy (one MASTER per vhid), who is held and why, "
                     "failbacks by outcome, how long they took.",
                     g, variables, annotations(base))


# ---- annotations (both dashboards) -------------------------------------------------------------


def annotation(name, expr, color, title, text="", tags=""):
    return {"datasource": DS, "enable": True, "expr": expr, "hide": False, "iconColor": color,
            "name": name, "step": "60s", "tagKeys": tags, "textFormat": text, "titleFormat": title,
            "useValueForTime": False}


def annotations(base):
    """Events at the annotations' 60s step, each shown once: increments since the previous step;
    a failback armed within the step (in progress now, not yet a minute ago); a daemon that
    started within the step."""
    s = sel(base)
    el = "failback_hold_elapsed_seconds%s" % s
    return [
        annotation("Hold armed", "%s > 0 and min_over_time(%s[1m]) == 0" % (el, el), "orange",
                   "Failback armed", "failbackd started a failback and holds the node demoted", "instance"),
        annotation("Failbacks", events("failback_failbacks_total", base, "instance, outcome", "1m") + " > 0",
                   "green", "Failback {{outcome}}", "", "instance,outcome"),
        annotation("CARP transitions",
                   events("failback_carp_transitions_total", base, "instance, vhid, interface, state", "1m") + " > 0",
                   "blue", "CARP {{vhid}}@{{interface}} -> {{state}}", "", "instance,state"),
        # failbackd's monotonic uptime: started within the step (< 60 s), or a reset the step
        # caught (a crash loop whose lives are shorter than a scrape apart); no wall clock.
        annotation("Daemon restarts",
                   "max by (instance) (failback_uptime_seconds%s < 60)\n"
                   "  or max by (instance) (resets(failback_uptime_seconds%s[1m]) > 0)" % (s, s), "purple",
                   "failbackd started", "the daemon (re)started; a failback in progress is resumed", "instance"),
        annotation("Peer lost", events("failback_peer_lost_total", base, "instance", "1m") + " > 0", "red",
                   "Peer lost", "The peer died while failbackd held this node", "instance"),
    ]


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
               mappings=phase_map, steps=thresholds((None, "transparent"))), 4, 4)
    g.add(stat("Held for", "Time since the current hold began (no value: not held). Orange from 5m, "
               "before FailbackStuck (half of the default 15m max_hold).",
               targets(("max(%s)" % held_seconds(base), "held for")), unit="s",
               steps=thresholds((None, "green"), (300, "orange")), no_value="not held"), 4, 4)
    g.add(stat("max_hold ends in", "Time left before max_hold decides (failbackd's monotonic count; no value: "
               "no failback in progress). Red under 5m.",
               targets(("max(failback_hold_remaining_seconds%s > 0)" % s, "left")), unit="s",
               steps=thresholds((None, "red"), (300, "green")), no_value="no failback in progress"), 4, 4)
    g.add(stat("Which probe blocks the release", "Required probes that are down while a failback is in "
               "progress (failback_release_blocked == 1), by name.",
               targets(("max by (probe) (failback_release_blocked%s) == 1" % s, "{{probe}}")),
               text_mode="name", steps=thresholds((None, "red")), no_value="nothing blocks"), 5, 4)
    g.add(stat("Scrape", "Whether Prometheus can scrape failbackd.",
               targets(("max(up%s)" % jbase, "up")),
               mappings=[{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                                       "1": {"text": "UP", "color": "green", "index": 1}}}],
               steps=thresholds((None, "red"), (1, "green"))), 3, 4)
    g.add(stat("Version", "failbackd version and git revision.",
               targets(("max by (version, revision) (failback_build_info%s)" % s, "{{version}} ({{revision}})")),
               text_mode="name"), 4, 4)
    g.newline()

    g.add(state_timeline("Phase timeline", "failbackd's phase, whether the phase wants the node held, and "
                         "whether failbackd's hold is measured in place (the two differ: "
                         "FailbackDemoteNotInPlace).",
                         targets((encoded("failback_phase", "phase", PHASES, base, "instance"), "phase"),
                                 ("max(failback_hold_wanted%s)" % s, "hold wanted"),
                                 ("max(failback_held_in_maintenance%s)" % s, "held (measured)")),
                         phase_map, overrides=[override("hold wanted", mappings=HELD_MAP),
                                               override("held (measured)", mappings=HELD_MAP)]), 18, 6)
    g.add(table("This pair", "The nodes of this node's pair (same `pair` label), up or down, with links to "
                "each one's dashboard.",
                targets(('max by (pair, instance) (up{job=~"$job",pair=~"$pair"})', ""),
                        instant=True, fmt="table"),
                {"pair": "pair", "instance": "instance", "Value": "scraped"},
                [override("instance", links=[{"title": "Node dashboard", "url": NODE_LINK}]),
                 override("scraped", mappings=[{"type": "value", "options": {
                     "0": {"text": "DOWN", "color": "red", "index": 0},
                     "1": {"text": "UP", "color": "green", "index": 1}}}],
                     custom_cellOptions={"type": "color-text"})],
                exclude=("Time",), sort_by="instance"), 6, 6)
    g.newline()

    g.add(state_timeline("CARP state per vhid", "Measured CARP state of each watched vhid@interface (the "
                         "backend's periodic poll and the hooks).",
                         targets((encoded("failback_carp_state", "state", CARP_STATES, base, "vhid, interface"),
                                  "vhid {{vhid}}@{{interface}}")),
                         carp_map), 12, 7)
    g.add(timeseries("CARP transitions", "Real CARP state changes by vhid@interface and new state, each "
                     "counted once at any zoom.",
                     targets((events("failback_carp_transitions_total", base, "vhid, interface, state") + " > 0",
                              "vhid {{vhid}}@{{interface}} -> {{state}}")),
                     bars=True, stack=True), 12, 7)
    g.newline()

    mean = ("sum by (phase) (increase(failback_phase_duration_seconds_sum%s[$__range]))\n"
            "  / (sum by (phase) (increase(failback_phase_duration_seconds_count%s[$__range])) > 0)" % (s, s))
    g.add(bargauge("Mean time in phase (range)", "Mean time spent in each phase, for phases left during the range.",
                   targets((mean, "{{phase}}"), instant=True)), 8, 8)
    g.add(timeseries("Time held", "Time since the failback in progress armed (failbackd's monotonic count), "
                     "against FailbackStuck's start (max_hold x failback:stuck_max_hold_ratio) and max_hold.",
                     targets(("max(failback_hold_elapsed_seconds%s > 0)" % s, "armed for"),
                             ("max(failback_max_hold_seconds%s * scalar(failback:stuck_max_hold_ratio)\n"
                              "  and failback_hold_elapsed_seconds%s > 0)" % (s, s), "stuck from"),
                             ("max(failback_max_hold_seconds%s and failback_hold_elapsed_seconds%s > 0)" % (s, s),
                              "max_hold")),
                     unit="s",
                     overrides=[override("stuck from", color={"fixedColor": "orange", "mode": "fixed"},
                                         custom_lineStyle={"dash": [10, 10], "fill": "dash"}),
                                override("max_hold", color={"fixedColor": "red", "mode": "fixed"},
                                         custom_lineStyle={"dash": [10, 10], "fill": "dash"})]), 8, 8)
    g.add(stat("Failbacks (range)", "Exact values: the last failback's arm -> outcome, the mean over the "
               "failbacks that ended in the range (sum / count), and how many ended.",
               targets(("max(failback_last_failback_duration_seconds%s)" % s, "last"),
                       ("sum(increase(failback_duration_seconds_sum%s[$__range]))\n"
                        "  / (sum(increase(failback_duration_seconds_count%s[$__range])) > 0)" % (s, s), "mean"),
                       ("sum(increase(failback_failbacks_total%s[$__range]))" % s, "failbacks"),
                       instant=True),
               unit="s", overrides=[override("failbacks", unit="short", decimals=0)]), 8, 8)
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

    g.add(timeseries("Tracking", "Tracking demotions (a tracked probe died while this node was MASTER, the "
                     "peer took over) by probe, and demotions not made, by reason (not_master, peer_unhealthy, "
                     "peer_unreachable, flap_limit), each counted once.",
                     targets((events("failback_track_demotions_total", base, "probe") + " > 0", "demoted: {{probe}}"),
                             (events("failback_track_suppressed_total", base, "reason") + " > 0",
                              "suppressed: {{reason}}")),
                     bars=True), 12, 7)
    g.add(timeseries("Tracking suppressed", "1 while a tracked probe is down and its demotion is suppressed: "
                     "the node stays MASTER with the path down (FailbackTrackSuppressed).",
                     targets(("max(failback_track_suppressed%s)" % s, "suppressed"))), 12, 7)
    g.newline()

    g.add(timeseries("Backend errors and drift", "Failed backend calls (demote, promote, observe), and "
                     "changes of failbackd's hold made behind its back (drift), each counted once.",
                     targets((events("failback_backend_errors_total", base, "backend, operation") + " > 0",
                              "{{backend}} {{operation}} error"),
                             (events("failback_backend_drift_total", base, "direction") + " > 0",
                              "drift: hold {{direction}}")),
                     bars=True), 8, 7)
    g.add(timeseries("Backend observation age", "Seconds since failbackd last read the backend successfully "
                     "(the measured state is this old).",
                     targets(("max(failback_backend_observation_age_seconds%s)" % s, "age")), unit="s"), 8, 7)
    g.add(timeseries("Process", "failbackd's resident memory and CPU use.",
                     targets(("max(process_resident_memory_bytes%s)" % jbase, "resident memory"),
                             ("max(rate(process_cpu_seconds_total%s[$__rate_interval]))" % jbase, "CPU")),
                     unit="bytes", overrides=[override("CPU", unit="percentunit", custom_axisPlacement="right")]), 8, 7)

    variables = [
        datasource_var(),
        job_var(),
        # From `up`, not failback_build_info: a node whose failbackd is down stays selectable.
        query_var("instance", "Instance", 'label_values(up{job=~"$job"}, instance)', False),
        # The node's pair (hidden): the "This pair" panel and the link to the fleet dashboard.
        query_var("pair", "Pair", 'label_values(up{job=~"$job",instance=~"$instance"}, pair)', False, hide=2),
        query_var("probe", "Probe", 'label_values(failback_probe_up{instance=~"$instance"}, probe)', True, ".+"),
    ]
    fleet_link = {"asDropdown": False, "icon": "dashboard", "includeVars": False, "keepTime": True, "tags": [],
                  "targetBlank": False, "title": "This pair on the fleet dashboard", "tooltip": "",
                  "type": "link", "url": "/d/failbackd-fleet/failbackd-fleet?var-pair=${pair}"}
    return dashboard("failbackd-node", "failbackd / Node",
                     "One failbackd node: phase timeline, which probe blocks the release, its pair, CARP, "
                     "failback durations, probes, backend errors and drift.",
                     g, variables, annotations(base), links=[fleet_link])


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
