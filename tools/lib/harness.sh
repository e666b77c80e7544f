# Shared by tools/prom_live_test.sh and tools/alertmanager_e2e_test.sh: free ports, bounded
# waits and small HTTP/PromQL checks. Sourced, not run; the caller defines log() and, for
# prom_true, prom_url.
# shellcheck shell=bash
# The caller defines failbackd, pids, tmp and prom_url:
# shellcheck disable=SC2154

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

# stop_started: kills and reaps every PID in the caller's pids array, then removes ${tmp}
# (kept with KEEP_TMP=1). For the caller's EXIT trap.
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
' "${prom_url:?set prom_url before prom_true}" "$1"
}

