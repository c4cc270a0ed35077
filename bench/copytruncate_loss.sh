#!/usr/bin/env bash
# How many events logrotate's copytruncate mode loses, by design: lines written
# between logrotate's copy and its truncate are in neither file. Runs rstwatch
# with --output under a steady reset storm (refused loopback connects), lets
# the file grow to --size, rotates it with real logrotate (copytruncate), and
# repeats; then compares what rstwatch reports as emitted with what is on disk.
#
#   sudo bench/copytruncate_loss.sh [--size 20M] [--rotations 5] [--build build]
#
# Bounded: at most 120 s of load. Results go in docs/log-pipelines.md.
set -euo pipefail
cd "$(dirname "$0")/.."
size=20M
rotations=5
build=build
while [ $# -gt 0 ]; do
    case "$1" in
    --size) size=$2; shift 2 ;;
    --rotations) rotations=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: $0 [--size 20M] [--rotations N] [--build DIR]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 3; }
bytes=$(numfmt --from=iec "$size")
work=$(mktemp -d /tmp/rw-bench-ct-XXXXXX)
agent=
load=
cleanup() {
    [ -n "$load" ] && kill "$load" 2>/dev/null || true
    [ -n "$agent" ] && kill -INT "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$work/events.ndjson
"$build/rstwatch" trace --events reset --port "$port" --output "$out" 2>"$work/agent.err" &
agent=$!
for _ in $(seq 1 100); do [ -s "$out" ] && break; sleep 0.1; done
cat >"$work/lr.conf" <<CONF
$out {
    copytruncate
    rotate 1000
    missingok
    nocompress
}
CONF
# Steady storm until stopped (each refused connect: 2 events).
( end=$((SECONDS + 120)); while [ $SECONDS -lt $end ]; do "$build/tests/rw_peer" refused "$port" --count 500 >/dev/null; done ) &
load=$!
start=$SECONDS
done_rot=0
printf '%-8s %12s %12s\n' rotation file_bytes logrotate_ms
for r in $(seq 1 "$rotations"); do
    while [ "$(stat -c %s "$out")" -lt "$bytes" ]; do
        [ $((SECONDS - start)) -lt 110 ] || break 2
        sleep 0.05
    done
    sz=$(stat -c %s "$out")
    t0=$(date +%s%N)
    logrotate -f -s "$work/lr.state" "$work/lr.conf"
    t1=$(date +%s%N)
    done_rot=$r
    awk -v r="$r" -v sz="$sz" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%-8s %12s %12.1f\n", r, sz, (t1 - t0) / 1e6 }'
done
kill "$load" 2>/dev/null; wait "$load" 2>/dev/null || true
load=
elapsed=$((SECONDS - start))
sleep 1
kill -INT "$agent"; wait "$agent" || true
agent=
emitted=$(tail -1 "$out" | sed -n 's/.*"emitted":\([0-9]*\).*/\1/p')
on_disk=$(cat "$out"* | grep -c '"event":"tcp_reset"' || true)
partial=$(cat "$out"* | /usr/bin/python3 -c '
import json, sys
bad = 0
for line in sys.stdin:
    try: json.loads(line)
    except ValueError: bad += 1
print(bad)')
lost=$((emitted - on_disk))
awk -v e="$emitted" -v d="$on_disk" -v s="$elapsed" -v r="$done_rot" -v p="$partial" 'BEGIN {
    printf "emitted %d events in %ds (%d/s); on disk %d; lost %d (%.3f%%), %.1f per rotation; unparsable lines %d\n",
        e, s, e / (s > 0 ? s : 1), d, e - d, 100 * (e - d) / e, (e - d) / (r > 0 ? r : 1), p
}'
