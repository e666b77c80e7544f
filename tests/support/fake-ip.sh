#!/bin/sh
# Fake iproute2 `ip` for failbackd's tests: `ip -j addr show` prints $STATE/ip-addr.json, JSON
# in the shape iproute2 prints (ip/ipaddress.c: an array of links with "ifname" and
# "addr_info": [{"family", "local", "prefixlen", ...}]; captured from Debian 12's ip). State
# lives in @STATE_DIR@.
set -eu
STATE="@STATE_DIR@"
echo "ip $*" >>"$STATE/calls"
if [ "$*" != "-j addr show" ]; then
    echo "ip (fake): only -j addr show is supported" >&2
    exit 1
fi
if [ -f "$STATE/ip-addr.json" ]; then cat "$STATE/ip-addr.json"; else echo '[]'; fi
