#!/bin/sh
# Fake FreeBSD sysctl(8), only for net.inet.carp.demotion, for failbackd's tests.
# Behaves like carp(4): `sysctl -n net.inet.carp.demotion` prints the value, and
# `sysctl net.inet.carp.demotion=N` ADDS N to it (sys/netinet/ip_carp.c, the sysctl handler
# calls carp_demote_adj(), i.e. atomic_add_int). State lives in @STATE_DIR@ (the test
# substitutes it: the daemon runs programs with a cleared environment).
# The kernel's add is atomic (atomic_add_int), so this fake's is too (a mkdir lock): a race
# between two writers must come from the caller's read-then-add, never from the fake. A test
# widens that window with $STATE/read-delay (seconds slept after printing the value, as if the
# caller were slow to act on what it read).
set -eu
STATE="@STATE_DIR@"
OID=net.inet.carp.demotion
f="$STATE/demotion"
[ -f "$f" ] || echo 0 >"$f"
echo "sysctl $*" >>"$STATE/calls"
if [ "$#" -eq 2 ] && [ "$1" = "-n" ]; then
    if [ "$2" != "$OID" ]; then
        echo "sysctl: unknown oid '$2'" >&2
        exit 1
    fi
    cat "$f"
    if [ -f "$STATE/read-delay" ]; then sleep "$(cat "$STATE/read-delay")"; fi
    exit 0
fi
if [ "$#" -eq 1 ]; then
    case "$1" in
    "$OID="*)
        adj=${1#"$OID"=}
        case "$adj" in
        "" | *[!0-9-]*)
            echo "sysctl: invalid integer '$adj'" >&2
            exit 1
            ;;
        esac
        tries=0
        until mkdir "$STATE/sysctl.lock.d" 2>/dev/null; do
            tries=$((tries + 1))
            if [ "$tries" -gt 1000 ]; then
                echo "sysctl (fake): lock stuck" >&2
                exit 1
            fi
            sleep 0.01
        done
        old=$(cat "$f")
        new=$((old + adj))
        echo "$new" >"$f"
        rmdir "$STATE/sysctl.lock.d"
        echo "$OID: $old -> $new"
        exit 0
        ;;
    esac
fi
echo "usage: sysctl -n $OID | sysctl $OID=N" >&2
exit 1
