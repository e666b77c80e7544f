#!/bin/bash
# keepalived notify script for the testbed (per vrrp_instance):
#   notify.sh ROUTER EVENTS FAILBACKD FBD_CONFIG FORUM_ENV  INSTANCE <name> <state> [<prio>]
# keepalived appends the last four arguments. Logs "<epoch> ROUTER <name> <state>" to EVENTS,
# then, like an OPNsense rc.syshook.d/carp hook, reports the transition:
#   - to failbackd (`failbackd hook <vrid>@<iface> MASTER|BACKUP|INIT`) unless FAILBACKD is "-";
#   - to the forum's hook (reproduced in forum-carp-delay.sh, settings in FORUM_ENV) unless "-".
set -uo pipefail
[[ $# -ge 8 ]] || exit 2
router=$1 events=$2 failbackd=$3 fbd_config=$4 forum=$5 name=$7 state=$8
printf '%s %s %s %s\n' "$EPOCHREALTIME" "$router" "$name" "$state" >>"$events"

case $name in
VI_LAN) target=51@lan ;;
VI_WAN) target=52@wan ;;
*) exit 0 ;;
esac
case $state in
MASTER | BACKUP) carp=$state ;;
*) carp=INIT ;; # FAULT, STOP
esac

if [[ $failbackd != - ]]; then
    "$failbackd" hook "$target" "$carp" --config "$fbd_config" >>"$events.hook" 2>&1
fi
if [[ $forum != - ]]; then
    FORUM_ENV=$forum "$(dirname "$0")/forum-carp-delay.sh" hook "$target" "$carp"
fi
exit 0
