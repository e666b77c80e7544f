#!/bin/bash
# Resident memory and CPU of `failbackd run` with PROBES probes (icmp/tcp/http on loopback) at
# INTERVAL, over DURATION seconds after a 15 s warm-up (boot hold, first release).
#
#   tools/bench/soak.sh [--duration 300] [--probes 10] [--interval 1s] [--bin PATH] [--out FILE.env]
#
# CPU: utime + stime from /proc/PID/stat over the window / wall time, in % of one core.
# RSS: VmRSS sampled every 5 s (max and last), VmHWM at the end.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$HERE/lib.sh"

DURATION=300 PROBES=10 INTERVAL=1s BIN="" OUTF=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --duration) DURATION=${2:?}; shift ;;
    --probes) PROBES=${2:?}; shift ;;
    --interval) INTERVAL=${2:?}; shift ;;
    --bin) BIN=${2:?}; shift ;;
    --out) OUTF=${2:?}; shift ;;
    *) bdie "unknown argument $1" ;;
    esac
    shift
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 5 && $DURATION -le 86400 ]] || bdie "--duration 5..86400 (seconds)"
[[ $PROBES =~ ^[0-9]+$ && $PROBES -le 1000 ]] || bdie "--probes 0..1000"
BIN=$(failbackd_bin "$BIN")

bench_begin soak

{
    cat <<TOML
watch = ["*@*"]
control_socket = "$WORK/fbd.sock"
state_file = "$WORK/fbd.state"
metrics_listen = "127.0.0.1:9818"
[backend]
type = "command"
# The state lives in a file the demote/promote commands write and the state command reads: measured every
# reconcile_interval (5 s), one exec, as on OPNsense (configctl) or FreeBSD (sysctl).
demote = ["/bin/sh", "-c", "echo demoted > $WORK/state"]
promote = ["/bin/sh", "-c", "echo promoted > $WORK/state"]
state = ["/bin/cat", "$WORK/state"]

TOML
    probe_toml "$PROBES" "$INTERVAL"
} >"$WORK/fbd.toml"
echo promoted >"$WORK/state"
bench_start_daemon "$BIN"

cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$DPID/stat"; } # utime + stime
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$DPID/status"; }

blog "warm-up 15 s (boot hold, probes up, release)"
sleep 15
kill -0 "$DPID" || bdie "daemon died: $(cat "$WORK/fbd.log")"
phase=$("$BIN" status --json --config "$WORK/fbd.toml" 2>/dev/null | awk -F'"' '/"phase"/ { print $4; exit }')
blog "phase after warm-up: ${phase:-unknown}; soaking ${DURATION} s with $PROBES probes at $INTERVAL"
HZ=$(getconf CLK_TCK)
c0=$(cpu_ticks)
t0=$EPOCHREALTIME
max_rss=0 last_rss=0
for ((i = 0; i < (DURATION + 4) / 5; i++)); do
    left=$((DURATION - i * 5))
    sleep $((left < 5 ? left : 5))
    last_rss=$(rss_kib)
    ((last_rss > max_rss)) && max_rss=$last_rss
done
c1=$(cpu_ticks)
t1=$EPOCHREALTIME
hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$DPID/status")
threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$DPID/status")
attempts=$(ip netns exec "$BENCH_NS" curl -s -m 5 http://127.0.0.1:9818/metrics | awk '/^failback_probe_attempts_total/ { s += $2 } END { print s + 0 }')

{
    printf 'SOAK_DURATION_S=%s\nSOAK_PROBES=%s\nSOAK_INTERVAL=%s\nSOAK_PHASE=%s\n' "$DURATION" "$PROBES" "$INTERVAL" "${phase:-unknown}"
    awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "SOAK_CPU_PCT=%.3f\nSOAK_CPU_S=%.2f\n", (b - a) / hz / (t1 - t0) * 100, (b - a) / hz }'
    awk -v m="$max_rss" -v l="$last_rss" -v h="$hwm" 'BEGIN { printf "SOAK_RSS_MAX_MIB=%.1f\nSOAK_RSS_LAST_MIB=%.1f\nSOAK_RSS_HWM_MIB=%.1f\n", m / 1024, l / 1024, h / 1024 }'
    printf 'SOAK_THREADS=%s\nSOAK_PROBE_ATTEMPTS=%s\n' "$threads" "$attempts"
    printf '%s_LOADAVG_END=%s\n' SOAK "$(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "${OUTF:-/dev/null}"
