#!/usr/bin/env bash
# Idle cost of `rstwatch trace` as a host agent, with and without the periodic
# audit, on a host holding N established loopback connections.
#
#   sudo bench/agent_audit.sh [--connections 10000] [--intervals off,60s,10s]
#                             [--duration 60] [--build build]
#
# For each setting it starts the agent (events reset,timeout; NDJSON to a
# file; metrics on loopback), waits until the first audit is written, then
# samples the agent's own CPU time (utime+stime from /proc/PID/stat) and memory
# (VmRSS, VmHWM from /proc/PID/status) over --duration seconds, and reads the
# last audit's duration from its /metrics. Kernel-side filters restrict events
# to the holder's port, so resets made by other activity on the host do not
# count as "idle" work; the audit still walks every process's descriptors
# (all 2N sockets are on that port). Bounded: N <= 28000, --duration <= 600.
# Descriptor limit: the holder keeps N descriptors in each of two processes,
# so N = 10000 fits a 20000 limit (prlimit raises the soft limit to the hard).
set -euo pipefail
cd "$(dirname "$0")/.."

conns=10000
intervals=off,60s,10s
duration=60
build=build
while [ $# -gt 0 ]; do
    case "$1" in
    --connections) conns=$2; shift 2 ;;
    --intervals) intervals=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: $0 [--connections N] [--intervals off,60s,10s] [--duration S] [--build DIR]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (the agent loads BPF programs)" >&2; exit 3; }
[ "$conns" -ge 1 ] && [ "$conns" -le 28000 ] || { echo "--connections 1..28000" >&2; exit 2; }
[ "$duration" -ge 5 ] && [ "$duration" -le 600 ] || { echo "--duration 5..600" >&2; exit 2; }
bin=$build/rstwatch
hold=$build/tests/rw_hold
[ -x "$bin" ] && [ -x "$hold" ] || { echo "build first: BUILD_DIR=$build scripts/build.sh" >&2; exit 2; }

work=$(mktemp -d /tmp/rw-bench-agent-XXXXXX)
holder_pid=
agent_pid=
cleanup() {
    [ -n "$agent_pid" ] && kill -INT "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
    [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null && wait "$holder_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

hard=$(ulimit -Hn)
need=$((conns + 64))
[ "$hard" -ge "$need" ] || { echo "descriptor hard limit $hard < $need per process" >&2; exit 3; }
mkfifo "$work/hold.in"
prlimit --nofile="$hard:$hard" "$hold" --count "$conns" --hold-ms $(((duration + 120) * 10 * 1000)) \
    <"$work/hold.in" >"$work/hold.out" 2>&1 &
holder_pid=$!
exec 9>"$work/hold.in" # keeps the holder's stdin open until we exit
for _ in $(seq 1 600); do
    grep -q "^established" "$work/hold.out" && break
    grep -q "^fatal" "$work/hold.out" && { cat "$work/hold.out" >&2; exit 1; }
    sleep 0.1
done
grep -q "^established $conns" "$work/hold.out" || { echo "holder did not connect" >&2; exit 1; }
port=$(sed -n 's/^listening //p' "$work/hold.out")
established=$(ss -Htn state established "( sport = :$port or dport = :$port )" | wc -l)

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
metric() {
    /usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
        "http://127.0.0.1:$mport/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

printf '# rstwatch agent idle cost: %s established loopback connections (%s sockets on port %s), %ss per setting\n' \
    "$conns" "$established" "$port" "$duration"
printf '# kernel %s, %s CPUs, rstwatch %s\n' "$(uname -r)" "$(nproc)" "$("$bin" --version | awk '{print $2}')"
printf '%-10s %8s %10s %10s %8s %12s %14s\n' interval cpu_pct cpu_s rss_mib hwm_mib audits audit_ms
for iv in ${intervals//,/ }; do
    mport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    args=(trace --events reset,timeout --port "$port" --output "$work/events.ndjson" --metrics-listen "$mport")
    [ "$iv" = off ] || args+=(--audit-interval "$iv")
    rm -f "$work/events.ndjson"
    "$bin" "${args[@]}" 2>"$work/agent.err" &
    agent_pid=$!
    # Ready: session_start written, and the start-up audit done when enabled.
    want=session_start
    [ "$iv" = off ] || want=audit_socket
    for _ in $(seq 1 300); do
        grep -q "\"event\":\"$want\"" "$work/events.ndjson" 2>/dev/null && break
        sleep 0.1
    done
    sleep 2
    t0=$(cpu_ticks "$agent_pid")
    sleep "$duration"
    t1=$(cpu_ticks "$agent_pid")
    rss=$(status_kb "$agent_pid" VmRSS)
    hwm=$(status_kb "$agent_pid" VmHWM)
    runs=$(metric rstwatch_audit_runs_total)
    audit_s=$(metric rstwatch_audit_duration_seconds)
    kill -INT "$agent_pid"
    wait "$agent_pid" || true
    agent_pid=
    sockets=$(grep -c '"event":"audit_socket"' "$work/events.ndjson" || true)
    awk -v t0="$t0" -v t1="$t1" -v clk="$clk" -v d="$duration" -v rss="$rss" -v hwm="$hwm" \
        -v iv="$iv" -v runs="${runs:-0}" -v a="${audit_s:-0}" 'BEGIN {
            cpu = (t1 - t0) / clk
            printf "%-10s %8.2f %10.2f %10.1f %8.1f %12d %14.1f\n", iv, 100 * cpu / d, cpu, rss / 1024, hwm / 1024, runs, a * 1000
        }'
    if [ "$iv" != off ] && [ "${runs:-0}" -gt 0 ]; then
        printf '#   %s: %s audit_socket records in %s audits (%s per audit); %s bytes of NDJSON in total\n' \
            "$iv" "$sockets" "$runs" "$((sockets / runs))" "$(stat -c %s "$work/events.ndjson")"
    fi
done
