#!/bin/sh
# Fake FreeBSD ifconfig(8) for failbackd's tests: prints $STATE/ifconfig.out (the test writes
# it in the real format), or a lone loopback block when there is none. The real format is
# sbin/ifconfig/ifcarp.c carp_status(): "\tcarp: %s vhid %d advbase %d advskew %d" under each
# interface's "name: flags=..." header, states from CARP_STATES (INIT, BACKUP, MASTER).
# $STATE/ifconfig.fail makes it fail like a broken ifconfig would. State lives in @STATE_DIR@.
set -eu
STATE="@STATE_DIR@"
echo "ifconfig $*" >>"$STATE/calls"
if [ "$#" -ne 0 ]; then
    echo "ifconfig (fake): only the no-argument listing is supported" >&2
    exit 1
fi
if [ -f "$STATE/ifconfig.fail" ]; then
    echo "ifconfig: socket: Protocol not supported" >&2
    exit 1
fi
if [ -f "$STATE/ifconfig.out" ]; then
    cat "$STATE/ifconfig.out"
else
    printf 'lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384\n\tinet 127.0.0.1 netmask 0xff000000\n'
fi
