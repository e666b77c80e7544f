#!/bin/sh
# Fake OPNsense configctl for failbackd's tests; state in @STATE_DIR@ (substituted by the test),
# demotion through the fake sysctl next to it. Mirrors opnsense/core:
# - `interface show carp`: src/opnsense/scripts/interfaces/carp_global_status.php (JSON; the
#   demotion is a string, from get_single_sysctl).
# - `interface carp_set_status maintenance`: src/opnsense/scripts/interfaces/carp_set_status.php,
#   a TOGGLE: enter adds 240; leave sets the demotion back to the tunable baseline; both write
#   config.xml (counted in config-writes).
# - `interface update carp service_status`: src/sbin/carp_service_status (read at opnsense/core
#   6469191d2b8ed6374a41e0c61c2e9b8a458636e6): under flock(/var/run/carp_service_status.lock)
#   it runs every executable in rc.carp_service_status.d; any failing and the 2^20 bit
#   (SRV_FAIL_FACTOR) clear -> add 2^20; all passing and the bit set -> subtract it; otherwise
#   nothing. The bit is SHARED: it says "some check failed", not which one, so failbackd's own
#   check (`failbackd ready`) is only one of its possible causes. Not mirrored: the lock (tests
#   never run two evaluations at once).
set -eu
STATE="@STATE_DIR@"
SYSCTL="$STATE/bin/sysctl"
BIT=1048576
demotion() { "$SYSCTL" -n net.inet.carp.demotion; }
echo "configctl $*" >>"$STATE/calls"
case "$*" in
"interface show carp")
    if [ -f "$STATE/maintenancemode" ]; then m=true; else m=false; fi
    printf '{"demotion":"%s","allow":"1","maintenancemode":%s,"status_msg":""}\n' "$(demotion)" "$m"
    ;;
"interface carp_set_status maintenance")
    if [ -f "$STATE/maintenancemode" ]; then
        rm -f "$STATE/maintenancemode"
        base=0
        if [ -f "$STATE/tunable" ]; then base=$(cat "$STATE/tunable"); fi
        cur=$(demotion)
        "$SYSCTL" "net.inet.carp.demotion=$((base - cur))" >/dev/null
        echo "Leave CARP maintenance mode" >>"$STATE/config-writes"
        printf '{"status":"ok","action":"leave_maintenance"}\n'
    else
        : >"$STATE/maintenancemode"
        "$SYSCTL" net.inet.carp.demotion=240 >/dev/null
        echo "Enter CARP maintenance mode" >>"$STATE/config-writes"
        printf '{"status":"ok","action":"enter_maintenance"}\n'
    fi
    ;;
"interface update carp service_status")
    failed=""
    for check in "$STATE"/rc.carp_service_status.d/*; do
        if [ -f "$check" ] && [ -x "$check" ]; then
            if ! "$check" >/dev/null 2>&1; then failed="${failed:+$failed,}${check##*/}"; fi
        fi
    done
    cur=$(demotion)
    if [ -n "$failed" ] && [ $((cur & BIT)) -eq 0 ]; then
        "$SYSCTL" "net.inet.carp.demotion=$BIT" >/dev/null
        echo "carp demoted by $BIT due to service disruption (services: $failed)" >>"$STATE/log"
    elif [ -z "$failed" ] && [ $((cur & BIT)) -ne 0 ]; then
        "$SYSCTL" "net.inet.carp.demotion=-$BIT" >/dev/null
        echo "carp promoted by $BIT due to service recovery" >>"$STATE/log"
    fi
    echo "OK"
    ;;
*)
    echo "Action not found"
    exit 1
    ;;
esac
