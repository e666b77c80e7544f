#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through trap and wait_until "$@" (shellcheck 0.9 flags them)
#
# End-to-end test of the FailbackFailed page (issue 5): a real failbackd, a real Prometheus and a
# real Alertmanager (Debian `prometheus`, `prometheus-alertmanager`), and a webhook receiver,
# all on 127.0.0.1 with free ports:
#
#   tools/alertmanager_e2e_test.sh      # from anywhere in the repository; ~25 s
#
# - `failbackd run` with the simulated backend, hold_on_boot, one required probe that never
#   passes (command `false`) and max_hold 5s, max_hold_policy "stay": the boot failback ends in
#   phase failed, outcome failed.
# - Prometheus scrapes it every 1s as job `failbackd` with a `pair` label
#   (docs/runbook.md#scrape-configuration), evaluates alerts/failbackd.rules.yml every 1s and
#   sends to the Alertmanager. --rules.alert.resend-delay=2s makes it re-send the firing alert
#   every 2s, so the "no duplicate" check below really exercises Alertmanager's deduplication.
# - Alertmanager (clustering off) runs the route's group_by and the inhibit_rules of the example in
#   docs/runbook.md#alertmanager (read from between its alertmanager-example markers, so the
#   documented example is the tested one), with group_wait 1s, group_interval 1s,
#   repeat_interval 1h and one receiver: a webhook (tools/lib/webhook.py, a python3 http.server)
#   that appends every POST body, one JSON document a line, to a file.
#
# Asserts: exactly one FailbackFailed notification (status firing, one alert) arrives within a
# bounded time, with labels alertname=FailbackFailed, severity=critical, job=failbackd, pair,
# instance (the failbackd target), and annotations summary, description (naming the instance,
# templates expanded) and runbook_url (a section of docs/runbook.md); then, after several more
# group intervals and Prometheus re-sends, still exactly one (no duplicate, no resolved).
# Then the documented inhibition: FailbackStuck of one instance and FailbackProbeDown of that
# instance and of another are posted to Alertmanager's API; the first FailbackProbeDown must be
# suppressed (inhibited by FailbackStuck) and never notified, the second notified. Likewise
# FailbackTrackSuppressed and FailbackMasterProbeDown of one node: one page for one dead tracked
# path (the MasterProbeDown suppressed). The README's group_by must equal the runbook's.
#
# Prints `alertmanager e2e: N passed, M failed`; exit status 1 on any failure.
# Builds target/release/failbackd only if missing (FAILBACKD=/path overrides). Every process it
# starts is killed on exit and its temp dir removed (KEEP_TMP=1 keeps the logs).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${repo}"

PAIR=e2e-pair
JOB=failbackd
GROUP_INTERVAL=1         # seconds, as in the Alertmanager route below
QUIET_INTERVALS=8        # group intervals to wait after the first notification
NOTIFY_TIMEOUT=60        # seconds from failbackd's start to the first notification

log() { printf 'alertmanager_e2e: %s\n' "$*" >&2; }
# shellcheck source=tools/lib/harness.sh
source "${repo}/tools/lib/harness.sh"

require_tools "apt-get install -y prometheus prometheus-alertmanager python3" "${prometheus_bin}" "${alertmanager_bin}" python3
ensure_failbackd

harness_begin am-e2e "alertmanager e2e"
pick_ports 4
read -r fb_port prom_port am_port hook_port <<<"${ports[*]}"
fb_addr=127.0.0.1:${fb_port}

# notes ALERTNAME STATUS: how many notifications with that status carry an alert ALERTNAME.
notes() { notification_count "$1" "$2" "" ""; }

start_webhook "${hook_port}"

# ---- Alertmanager -------------------------------------------------------------------------
# The runbook's example, with its receivers replaced by the webhook and short intervals.
if ! alertmanager_config "${hook_port}" "${GROUP_INTERVAL}" README.md >"${tmp}/alertmanager.yml"; then
    check FAIL "the Alertmanager example of docs/runbook.md (route group_by as in the README, inhibit_rules)"
    finish
fi
check OK "the Alertmanager example of docs/runbook.md loads (group_by as in the README)" \
    "$(grep -c 'source_matchers' "${tmp}/alertmanager.yml") inhibit rules"
start_alertmanager "${am_port}"

# ---- Prometheus ---------------------------------------------------------------------------
{
    prometheus_config_head "${repo}/alerts/failbackd.rules.yml" "${JOB}" "${am_port}"
    cat <<EOF
      - targets: ["${fb_addr}"]
        labels: {pair: ${PAIR}}
EOF
} >"${tmp}/prometheus.yml"
start_prometheus "${prom_port}" --rules.alert.resend-delay=2s
wait_webhook
wait_alertmanager
wait_prometheus

# ---- failbackd: a failback that cannot pass --------------------------------------------------
cat >"${tmp}/failbackd.toml" <<EOF
watch = ["*@*"]
hold_on_boot = true
min_hold = "1s"
stable_for = "1s"
max_hold = "5s"
max_hold_policy = "stay"
control_socket = "${tmp}/failbackd.sock"
state_file = "${tmp}/failbackd.state"
metrics_listen = "${fb_addr}"
hook_fallback = "nothing"

[backend]
type = "simulated"

[[probe]]
name = "never-up"
type = "command"
command = ["false"]
interval = "1s"
timeout = "1s"
required = true
EOF
if ! "${failbackd}" check-config "${tmp}/failbackd.toml" >"${tmp}/check-config.log" 2>&1; then
    sed 's/^/    /' "${tmp}/check-config.log" >&2
    check FAIL "failbackd check-config of the test config"
    finish
fi
t_fb=${SECONDS}
# --start boot: this machine has been up for longer than failbackd's boot window, so `auto`
# would take it for a first start and not apply hold_on_boot.
"${failbackd}" run -c "${tmp}/failbackd.toml" --start boot >"${tmp}/failbackd.log" 2>&1 &
fb_pid=$!
pids+=("${fb_pid}")
log "failbackd ${fb_addr}, Prometheus ${prom_url}, Alertmanager ${am_url}, webhook :${hook_port}"

echo "== FailbackFailed through Prometheus and Alertmanager to the webhook"
phase_failed() {
    alive "${fb_pid}" failbackd "${tmp}/failbackd.log" || exit 1
    prom_true "failback_phase{job=\"${JOB}\",phase=\"failed\"} == 1"
}
if wait_until "phase failed in Prometheus" 40 0.5 30 phase_failed; then
    check OK "failbackd reached phase failed (max_hold 5s)" "$((SECONDS - t_fb))s after start, seen in Prometheus"
else
    check FAIL "failbackd reached phase failed (max_hold 5s)"
    finish
fi

first_note() {
    for pid in "${fb_pid}" "${prom_pid}" "${am_pid}" "${hook_pid}"; do
        kill -0 "${pid}" 2>/dev/null || { log "a process (pid ${pid}) died; logs in ${tmp}"; exit 1; }
    done
    (($(notes FailbackFailed firing) >= 1))
}
if wait_until "the FailbackFailed notification" 120 0.5 "$((NOTIFY_TIMEOUT - (SECONDS - t_fb)))" first_note; then
    check OK "a FailbackFailed firing notification arrived" "$((SECONDS - t_fb))s after failbackd started"
else
    check FAIL "a FailbackFailed firing notification arrived" "none within ${NOTIFY_TIMEOUT}s; received: $(wc -l <"${notifications}") notification(s)"
    sed 's/^/    prometheus: /' "${tmp}/prometheus.log" >&2
    sed 's/^/    alertmanager: /' "${tmp}/alertmanager.log" >&2
    finish
fi
n_first=$(notes FailbackFailed firing)

# Content of the notification.
content=$(python3 - "${notifications}" "${fb_addr}" "${PAIR}" "${JOB}" docs/runbook.md <<'PY'
import json, re, sys
path, instance, pair, job, runbook = sys.argv[1:]
with open(path, encoding="utf-8") as f:
    docs = [json.loads(l) for l in f if l.endswith("\n")]
doc = next(d for d in docs if d.get("status") == "firing" and any(
    a.get("labels", {}).get("alertname") == "FailbackFailed" for a in d.get("alerts", [])))
alerts = doc["alerts"]
a = alerts[0]
labels, ann = a.get("labels", {}), a.get("annotations", {})
want = {"alertname": "FailbackFailed", "severity": "critical", "instance": instance, "job": job, "pair": pair}
with open(runbook, encoding="utf-8") as f:
    anchors = {h.strip().lower().replace(" ", "-") for h in re.findall(r"^## (.+)$", f.read(), re.M)}
url = ann.get("runbook_url", "")
desc = ann.get("description", "")
out = []
def line(ok, what, detail=""):
    out.append("%s\t%s\t%s" % ("OK" if ok else "FAIL", what, detail))
line(len(alerts) == 1 and a.get("status") == "firing", "the notification holds one firing alert",
     "%d alert(s), status %s" % (len(alerts), a.get("status")))
for k, v in want.items():
    line(labels.get(k) == v, "label %s=%s" % (k, v), "got %r" % labels.get(k))
for k in ("summary", "description", "runbook_url"):
    line(bool(ann.get(k, "").strip()), "annotation %s present" % k, repr(ann.get(k, ""))[:160])
line(instance in desc and "error expanding template" not in desc and "<no value>" not in desc,
     "description names the instance and its templates expanded", desc[:200])
line(url.split("#")[-1] in anchors and url.startswith("https://"),
     "runbook_url points at a section of docs/runbook.md", url)
print("\n".join(out))
PY
) || content=$'FAIL\tparsing the notification\tsee above'
while IFS=$'\t' read -r verdict what detail; do
    check "${verdict}" "${what}" "${detail}"
done <<<"${content}"

# No duplicate: wait several group intervals (and Prometheus re-sends), then count again.
sleep $((QUIET_INTERVALS * GROUP_INTERVAL))
n_firing=$(notes FailbackFailed firing)
n_resolved=$(notes FailbackFailed resolved)
if ((n_first == 1 && n_firing == 1)); then
    check OK "exactly one FailbackFailed firing notification" "also after ${QUIET_INTERVALS} more group intervals"
else
    check FAIL "exactly one FailbackFailed firing notification" "${n_first} at first, ${n_firing} after ${QUIET_INTERVALS} group intervals"
fi
if ((n_resolved == 0)); then
    check OK "no FailbackFailed resolved notification (the node stays failed)"
else
    check FAIL "no FailbackFailed resolved notification (the node stays failed)" "${n_resolved} arrived"
fi
# Alertmanager really had duplicates to drop: Prometheus re-sent the firing alert (every 2s).
received=$(python3 -c '
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=2) as r:
    text = r.read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
              if l.startswith("alertmanager_alerts_received_total") and "status=\"firing\"" in l)))
' "${am_url}") || received=0
if ((received >= 2)); then
    check OK "Prometheus re-sent the firing alert and Alertmanager deduplicated it" "${received} firing alerts received, 1 notified"
else
    check FAIL "Prometheus re-sent the firing alert and Alertmanager deduplicated it" "only ${received} firing alert(s) received"
fi
# ---- the documented inhibition: FailbackStuck inhibits FailbackProbeDown on the same instance ----
echo "== inhibit_rules of docs/runbook.md in Alertmanager"
stuck_node=fw-stuck.example.net:9818
other_node=fw-other.example.net:9818
tracked_node=fw-tracked.example.net:9818
post_alerts() {
    python3 - "${am_url}" "${stuck_node}" "${other_node}" "${PAIR}" "${tracked_node}" <<'PY'
import datetime, json, sys, urllib.request
am, stuck, other, pair, tracked = sys.argv[1:]
end = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)).isoformat()
def alert(name, instance, **labels):
    return {"labels": dict(alertname=name, instance=instance, job="failbackd", pair=pair, **labels),
            "annotations": {"summary": name}, "endsAt": end}
body = [alert("FailbackStuck", stuck, severity="warning"),
        alert("FailbackProbeDown", stuck, severity="warning", probe="tunnel"),
        alert("FailbackProbeDown", other, severity="warning", probe="tunnel"),
        # One dead tracked path: TrackSuppressed pages, MasterProbeDown of that node is inhibited.
        alert("FailbackTrackSuppressed", tracked, severity="critical"),
        alert("FailbackMasterProbeDown", tracked, severity="critical", probe="wan")]
req = urllib.request.Request(am + "/api/v2/alerts", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(req, timeout=5) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}
# probedown_state INSTANCE [ALERTNAME]: Alertmanager's state of FailbackProbeDown (or ALERTNAME)
# for INSTANCE and what inhibits it.
probedown_state() {
    python3 - "${am_url}" "$1" "${2:-FailbackProbeDown}" <<'PY'
import json, sys, urllib.parse, urllib.request
am, instance, name = sys.argv[1:]
q = urllib.parse.urlencode([("filter", 'alertname="%s"' % name), ("filter", 'instance="%s"' % instance)])
with urllib.request.urlopen(am + "/api/v2/alerts?" + q, timeout=5) as r:
    alerts = json.load(r)
print(" ".join("%s:%d" % (a["status"]["state"], len(a["status"].get("inhibitedBy") or [])) for a in alerts) or "none")
PY
}
if post_alerts; then
    other_seen() { (($(notified FailbackProbeDown "${other_node}") >= 1)); }
    if wait_until "FailbackProbeDown of ${other_node} notified" 40 0.5 20 other_seen; then
        check OK "FailbackProbeDown of another instance is notified (not inhibited)" "$(probedown_state "${other_node}")"
    else
        check FAIL "FailbackProbeDown of another instance is notified (not inhibited)" "$(probedown_state "${other_node}")"
    fi
    # A few more group intervals for a notification that should not come.
    sleep $((3 * GROUP_INTERVAL))
    state=$(probedown_state "${stuck_node}")
    if [[ ${state} == suppressed:1 ]]; then
        check OK "FailbackProbeDown of the stuck instance is inhibited by FailbackStuck" "state ${state} (inhibited by 1 alert)"
    else
        check FAIL "FailbackProbeDown of the stuck instance is inhibited by FailbackStuck" "state ${state}"
    fi
    n=$(notified FailbackProbeDown "${stuck_node}")
    if ((n == 0)) && (($(notified FailbackStuck "${stuck_node}") >= 1)); then
        check OK "FailbackStuck notified, the inhibited FailbackProbeDown not"
    else
        check FAIL "FailbackStuck notified, the inhibited FailbackProbeDown not" "${n} FailbackProbeDown notification(s) for ${stuck_node}"
    fi
    state=$(probedown_state "${tracked_node}" FailbackMasterProbeDown)
    if [[ ${state} == suppressed:1 ]] && (($(notified FailbackMasterProbeDown "${tracked_node}") == 0)) &&
        (($(notified FailbackTrackSuppressed "${tracked_node}") >= 1)); then
        check OK "FailbackMasterProbeDown is inhibited by FailbackTrackSuppressed of the same node (one page)" "state ${state}"
    else
        check FAIL "FailbackMasterProbeDown is inhibited by FailbackTrackSuppressed of the same node (one page)" "state ${state}"
    fi
else
    check FAIL "posting alerts to Alertmanager's /api/v2/alerts"
fi

others=$(python3 -c '
import json, sys
names = set()
with open(sys.argv[1], encoding="utf-8") as f:
    for l in f:
        for a in json.loads(l).get("alerts", []):
            names.add(a.get("labels", {}).get("alertname"))
print(" ".join(sorted(n for n in names if n != "FailbackFailed")))
' "${notifications}")
if [[ -n ${others} ]]; then
    log "note: other alerts were notified too: ${others}"
fi

finish
