#!/bin/bash
# /metrics of `failbackd run` with PROBES probes (icmp/tcp/http on loopback, 1 s): response size
# and latency (curl time_total) under 1 scrape/s (SLOW scrapes) and under 50 concurrent scrapers
# (FAST requests in all, one curl --parallel process, keep-alive as Prometheus does), on
# 127.0.0.1 inside a private network namespace. Every loop is bounded by its count.
#
#   tools/bench/metrics-load.sh [--probes 20] [--slow 120] [--fast 5000] [--concurrency 50]
#                               [--bin PATH] [--out FILE.env]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$HERE/lib.sh"

PROBES=20 SLOW=120 FAST=5000 CONC=50 BIN="" OUTF=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --probes) PROBES=${2:?}; shift ;;
    --slow) SLOW=${2:?}; shift ;;
    --fast) FAST=${2:?}; shift ;;
    --concurrency) CONC=${2:?}; shift ;;
    --bin) BIN=${2:?}; shift ;;
    --out) OUTF=${2:?}; shift ;;
    *) bdie "unknown argument $1" ;;
    esac
    shift
done
for v in "$PROBES" "$SLOW" "$FAST" "$CONC"; do [[ $v =~ ^[0-9]+$ && $v -le 100000 ]] || bdie "counts are 0..100000"; done
BIN=$(failbackd_bin "$BIN")

bench_begin metrics

{
    cat <<TOML
watch = ["51@lan", "52@wan"]
control_socket = "$WORK/fbd.sock"
state_file = "$WORK/fbd.state"
metrics_listen = "127.0.0.1:9818"
[backend]
type = "command"
demote = ["/bin/true"]
promote = ["/bin/true"]

TOML
    probe_toml "$PROBES" 1s
} >"$WORK/fbd.toml"
bench_start_daemon "$BIN"
# Two CARP transitions so the carp series exist, then let probes and histograms fill.
"$BIN" hook 51@lan BACKUP --config "$WORK/fbd.toml" >/dev/null 2>&1 || true
"$BIN" hook 52@wan BACKUP --config "$WORK/fbd.toml" >/dev/null 2>&1 || true
blog "warm-up 15 s"
sleep 15
URL=http://127.0.0.1:9818/metrics
incurl() { ip netns exec "$BENCH_NS" curl "$@"; }

blog "1 scrape/s, $SLOW scrapes"
: >"$WORK/slow"
for ((i = 0; i < SLOW; i++)); do
    t=$EPOCHREALTIME
    incurl -s -o /dev/null -m 5 -w '%{time_total} %{size_download} %{http_code}\n' "$URL" >>"$WORK/slow"
    awk -v t="$t" -v n="$EPOCHREALTIME" 'BEGIN { d = 1 - (n - t); if (d > 0) printf "%.3f", d; else print 0 }' | xargs sleep
done
incurl -s -m 5 "$URL" >"$WORK/sample.txt"
blog "$CONC concurrent scrapers, $FAST requests"
t=$EPOCHREALTIME
incurl -s -o /dev/null -m 60 --parallel --parallel-immediate --parallel-max "$CONC" \
    -w '%{time_total} %{size_download} %{http_code}\n' "$URL?[1-$FAST]" >"$WORK/fast" || true
elapsed=$(awk -v t="$t" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.2f", n - t }')

ms() { awk '$3 == 200 { printf "%.3f\n", $1 * 1000 }' "$1"; }
{
    printf 'METRICS_PROBES=%s\n' "$PROBES"
    printf 'METRICS_SIZE_BYTES=%s\nMETRICS_SERIES=%s\n' "$(wc -c <"$WORK/sample.txt")" "$(grep -vc '^#' "$WORK/sample.txt")"
    printf 'METRICS_SLOW_N=%s\nMETRICS_SLOW_OK=%s\n' "$SLOW" "$(awk '$3 == 200' "$WORK/slow" | wc -l)"
    printf 'METRICS_SLOW_P50_MS=%s\nMETRICS_SLOW_P99_MS=%s\n' "$(ms "$WORK/slow" | percentile 50)" "$(ms "$WORK/slow" | percentile 99)"
    printf 'METRICS_FAST_N=%s\nMETRICS_FAST_CONC=%s\nMETRICS_FAST_OK=%s\nMETRICS_FAST_ELAPSED_S=%s\n' \
        "$FAST" "$CONC" "$(awk '$3 == 200' "$WORK/fast" | wc -l)" "$elapsed"
    printf 'METRICS_FAST_P50_MS=%s\nMETRICS_FAST_P99_MS=%s\nMETRICS_FAST_MAX_MS=%s\n' \
        "$(ms "$WORK/fast" | percentile 50)" "$(ms "$WORK/fast" | percentile 99)" "$(ms "$WORK/fast" | percentile 100)"
    printf '%s_LOADAVG_END=%s\n' METRICS "$(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "${OUTF:-/dev/null}"
