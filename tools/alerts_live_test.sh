#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through trap and wait_until "$@" (shellcheck 0.9 flags them)
#
# Live test of the alert rules against real failbackd processes that are killed, restarted and
# dropped from service discovery (issue 19, the review's scenarios 3, 6 and 13), with a real
# Prometheus and a real Alertmanager (Debian `prometheus`, `prometheus-alertmanager`) and a
# webhook receiver, all on 127.0.0.1 with free ports:
#
#   tools/alerts_live_test.sh      # from anywhere in the repository; ~90 s
#
# Time is compressed: the rules Prometheus loads are alerts/failbackd.rules.yml with every
# duration (`for:`, `keep_firing_for:`, range windows, offsets) divided by 30 (1m -> 2s,
# 5m -> 10s, 15m -> 30s, 1h -> 2m, 1d -> 48m); the expressions are the file's, unchanged.
# Scrapes and evaluations every 1s. Nodes (command backend; its demote/promote write a state
# file that its `state` command reads, its CARP state is a file the test writes):
#
# - 13, crash loop: `c1` is killed (SIGKILL) and started again 5 times, ~3 s per life. Its
#   `up` stays 1 almost throughout. FailbackdRestarting must fire for c1 (and be notified
#   through Alertmanager), FailbackdDown must never fire for c1. `c2`, restarted once, must
#   never get FailbackdRestarting.
# - 6, planned reboot: `d1` runs released, is drained (`failbackd drain`: phase draining, held)
#   and then stopped (SIGTERM) for longer than FailbackdDownWhileHeld's `for:`. FailbackdDown
#   must fire for d1, FailbackdDownWhileHeld never (not even pending). `d2` (control), held in
#   its boot hold by a probe that never passes, is stopped the same way: FailbackdDownWhileHeld
#   must fire for it (critical: no pair) and be notified.
# - 3, peer target vanished: pair `live3` in a file_sd file. `p1` is in its boot hold (BACKUP)
#   while `p2` is MASTER. p2 is killed and its target removed from the file_sd file (service
#   discovery drops a dead node): no `up == 0` ever; CARP makes the held p1 MASTER (its CARP
#   state file says so from then on). FailbackPeerLost must fire for p1 (its description naming p2), FailbackdTargetGone
#   for p2, FailbackdDown never for p2.
#
# Prints `alerts live: N passed, M failed`; exit status 1 on any failure.
# Builds target/release/failbackd only if missing (FAILBACKD=/path overrides). Every process it
# starts is killed on exit and its temp dir removed (KEEP_TMP=1 keeps the logs).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${repo}"

JOB=failbackd
TIME_FACTOR=30           # every rule duration is divided by this

log() { printf 'alerts_live: %s\n' "$*" >&2; }
# shellcheck source=tools/lib/harness.sh
source "${repo}/tools/lib/harness.sh"

require_tools "apt-get install -y prometheus prometheus-alertmanager python3" "${prometheus_bin}" "${alertmanager_bin}" python3
ensure_failbackd

harness_begin alerts-live "alerts live"
nodes=(c1 c2 d1 d2 p1 p2)
pick_ports $((3 + ${#nodes[@]}))
read -r prom_port am_port hook_port <<<"${ports[*]:0:3}"
declare -A node_port=()
for i in "${!nodes[@]}"; do
    node_port[${nodes[i]}]=${ports[i + 3]}
done
addr() { echo "127.0.0.1:${node_port[$1]}"; }

# ---- the rules, time-compressed ------------------------------------------------------------
python3 - alerts/failbackd.rules.yml "${TIME_FACTOR}" >"${tmp}/rules.yml" <<'PY'
"""Divides every duration of a Prometheus rule file by a factor: `for:`/`keep_firing_for:`
values, range selectors `[...]` and `offset ...`. Expressions are otherwise unchanged."""
import re
import sys

path, factor = sys.argv[1], int(sys.argv[2])
UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def scaled(text):
    seconds = sum(int(n) * UNIT[u] for n, u in re.findall(r"(\d+)([smhd])", text))
    return "%ds" % max(1, round(seconds / factor))


src = open(path, encoding="utf-8").read()
src = re.sub(r"^(\s*(?:for|keep_firing_for):\s*)(\S+)$", lambda m: m.group(1) + scaled(m.group(2)), src, flags=re.M)
src = re.sub(r"\[((?:\d+[smhd])+)\]", lambda m: "[" + scaled(m.group(1)) + "]", src)
src = re.sub(r"\boffset ((?:\d+[smhd])+)", lambda m: "offset " + scaled(m.group(1)), src)
print(src, end="")
PY

start_webhook "${hook_port}"

# ---- Alertmanager: the runbook's inhibit rules, everything to the webhook -------------------
alertmanager_config "${hook_port}" 1 >"${tmp}/alertmanager.yml"
start_alertmanager "${am_port}"

# ---- the nodes -------------------------------------------------------------------------------
printf 'demoted\n' >"${tmp}/word-demoted"
printf 'promoted\n' >"${tmp}/word-promoted"
node_config() { # node_config NODE HOLD_ON_BOOT PROBE_COMMAND CARP_STATE
    local n=$1
    printf 'promoted\n' >"${tmp}/held-${n}"
    printf '1@live0 %s\n' "$4" >"${tmp}/carp-${n}"
    cat >"${tmp}/${n}.toml" <<EOF
watch = ["1@live0"]
hold_on_boot = $2
min_hold = "1s"
stable_for = "1s"
max_hold = "10m"
max_hold_policy = "stay"
reconcile_interval = "1s"
control_socket = "${tmp}/${n}.sock"
state_file = "${tmp}/${n}.state"
metrics_listen = "$(addr "${n}")"
hook_fallback = "nothing"

[backend]
type = "command"
demote = ["/bin/cp", "${tmp}/word-demoted", "${tmp}/held-${n}"]
promote = ["/bin/cp", "${tmp}/word-promoted", "${tmp}/held-${n}"]
state = ["/bin/cat", "${tmp}/held-${n}"]
carp_state = ["/bin/cat", "${tmp}/carp-${n}"]

[[probe]]
name = "gw"
type = "command"
command = ["$3"]
interval = "1s"
timeout = "1s"
required = true
EOF
    "${failbackd}" check-config "${tmp}/${n}.toml" >"${tmp}/${n}.check" 2>&1 || {
        sed 's/^/    /' "${tmp}/${n}.check" >&2
        return 1
    }
}
declare -A node_pid=()
start_node() { # start_node NODE [START]: START is `failbackd run --start` (default auto)
    "${failbackd}" run -c "${tmp}/$1.toml" --start "${2:-auto}" >>"${tmp}/$1.log" 2>&1 &
    node_pid[$1]=$!
    pids+=("$!")
}
stop_node() { # stop_node NODE SIGNAL
    kill -s "$2" "${node_pid[$1]}" 2>/dev/null || true
    wait "${node_pid[$1]}" 2>/dev/null || true
}

node_config c1 false true MASTER
node_config c2 false true MASTER
node_config d1 false true BACKUP
node_config d2 true false BACKUP
node_config p1 true false BACKUP
node_config p2 false true MASTER
# Each node's first start is a boot (this machine has been up for longer than failbackd's boot
# window, so `auto` would call it a first start and not apply hold_on_boot); restarts are `auto`.
for n in "${nodes[@]}"; do
    start_node "${n}" boot
done

# ---- Prometheus: static targets for c*/d*, file_sd for the pair live3 ------------------------
write_sd() { # write_sd TARGET...: the pair's file_sd file, replaced atomically
    python3 -c 'import json, sys; print(json.dumps([{"targets": sys.argv[1:], "labels": {"pair": "live3"}}]))' \
        "$@" >"${tmp}/sd.json.new"
    mv "${tmp}/sd.json.new" "${tmp}/sd.json"
}
write_sd "$(addr p1)" "$(addr p2)"
{
    prometheus_config_head "${tmp}/rules.yml" "${JOB}" "${am_port}"
    cat <<EOF
      - targets: ["$(addr c1)", "$(addr c2)", "$(addr d1)", "$(addr d2)"]
    file_sd_configs:
      - files: ["${tmp}/sd.json"]
        refresh_interval: 1s
EOF
} >"${tmp}/prometheus.yml"
start_prometheus "${prom_port}" --rules.alert.resend-delay=1s
wait_webhook
wait_alertmanager
wait_prometheus

inst() { addr "$1"; }
q() { prom_true "$1"; }
# ever ALERTNAME NODE [STATE]: the alert existed (pending or firing, or STATE) for NODE since the start.
ever() {
    q "max_over_time(ALERTS{alertname=\"$1\",instance=\"$(inst "$2")\"${3:+,alertstate=\"$3\"}}[10m])"
}
firing() { q "ALERTS{alertname=\"$1\",instance=\"$(inst "$2")\",alertstate=\"firing\"}"; }

all_scraped() {
    local n
    for n in "${nodes[@]}"; do
        q "failback_measured{instance=\"$(inst "${n}")\"} == 1" || return 1
    done
}
if wait_until "every node scraped after its first step" 60 0.5 30 all_scraped; then
    check OK "6 failbackd nodes scraped (failback_measured 1 after the first step)"
else
    check FAIL "6 failbackd nodes scraped"
    for n in "${nodes[@]}"; do sed "s/^/    ${n}: /" "${tmp}/${n}.log" >&2; done
    finish
fi
held_probing() { q "failback_held_in_maintenance{instance=\"$(inst "$1")\"} == 1 and on (instance) failback_phase{phase=\"probing\"} == 1"; }
wait_until "d2 and p1 held in their boot hold" 40 0.5 20 eval 'held_probing d2 && held_probing p1' ||
    { check FAIL "d2 and p1 held in probing"; finish; }
check OK "d2 and p1 held in their boot hold (probe gw never passes)"

# ---- scenario 6: drain, then stop ---------------------------------------------------------------
"${failbackd}" drain --timeout 5s -c "${tmp}/d1.toml" >"${tmp}/d1.drain" 2>&1 || true
drained() { q "failback_phase{instance=\"$(inst d1)\",phase=\"draining\"} == 1 and on (instance) failback_held_in_maintenance == 1"; }
if wait_until "d1 draining and held in Prometheus" 40 0.5 20 drained; then
    check OK "d1 drained (phase draining, held) and scraped so"
else
    check FAIL "d1 drained" "$(cat "${tmp}/d1.drain")"
fi
sleep 2 # a couple more scrapes of the drained state
stop_node d1 TERM
stop_node d2 TERM
t_stop=${SECONDS}

# ---- scenario 3: p2 dies and its target vanishes from service discovery -------------------------
# The target goes first (as when an on-box agent dies with its box), so no scrape of p2 ever
# fails: Prometheus never writes up == 0 for it.
write_sd "$(addr p1)"
p2_gone() { ! q "up{instance=\"$(inst p2)\"}"; }
wait_until "p2's target dropped" 40 0.25 10 p2_gone || check FAIL "p2's target dropped by file_sd"
stop_node p2 KILL
# With its peer gone CARP makes the held p1 MASTER.
printf '1@live0 MASTER\n' >"${tmp}/carp-p1.new"
mv "${tmp}/carp-p1.new" "${tmp}/carp-p1"

# ---- scenario 13: c1 crash-loops, c2 restarts once -----------------------------------------------
stop_node c2 KILL
start_node c2
for _ in 1 2 3 4 5; do
    sleep 3
    stop_node c1 KILL
    start_node c1
done

# ---- results ---------------------------------------------------------------------------------------
echo "== scenario 13: crash loop"
if wait_until "FailbackdRestarting for c1" 40 0.5 20 firing FailbackdRestarting c1; then
    check OK "FailbackdRestarting fires for the crash-looping c1" \
        "$(python3 -c 'import json,sys,urllib.request,urllib.parse; print(json.load(urllib.request.urlopen(sys.argv[1]+"/api/v1/query?"+urllib.parse.urlencode({"query": "failback:restarts:resets15m{instance=\""+sys.argv[2]+"\"}"})))["data"]["result"][0]["value"][1])' "${prom_url}" "$(inst c1)") resets in the (compressed) window"
else
    check FAIL "FailbackdRestarting fires for the crash-looping c1"
fi
if ever FailbackdDown c1 firing; then
    check FAIL "FailbackdDown never fired for c1 (its up stays 1 through the loop)"
else
    check OK "FailbackdDown never fired for c1 (its up stays 1 through the loop)"
fi
if ever FailbackdRestarting c2; then
    check FAIL "FailbackdRestarting never for c2 (one restart)"
else
    check OK "FailbackdRestarting never for c2 (one restart)"
fi

echo "== scenario 6: planned reboot"
# Down for longer than the compressed for: (10s) plus a few evaluations.
down_long() { ((SECONDS - t_stop >= 16)); }
wait_until "d1/d2 down long enough" 40 0.5 30 down_long || true
if firing FailbackdDown d1; then
    check OK "FailbackdDown fires for the drained, stopped d1"
else
    check FAIL "FailbackdDown fires for the drained, stopped d1"
fi
if ever FailbackdDownWhileHeld d1; then
    check FAIL "FailbackdDownWhileHeld never (not even pending) for d1 after a drain"
else
    check OK "FailbackdDownWhileHeld never (not even pending) for d1 after a drain"
fi
if wait_until "FailbackdDownWhileHeld for d2" 20 0.5 10 firing FailbackdDownWhileHeld d2; then
    check OK "FailbackdDownWhileHeld fires for d2 (stopped while held in its boot hold)"
else
    check FAIL "FailbackdDownWhileHeld fires for d2 (stopped while held in its boot hold)"
fi

echo "== scenario 3: the peer's target vanished"
if wait_until "FailbackPeerLost for p1" 40 0.5 20 firing FailbackPeerLost p1; then
    check OK "FailbackPeerLost fires for p1 (held, MASTER, its peer's target gone)"
else
    check FAIL "FailbackPeerLost fires for p1 (held, MASTER, its peer's target gone)"
fi
if q "pair:failback_up:sum{pair=\"live3\"} < on (pair) pair:failback_up:count{pair=\"live3\"}"; then
    check FAIL "the vanished target is not up == 0 (the old rule's comparison stays false)"
else
    check OK "the vanished target is not up == 0 (the old rule's comparison stays false)"
fi
if wait_until "FailbackdTargetGone for p2" 40 0.5 20 firing FailbackdTargetGone p2; then
    check OK "FailbackdTargetGone fires for p2"
else
    check FAIL "FailbackdTargetGone fires for p2"
fi
if ever FailbackdDown p2; then
    check FAIL "FailbackdDown never for p2 (a vanished target has no up series)"
else
    check OK "FailbackdDown never for p2 (a vanished target has no up series)"
fi

echo "== through Alertmanager"
note_for() { (($(notified "$1" "$(inst "$2")") >= 1)); }
for pair in "FailbackdRestarting c1" "FailbackdDownWhileHeld d2" "FailbackPeerLost p1" "FailbackdTargetGone p2"; do
    read -r name node <<<"${pair}"
    if wait_until "a ${name} notification for ${node}" 40 0.5 20 note_for "${name}" "${node}"; then
        check OK "${name} for ${node} notified to the webhook"
    else
        check FAIL "${name} for ${node} notified to the webhook"
    fi
done
for pair in "FailbackdDownWhileHeld d1" "FailbackdRestarting c2" "FailbackdDown p2"; do
    read -r name node <<<"${pair}"
    if note_for "${name}" "${node}"; then
        check FAIL "no ${name} notification for ${node}"
    else
        check OK "no ${name} notification for ${node}"
    fi
done
finish
