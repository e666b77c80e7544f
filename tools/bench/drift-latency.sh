#!/bin/bash
# How long failbackd takes to notice and undo a change of its hold made behind its back (drift),
# with the default reconcile_interval (5 s) or --interval: a command backend whose state lives
# in a file; the file is set to "promoted" while the daemon holds; the time until the daemon's
# own demote command has run again is measured, RUNS times.
#
#   tools/bench/drift-latency.sh [--runs 10] [--interval 5s] [--bin PATH] [--out FILE.env]
#
# Expected: uniform in [0, interval] plus one exec of the state and demote commands.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$HERE/lib.sh"

RUNS=10 INTERVAL=5s BIN="" OUTF=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --runs) RUNS=${2:?}; shift ;;
    --interval) INTERVAL=${2:?}; shift ;;
    --bin) BIN=${2:?}; shift ;;
    --out) OUTF=${2:?}; shift ;;
    *) bdie "unknown argument $1" ;;
    esac
    shift
done
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 && $RUNS -le 100 ]] || bdie "--runs 1..100"
BIN=$(failbackd_bin "$BIN")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/failbackd-drift.XXXXXX")
DPID=""
cleanup() {
    [[ -n $DPID ]] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

echo promoted >"$WORK/backend"
cat >"$WORK/fbd.toml" <<TOML
watch = ["*@*"]
control_socket = "$WORK/fbd.sock"
state_file = "$WORK/fbd.state"
metrics_listen = "127.0.0.1:0"
reconcile_interval = "$INTERVAL"
max_hold = "1h"
[backend]
type = "command"
demote = ["/bin/sh", "-c", "echo demoted > $WORK/backend; echo demoted >> $WORK/calls"]
promote = ["/bin/sh", "-c", "echo promoted > $WORK/backend"]
state = ["/bin/cat", "$WORK/backend"]
[[probe]]
name = "never"
type = "command"
command = ["/bin/false"]
TOML
"$BIN" check-config "$WORK/fbd.toml" >/dev/null || bdie "config rejected"
"$BIN" run --start boot --config "$WORK/fbd.toml" >"$WORK/fbd.log" 2>&1 &
DPID=$!
wait_until 10 grep -q demoted "$WORK/calls" 2>/dev/null || bdie "no first demote: $(cat "$WORK/fbd.log")"

now_ms() { date +%s%3N; }
lat=()
for ((i = 1; i <= RUNS; i++)); do
    # Tamper at a random point of the reconcile cycle (0 .. 4.99 s after the last put-back).
    sleep "$((RANDOM % 5)).$((RANDOM % 100))"
    before=$(wc -l <"$WORK/calls")
    t0=$(now_ms)
    echo promoted >"$WORK/backend"
    deadline=$((t0 + 30000))
    while [[ $(wc -l <"$WORK/calls") -eq $before ]]; do
        [[ $(now_ms) -lt $deadline ]] || bdie "run $i: drift not undone within 30 s"
        sleep 0.01
    done
    lat+=($(($(now_ms) - t0)))
    blog "run $i: put back after ${lat[-1]} ms"
done
mapfile -t sorted < <(printf '%s\n' "${lat[@]}" | sort -n)
n=${#sorted[@]}
median=${sorted[$((n / 2))]}
echo "drift undone (reconcile_interval $INTERVAL, $n runs): min ${sorted[0]} ms, median $median ms, max ${sorted[$((n - 1))]} ms"
if [[ -n $OUTF ]]; then
    printf 'DRIFT_INTERVAL=%s\nDRIFT_RUNS=%s\nDRIFT_MIN_MS=%s\nDRIFT_MEDIAN_MS=%s\nDRIFT_MAX_MS=%s\n' \
        "$INTERVAL" "$n" "${sorted[0]}" "$median" "${sorted[$((n - 1))]}" >"$OUTF"
fi
