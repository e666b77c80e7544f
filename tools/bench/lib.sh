# Shared helpers for tools/bench/*.sh (sourced). A bench daemon runs in its own network
# namespace (loopback only, prefix fbd-e2e- like the testbed, which refuses to start beside it).
# shellcheck shell=bash

BENCH_NS=fbd-e2e-bench
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

blog() { printf '%s [bench] %s\n' "$(date +%T)" "$*" >&2; }
bdie() { blog "FATAL: $*"; exit 1; }

# failbackd_bin [PATH]: the given binary, or build the release one and find it.
failbackd_bin() {
    if [[ -n ${1:-} ]]; then printf '%s' "$1"; return; fi
    (cd "$BENCH_ROOT" && cargo build --release --quiet) || bdie "cargo build --release failed"
    local target
    target=$(cd "$BENCH_ROOT" && cargo metadata --format-version 1 --no-deps | awk -F'"target_directory":"' 'NF > 1 { split($2, a, "\""); print a[1] }')
    printf '%s' "$target/release/failbackd"
}

# percentile P < numbers: nearest-rank percentile of one number per line.
percentile() {
    sort -g | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'
}

bench_ns_up() {
    [[ $(id -u) == 0 ]] || bdie "needs root (network namespace, ICMP probes)"
    if ip netns list | awk '{print $1}' | grep -qx "$BENCH_NS"; then
        bdie "namespace $BENCH_NS exists (another bench running?); refusing to start"
    fi
    ip netns add "$BENCH_NS"
    BENCH_NS_MADE=1
    ip -n "$BENCH_NS" link set lo up
}

bench_ns_down() {
    local pid
    [[ ${BENCH_NS_MADE:-0} == 1 ]] || return 0
    for pid in $(ip netns pids "$BENCH_NS" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in $(ip netns pids "$BENCH_NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$BENCH_NS" 2>/dev/null || true
    BENCH_NS_MADE=0
}

# bench_begin NAME: makes the namespace and the work dir WORK (/tmp/fbd-bench-NAME.XXXXXX);
# on exit the daemon DPID (bench_start_daemon) is stopped, the namespace and WORK removed.
bench_begin() {
    WORK=$(mktemp -d "/tmp/fbd-bench-$1.XXXXXX")
    DPID=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    bench_ns_up
}
bench_cleanup() { stop_pid "$DPID"; bench_ns_down; rm -rf "$WORK"; }

# bench_start_daemon BIN: checks $WORK/fbd.toml, runs `BIN run --start boot` with it inside the
# namespace (log $WORK/fbd.log) and waits at most 5 s for its control socket $WORK/fbd.sock.
# Sets DPID.
bench_start_daemon() {
    "$1" check-config "$WORK/fbd.toml" >/dev/null || bdie "config rejected"
    ip netns exec "$BENCH_NS" "$1" run --start boot --config "$WORK/fbd.toml" >"$WORK/fbd.log" 2>&1 &
    DPID=$!
    wait_until 5 test -S "$WORK/fbd.sock" || bdie "daemon did not start: $(cat "$WORK/fbd.log")"
}

# stop_pid PID: SIGTERM, wait at most 5 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# wait_until TIMEOUT_S CMD...: polls every 0.05 s.
wait_until() {
    local limit=$(($1 * 20)) i
    shift
    for ((i = 0; i < limit; i++)); do "$@" && return 0; sleep 0.05; done
    return 1
}

# probe_toml COUNT INTERVAL: COUNT probes of three kinds against the daemon itself and loopback
# (icmp 127.0.0.1, tcp 127.0.0.1:9818, http /healthz), 2 in 5 icmp.
probe_toml() {
    local n=$1 interval=$2 i
    for ((i = 0; i < n; i++)); do
        case $((i % 5)) in
        0 | 1) printf '[[probe]]\nname = "icmp%d"\ntype = "icmp"\ntarget = "127.0.0.1"\n' "$i" ;;
        2 | 3) printf '[[probe]]\nname = "tcp%d"\ntype = "tcp"\ntarget = "127.0.0.1:9818"\n' "$i" ;;
        4) printf '[[probe]]\nname = "http%d"\ntype = "http"\ntarget = "http://127.0.0.1:9818/healthz"\n' "$i" ;;
        esac
        printf 'interval = "%s"\n\n' "$interval"
    done
}
