#!/bin/bash
# The forum post's "CARP Failback Delay" (reference/carp-failback-delay-forum-post.txt),
# reproduced against a keepalived track_file instead of `configctl interface carp_set_status
# maintenance`, with the same logic and the same faults, times scaled down:
#   sleep 120 -> DELAY, one-shot gateway ping (-c 3), one-shot "ipsec status | grep INSTALLED"
#   (no tunnels here: skipped), stabilization sleep 30 -> STABLE, and the final sleep 10 kept
#   as it is: it must outlast the takeover, or the lock is gone when MASTER fires the hook again
#   and the script demotes the node again, forever (seen with 2 s and keepalived's ~3 s takeover).
# Maintenance is a toggle (the script calls the same command to enter and to leave it).
#
#   forum-carp-delay.sh hook <vrid@iface> <state>   the rc.syshook.d/carp/10-carp_delay hook
#   forum-carp-delay.sh service                     the rc.d/carp_delay service, foreground
# Settings come from FORUM_ENV (a file of KEY=VALUE lines written by the testbed):
#   TRACK HELD LOG LOCK PIDFILE GATEWAY DELAY STABLE WATCH_IFACE SELF
set -uo pipefail
# shellcheck source=/dev/null
. "${FORUM_ENV:?FORUM_ENV names the settings file}"

maintenance() { # the toggle: enter if out, leave if in
    "$(dirname "$SELF")/track-file.sh" toggle "$TRACK" "$HELD" "$LOG"
}

case ${1:-} in
hook)
    iface=${2#*@}
    if [[ $iface == "$WATCH_IFACE" && ${3:-} == MASTER ]]; then
        if [[ ! -f $LOCK ]]; then
            touch "$LOCK" # racy, like the original `[ ! -f ] && touch`
            # `service carp_delay start`: runs detached; the testbed kills it by PID.
            setsid "$SELF" service </dev/null >>"$LOG.service" 2>&1 &
            echo $! >"$PIDFILE"
        fi
    fi
    ;;
service)
    maintenance
    sleep "$DELAY"
    if ! ping -n -c 3 -W 1 -i 0.2 "$GATEWAY" >/dev/null 2>&1; then
        echo "gateway check failed, keeping maintenance mode"
        rm -f "$LOCK"
        exit 1
    fi
    sleep "$STABLE"
    maintenance
    sleep 10
    rm -f "$LOCK"
    ;;
*)
    echo "usage: $0 hook <vrid@iface> <state> | service" >&2
    exit 2
    ;;
esac
