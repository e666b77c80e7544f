#!/bin/bash
# Writes or reads a keepalived track_file for failbackd's `command` backend (no shell in the
# config: failbackd runs this as argv). The write is atomic (temporary file in the same
# directory, then rename), so keepalived never reads a half-written value.
#
#   track-file.sh set   FILE VALUE [LOG]   write VALUE; append "<epoch> VALUE" to LOG
#   track-file.sh state FILE HELD          print "demoted" if FILE holds HELD, else "promoted"
#   track-file.sh toggle FILE HELD [LOG]   0 -> HELD, anything else -> 0 (the forum's toggle)
set -euo pipefail

write() {
    local file=$1 value=$2 log=${3:-}
    local tmp
    tmp="$(dirname "$file")/.$(basename "$file").$$.tmp"
    printf '%s\n' "$value" >"$tmp"
    mv -f "$tmp" "$file"
    if [[ -n $log ]]; then
        printf '%s %s\n' "$EPOCHREALTIME" "$value" >>"$log"
    fi
}

read_value() {
    local v=0
    if [[ -f $1 ]]; then
        read -r v <"$1" || v=0
    fi
    printf '%s' "${v:-0}"
}

case ${1:-} in
set)
    [[ $# -ge 3 ]] || { echo "usage: $0 set FILE VALUE [LOG]" >&2; exit 2; }
    write "$2" "$3" "${4:-}"
    ;;
state)
    [[ $# -eq 3 ]] || { echo "usage: $0 state FILE HELD" >&2; exit 2; }
    if [[ $(read_value "$2") == "$3" ]]; then echo demoted; else echo promoted; fi
    ;;
toggle)
    [[ $# -ge 3 ]] || { echo "usage: $0 toggle FILE HELD [LOG]" >&2; exit 2; }
    if [[ $(read_value "$2") == 0 ]]; then write "$2" "$3" "${4:-}"; else write "$2" 0 "${4:-}"; fi
    ;;
*)
    echo "usage: $0 set|state|toggle FILE ..." >&2
    exit 2
    ;;
esac
