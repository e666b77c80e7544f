#!/bin/sh
# Fake OPNsense configctl for the opnsense_gateway probe's tests. `interface gateways status`
# prints @STATUS_FILE@ (substituted by the test), which holds JSON shaped exactly like the
# output of opnsense/core src/opnsense/scripts/routes/gateway_status.php: an object keyed by
# gateway name with name, address, status, status_translated, loss, delay, stddev, monitor
# (`~` for loss/delay/stddev/monitor when dpinger has no data), or `[]` with no gateways.
# Each call is appended to @STATUS_FILE@.calls; @STATUS_FILE@.fail makes the call fail the way
# configctl does when configd is down.
set -eu
echo "$*" >>"@STATUS_FILE@.calls"
if [ -f "@STATUS_FILE@.fail" ]; then
    echo "Error (1): configd socket /var/run/configd.socket not found" >&2
    exit 1
fi
case "$*" in
"interface gateways status") cat "@STATUS_FILE@" ;;
*) echo "Action not found" ; exit 0 ;;
esac
