#!/bin/bash
# Issue 21: failbackd's fast confirmation and dampening side by side with keepalived's
# vrrp_script (same interval 1 s, rise 3, fall 2), median of N runs of the namespace testbed:
#   (a) path ready -> r1 MASTER after a failback          c2  vs dfast
#   (b) MASTER's upstream dead 30 s: lost, black-hole s  tc2 vs tdpf
#   (c) a 1.2 s blip: lost, switches                     tblip-ka vs tblip
#   (d) 8 s dead / 8 s alive x5: lost, switches          tflap-ka vs tflapd
# Prints a markdown table with the ratios and the probe load (r1's failbackd in tdpf/tflapd).
#
#   tools/bench/fast-confirm.sh [--runs 3] [--bin PATH] [--results DIR]   (root; ~12 min a run)
#   tools/bench/fast-confirm.sh --table DIR      only the table, from DIR/results.tsv and logs
# Namespaces are named fbfast-* (the testbed's --prefix), removed at the end.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=3 BIN="" RES="" TABLE_ONLY=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --runs) RUNS=${2:?}; shift ;;
    --bin) BIN=${2:?}; shift ;;
    --results) RES=${2:?}; shift ;;
    --table) TABLE_ONLY=${2:?}; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [[ -z $TABLE_ONLY ]]; then
    RES=${RES:-$ROOT/target/bench-results/fast}
    mkdir -p "$RES"
    args=(--fast --runs "$RUNS" --prefix fbfast --out "$RES")
    if [[ -n $BIN ]]; then args+=(--bin "$BIN"); fi
    # The testbed's own assertions are not this benchmark's verdict: report, then tabulate.
    "$ROOT/tests/e2e/testbed.sh" "${args[@]}" || echo "testbed exit $? (see its log)" >&2
    TABLE_ONLY=$RES
fi

TSV=$TABLE_ONLY/results.tsv
[[ -f $TSV ]] || { echo "no $TSV" >&2; exit 1; }

# med SCENARIO EXPR: the median over runs of an awk expression of the row's columns
# ($3 lost path dead, $4 lost path back, $5 MASTER after ready, $7 r1 MASTER transitions,
# $9 traffic back, $10 r1 left MASTER).
med() {
    awk -F'\t' -v s="$1" 'NR > 1 && $2 == s { v = '"$2"'; if (v != "") print v + 0 }' "$TSV" |
        sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "-"; exit } print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
runs_of() { awk -F'\t' -v s="$1" 'NR > 1 && $2 == s { v = '"$2"'; printf "%s%s", sep, v; sep = " " }' "$TSV"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
row() { # row LABEL KA FBD EXPR GOAL
    local ka fb
    ka=$(med "$2" "$4")
    fb=$(med "$3" "$4")
    printf '| %s | %s (%s) | %s (%s) | %s | %s |\n' "$1" "$ka" "$(runs_of "$2" "$4")" "$fb" "$(runs_of "$3" "$4")" "$(ratio "$fb" "$ka")" "$5"
}
# shellcheck disable=SC2016 # awk expressions, expanded by awk
{
echo "| measurement | vrrp_script: median (runs) | failbackd: median (runs) | ratio | goal |"
echo "|---|---|---|---|---|"
row "(a) path ready -> r1 MASTER after a failback (s)" c2 dfast '$5' "<= 0.6"
row "(b) upstream dead 30 s: lost pings" tc2 tdpf '$3' "<= 0.6"
row "(b) upstream dead 30 s: black-hole time (s)" tc2 tdpf '$9' "<= 0.6"
row "(c) 1.2 s blip: lost pings" tblip-ka tblip '$3 + $4' ""
row "(c) 1.2 s blip: switches" tblip-ka tblip '$10 + $7' "0"
row "(d) 8 s dead / 8 s alive x5: lost pings" tflap-ka tflapd '$3 + $4' "<= 0.5"
row "(d) 8 s dead / 8 s alive x5: switches" tflap-ka tflapd '$10 + $7' "<= 2"
}
echo
echo "Probe load of r1's failbackd (one icmp probe; from its /metrics at the end of each run):"
echo
echo "| scenario | attempts normal / fast / down | attempts/s overall | daemon CPU (% of one core) |"
echo "|---|---|---|---|"
for sc in tdpf tblip tflapd; do
    for m in "$TABLE_ONLY"/logs/run*-"$sc"/track.metrics; do
        [[ -f $m ]] || continue
        awk -v sc="$sc" -v run="$(basename "$(dirname "$m")")" '
            /^failback_probe_attempts_by_interval_total[{]/ { match($1, /interval="[a-z]+"/); n[substr($1, RSTART + 10, RLENGTH - 11)] += $2 }
            /^process_cpu_seconds_total / { cpu = $2 }
            /^process_start_time_seconds / { start = $2 }
            /^# scraped_at / { at = $3 }
            END { up = at - start; if (up <= 0) up = 1
                  # process_cpu_seconds_total counts whole seconds: 0 means under one.
                  c = (cpu > 0) ? sprintf("%.2f", 100 * cpu / up) : sprintf("< %.2f", 100 / up)
                  printf "| %s | %d / %d / %d | %.2f | %s |\n", run, n["normal"], n["fast"], n["down"],
                         (n["normal"] + n["fast"] + n["down"]) / up, c }' "$m"
    done
done
