# Shared by the live tests tools/prom_live_test.sh, tools/alertmanager_e2e_test.sh and
# tools/alerts_live_test.sh: their temp dir and the cleanup of what they start, free ports,
# Prometheus, Alertmanager and a webhook receiver on 127.0.0.1, bounded waits, the pass/fail
# tally and small HTTP/PromQL checks. Sourced, not run, after the caller has set repo (the
# repository root) and defined log(); then the caller calls harness_begin.
# shellcheck shell=bash

harness_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The programs under test; the environment overrides each.
prometheus_bin=${PROMETHEUS:-prometheus}
alertmanager_bin=${ALERTMANAGER:-prometheus-alertmanager}
failbackd=${FAILBACKD:-${repo}/target/release/failbackd}

# require_tools HINT TOOL...: fails with the install hint when a tool is missing.
require_tools() {
    local hint=$1 tool
    shift
    for tool in "$@"; do
        if ! command -v "${tool}" >/dev/null 2>&1; then
            log "${tool} not found (${hint})"
            exit 1
        fi
    done
}

# ensure_failbackd: builds the release binary when ${failbackd} is missing (an explicit
# FAILBACKD that is not executable is an error).
ensure_failbackd() {
    if [[ ! -x ${failbackd} ]]; then
        if [[ -n ${FAILBACKD:-} ]]; then
            log "FAILBACKD=${FAILBACKD} is not an executable"
            exit 1
        fi
        log "building failbackd (cargo build --release)"
        cargo build --release
    fi
}

# harness_begin NAME SUMMARY: makes the temp dir ${tmp} (failbackd-NAME.XXXXXX), starts the
# tally (passed, failed, t_begin) and sets the traps. On exit every PID in ${pids} is stopped
# and ${tmp} removed; an exit with an error before the summary line prints
# `SUMMARY: N passed, M+1 failed (setup failed ...)`, so the output always ends with a count.
harness_begin() {
    harness_summary=$2
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/failbackd-$1.XXXXXX")
    pids=()
    summary_printed=0
    passed=0
    failed=0
    t_begin=${SECONDS}
    trap harness_cleanup EXIT
    trap 'exit 130' INT TERM
}

harness_cleanup() {
    local rc=$?
    if ((rc != 0 && summary_printed == 0)); then
        echo "${harness_summary}: ${passed:-0} passed, $((${failed:-0} + 1)) failed (setup failed: see the messages above)"
    fi
    stop_started
}

# check OK|FAIL WHAT [DETAIL]: one result of the tally.
check() {
    if [[ $1 == OK ]]; then
        passed=$((passed + 1))
        printf '  ok    %s%s\n' "$2" "${3:+: $3}"
    else
        failed=$((failed + 1))
        printf '  FAIL  %s%s\n' "$2" "${3:+: $3}"
    fi
}

# finish: prints the summary line and exits, with status 1 if a check failed.
finish() {
    echo "${harness_summary}: ${passed} passed, ${failed} failed"
    summary_printed=1
    log "took $((SECONDS - t_begin))s"
    ((failed == 0)) || exit 1
    exit 0
}

# stop_started: kills and reaps every PID in the pids array, then removes ${tmp} (kept with
# KEEP_TMP=1). For the EXIT trap.
stop_started() {
    local pid
    for pid in "${pids[@]}"; do
        kill "${pid}" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "${pid}" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        log "kept ${tmp}"
    else
        rm -rf "${tmp}"
    fi
}

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, all bound at once so they differ
# (the usual small race until our processes bind them remains).
free_ports() {
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

# pick_ports N: sets the array ports to N distinct free ports (free_ports); fails if it cannot.
pick_ports() {
    read -r -a ports < <(free_ports "$1")
    if ((${#ports[@]} != $1)); then
        log "could not pick free ports"
        exit 1
    fi
}

# Prints the process' log and fails if it has exited.
alive() {
    local pid=$1 name=$2 logfile=$3
    if ! kill -0 "${pid}" 2>/dev/null; then
        log "${name} (pid ${pid}) exited early; its log:"
        sed 's/^/    /' "${logfile}" >&2 || true
        return 1
    fi
}

# wait_until WHAT TRIES INTERVAL MAX_SECONDS CMD...: runs CMD until it succeeds, at most TRIES
# times and MAX_SECONDS seconds.
wait_until() {
    local what=$1 tries=$2 interval=$3 max=$4 start=${SECONDS} i
    shift 4
    for ((i = 1; i <= tries; i++)); do
        if "$@"; then
            return 0
        fi
        if ((SECONDS - start >= max)); then
            break
        fi
        sleep "${interval}"
    done
    log "timed out waiting for ${what} (${i} tries, $((SECONDS - start))s)"
    return 1
}

# http_ok URL: 0 if a GET of URL answers 2xx within 1s.
http_ok() {
    python3 -c '
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
        sys.exit(0 if 200 <= r.status < 300 else 1)
except Exception:
    sys.exit(1)
' "$1"
}

# prom_true EXPR: 0 if the instant query EXPR returns at least one sample.
prom_true() {
    python3 -c '
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    with urllib.request.urlopen(url, timeout=2) as r:
        body = json.load(r)
except Exception:
    sys.exit(1)
sys.exit(0 if body.get("status") == "success" and body["data"]["result"] else 1)
' "${prom_url:?start_prometheus before prom_true}" "$1"
}

# ---- what a live test starts: each logs to ${tmp}/NAME.log; its PID goes into pids ----------

# start_webhook PORT: the webhook receiver tools/lib/webhook.py on 127.0.0.1:PORT, which appends
# every notification to ${notifications}, one JSON document a line. Sets hook_pid.
start_webhook() {
    hook_port=$1
    notifications=${tmp}/notifications.jsonl
    : >"${notifications}"
    python3 "${harness_lib}/webhook.py" "${hook_port}" "${notifications}" >"${tmp}/webhook.log" 2>&1 &
    hook_pid=$!
    pids+=("${hook_pid}")
}

# alertmanager_config HOOK_PORT GROUP_INTERVAL [README]: prints an Alertmanager config made of
# the example in docs/runbook.md, every alert to the webhook (tools/lib/alertmanager_config.py).
alertmanager_config() {
    python3 "${harness_lib}/alertmanager_config.py" docs/runbook.md "$@"
}

# start_alertmanager PORT: Alertmanager (clustering off) with ${tmp}/alertmanager.yml on
# 127.0.0.1:PORT. Sets am_pid and am_url.
start_alertmanager() {
    am_url=http://127.0.0.1:$1
    "${alertmanager_bin}" \
        --config.file="${tmp}/alertmanager.yml" \
        --storage.path="${tmp}/alertmanager-data" \
        --web.listen-address="127.0.0.1:$1" \
        --cluster.listen-address= \
        --log.level=warn >"${tmp}/alertmanager.log" 2>&1 &
    am_pid=$!
    pids+=("${am_pid}")
}

# prometheus_config_head RULE_FILE JOB [ALERTMANAGER_PORT]: prints a prometheus.yml that
# scrapes and evaluates every 1s (and sends alerts to that Alertmanager) up to the
# static_configs of its one scrape job JOB; the caller appends the targets.
prometheus_config_head() {
    cat <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $1
EOF
    if [[ -n ${3:-} ]]; then
        cat <<EOF
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$3"]
EOF
    fi
    cat <<EOF
scrape_configs:
  - job_name: $2
    static_configs:
EOF
}

# start_prometheus PORT [FLAG...]: Prometheus with ${tmp}/prometheus.yml on 127.0.0.1:PORT.
# Sets prom_pid and prom_url.
start_prometheus() {
    local port=$1
    shift
    prom_url=http://127.0.0.1:${port}
    "${prometheus_bin}" \
        --config.file="${tmp}/prometheus.yml" \
        --storage.tsdb.path="${tmp}/prometheus-data" \
        --web.listen-address="127.0.0.1:${port}" \
        "$@" \
        --log.level=warn >"${tmp}/prometheus.log" 2>&1 &
    prom_pid=$!
    pids+=("${prom_pid}")
}

# Readiness of what start_* started; each gives up at once (exit 1) when the process exited.
hook_up() { alive "${hook_pid}" webhook "${tmp}/webhook.log" || exit 1; http_ok "http://127.0.0.1:${hook_port}/"; }
am_up() { alive "${am_pid}" alertmanager "${tmp}/alertmanager.log" || exit 1; http_ok "${am_url}/-/ready"; }
prom_up() { alive "${prom_pid}" prometheus "${tmp}/prometheus.log" || exit 1; http_ok "${prom_url}/-/ready"; }
wait_webhook() { wait_until "the webhook receiver" 100 0.1 10 hook_up; }
wait_alertmanager() { wait_until "Alertmanager /-/ready" 150 0.2 30 am_up; }
wait_prometheus() { wait_until "Prometheus /-/ready" 150 0.2 30 prom_up; }

# notification_count ALERTNAME DOC_STATUS ALERT_STATUS INSTANCE: how many notifications the
# webhook received (with DOC_STATUS, the group's: firing while any of its alerts fires) carry an
# alert ALERTNAME (with ALERT_STATUS, of INSTANCE); an empty filter matches anything.
notification_count() {
    python3 - "${notifications}" "$@" <<'PY'
import json, sys
path, name, doc_status, alert_status, instance = sys.argv[1:]


def match(alert):
    labels = alert.get("labels", {})
    return (labels.get("alertname") == name and (not instance or labels.get("instance") == instance)
            and (not alert_status or alert.get("status") == alert_status))


n = 0
with open(path, encoding="utf-8") as f:
    for line in f:
        if not line.endswith("\n"):
            break  # being written
        doc = json.loads(line)
        n += (not doc_status or doc.get("status") == doc_status) and any(map(match, doc.get("alerts", [])))
print(n)
PY
}

# notified ALERTNAME INSTANCE: notifications that carry a firing alert ALERTNAME of INSTANCE.
notified() { notification_count "$1" "" firing "$2"; }
