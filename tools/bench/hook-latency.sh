#!/bin/bash
# Hook-to-demote latency: the time from the CARP syshook's exec of `failbackd hook <vhid@if>
# BACKUP` to the command backend's demote program having run (it stamps the time itself),
# over EVENTS events; also the same program exec'd directly (the backend program's own cost).
#
#   tools/bench/hook-latency.sh [--events 200] [--bin PATH] [--out FILE.env]
#
# The daemon has no probes, min_hold = stable_for = 0: each BACKUP event arms a failback,
# demotes, and releases at once (promote); an untimed MASTER hook follows, so the next BACKUP
# is a transition again.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

EVENTS=200 BIN="" OUTF=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --events) EVENTS=${2:?}; shift ;;
    --bin) BIN=${2:?}; shift ;;
    --out) OUTF=${2:?}; shift ;;
    *) bdie "unknown argument $1" ;;
    esac
    shift
done
[[ $EVENTS =~ ^[0-9]+$ && $EVENTS -ge 1 && $EVENTS -le 100000 ]] || bdie "--events 1..100000"
BIN=$(failbackd_bin "$BIN")

bench_begin hook

STAMPS=$WORK/stamps
cat >"$WORK/fbd.toml" <<TOML
watch = ["51@lan"]
hold_on_boot = false
min_hold = "0s"
stable_for = "0s"
control_socket = "$WORK/fbd.sock"
state_file = "$WORK/fbd.state"
metrics_listen = "127.0.0.1:9818"
[backend]
type = "command"
demote = ["$HERE/stamp.sh", "demote", "$STAMPS"]
promote = ["$HERE/stamp.sh", "promote", "$STAMPS"]
TOML
bench_start_daemon "$BIN"

count() { local n=0; [[ -f $STAMPS ]] && n=$(grep -c " $1\$" "$STAMPS"); printf '%s' "$n"; }
promoted() { [[ $(count promote) -ge $1 ]]; }

blog "hook -> demote, $EVENTS events"
: >"$WORK/t0"
: >"$WORK/hook_exit"
for ((i = 1; i <= EVENTS; i++)); do
    t0=$EPOCHREALTIME
    "$BIN" hook 51@lan BACKUP --config "$WORK/fbd.toml" >/dev/null 2>&1 || bdie "hook failed at event $i"
    t1=$EPOCHREALTIME
    printf '%s\n' "$t0" >>"$WORK/t0"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }' >>"$WORK/hook_exit"
    wait_until 5 promoted "$i" || bdie "event $i: no promote after the demote (see $WORK/fbd.log)"
    # As on a real pair, the released node becomes MASTER before it can lose MASTER again: a
    # repeated BACKUP without a change in between is not a transition and arms nothing.
    "$BIN" hook 51@lan MASTER --config "$WORK/fbd.toml" >/dev/null 2>&1 || bdie "MASTER hook failed at event $i"
    sleep 0.02
done
grep ' demote$' "$STAMPS" | awk '{ print $1 }' >"$WORK/demote_at"
[[ $(wc -l <"$WORK/demote_at") == "$EVENTS" ]] || bdie "expected $EVENTS demotes, got $(wc -l <"$WORK/demote_at")"
paste "$WORK/t0" "$WORK/demote_at" | awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' >"$WORK/lat_ms"

blog "baseline: the demote program exec'd directly, $EVENTS times"
: >"$WORK/direct"
for ((i = 1; i <= EVENTS; i++)); do
    t0=$EPOCHREALTIME
    "$HERE/stamp.sh" direct "$WORK/direct.stamps"
    printf '%s\n' "$t0" >>"$WORK/direct"
done
awk '{ print $1 }' "$WORK/direct.stamps" | paste "$WORK/direct" - | awk '{ printf "%.3f\n", ($2 - $1) * 1000 }' >"$WORK/direct_ms"

blog "baseline: fork+exec of /bin/true and of \`failbackd --version\`, $EVENTS times each"
: >"$WORK/true_ms"
: >"$WORK/version_ms"
for ((i = 1; i <= EVENTS; i++)); do
    t0=$EPOCHREALTIME
    /bin/true
    t1=$EPOCHREALTIME
    "$BIN" --version >/dev/null
    t2=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.3f\n", (b - a) * 1000 >> "'"$WORK/true_ms"'"; printf "%.3f\n", (c - b) * 1000 >> "'"$WORK/version_ms"'" }'
done

res() {
    printf 'HOOK_LOADAVG_END=%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'HOOK_EVENTS=%s\n' "$EVENTS"
    printf 'HOOK_DEMOTE_P50_MS=%s\nHOOK_DEMOTE_P99_MS=%s\nHOOK_DEMOTE_MAX_MS=%s\n' \
        "$(percentile 50 <"$WORK/lat_ms")" "$(percentile 99 <"$WORK/lat_ms")" "$(percentile 100 <"$WORK/lat_ms")"
    printf 'HOOK_EXIT_P50_MS=%s\nHOOK_EXIT_P99_MS=%s\n' \
        "$(percentile 50 <"$WORK/hook_exit")" "$(percentile 99 <"$WORK/hook_exit")"
    printf 'DIRECT_EXEC_P50_MS=%s\nDIRECT_EXEC_P99_MS=%s\n' \
        "$(percentile 50 <"$WORK/direct_ms")" "$(percentile 99 <"$WORK/direct_ms")"
    printf 'TRUE_EXEC_P50_MS=%s\nTRUE_EXEC_P99_MS=%s\nVERSION_EXEC_P50_MS=%s\nVERSION_EXEC_P99_MS=%s\n' \
        "$(percentile 50 <"$WORK/true_ms")" "$(percentile 99 <"$WORK/true_ms")" \
        "$(percentile 50 <"$WORK/version_ms")" "$(percentile 99 <"$WORK/version_ms")"
}
res | tee "${OUTF:-/dev/null}"
