#!/usr/bin/env bash
# Soak: `rstwatch trace --events all` under steady connection churn, keepalive
# setsockopt calls and resets, for a bounded time. Reports RSS and BPF map entry
# counts at the start and the end, and events lost; exits 1 if the heap grew
# beyond a threshold, if anything was lost, or if map entries did not return.
#
#   sudo bench/soak.sh                     # 5 minutes, 200 connections/s
#   sudo bench/soak.sh --seconds 30        # what CI runs (ctest -L soak)
#   bench/soak.sh --rate 500 --build build-asan
#
# The load (tests/helpers/rw_load) is one process on its own loopback address,
# and rstwatch filters on its name in the kernel, so other traffic on the host
# neither adds events nor can cause losses here. Per second: R connections (each
# with SO_KEEPALIVE + TCP_KEEPIDLE, aborted with an RST), R refused connects;
# about 6R events/s written. The default R=200 (~1200 events/s) is far below
# what one consumer sustains without loss (a single rw_peer flood measured
# ~17,000 events/s with 0 lost on the 2-core CI VM; see the teardown tests).
#
# Verdicts:
#   lost        session_summary "lost" and `lost` events: must be 0
#   heap        RssAnon growth from after warm-up to the end: <= --max-growth-kib
#               (RSS as a whole includes the ring buffer's pages as they are
#               touched, which is not growth; both are reported)
#   maps        entries of every hash map that belong to the load (by owner pid,
#               its address, its listener): at most --map-slack while it runs
#               (a handful of live connections), none once it has ended (one
#               rw_proc_stats entry, the per-process summary, stays). Totals on
#               the host are reported, not judged: other tests' sockets come and
#               go, and thousands of connections could hide a leak in them
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=300
rate=200
build=build
max_growth_kib=4096
map_slack=64
while (($#)); do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --max-growth-kib) max_growth_kib=$2; shift 2 ;;
    --map-slack) map_slack=$2; shift 2 ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "soak: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "soak: skipped: needs root (BPF)" >&2
    exit 77
fi
rw=$build/rstwatch
load=$build/tests/rw_load
for b in "$rw" "$load"; do
    [ -x "$b" ] || { echo "soak: $b missing: build first (scripts/build.sh)" >&2; exit 2; }
done
py=/usr/bin/python3

work=$(mktemp -d /tmp/rw-soak-XXXXXX)
rw_pid=
load_pid=
cleanup() {
    [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null || true
    [ -n "$rw_pid" ] && kill -INT "$rw_pid" 2>/dev/null && wait "$rw_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

name="rwsoak$$"
name=${name:0:15}
# A loopback address of its own (127/8 is all local): no clash with other tests.
addr="127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))"

# Entries of every hash map rstwatch (pid $1) holds, as JSON {name: [total, ours]}:
# "ours" are those of the load process (pid $2, address $3); the total includes
# every other socket on the host and is reported, not judged.
map_counts() {
    $py - "$1" "$2" "$3" <<'PY'
import glob, json, subprocess, sys
rw_pid, load_pid, addr = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split(".")]
def bpftool(*args):
    return json.loads(subprocess.run(["bpftool", *args, "-j"], capture_output=True, text=True,
                                     check=True).stdout)
ids = set()
for f in glob.glob(f"/proc/{rw_pid}/fdinfo/*"):
    for line in open(f):
        if line.startswith("map_id:"):
            ids.add(int(line.split()[1]))
def ours(name, key, value):
    if name == "rw_socks":
        return value["owner"]["pid"] == load_pid
    if name == "rw_tuples":  # v4 as v4-mapped v6
        return list(key["local_addr"][12:]) == addr or list(key["remote_addr"][12:]) == addr
    if name == "rw_listeners":
        return value["pid"] == load_pid
    if name in ("rw_pending_sockopt", "rw_pending_sock"):
        return key >> 32 == load_pid
    if name == "rw_proc_stats":
        return key == load_pid
    return False
out = {}
for i in sorted(ids):
    m = bpftool("map", "show", "id", str(i))
    if "hash" not in m["type"]:
        continue
    entries = bpftool("map", "dump", "id", str(i))
    mine = sum(1 for e in entries if "formatted" in e and
               ours(m["name"], e["formatted"]["key"], e["formatted"]["value"]))
    out[m["name"]] = [len(entries), mine]
print(json.dumps(out))
PY
}
rss_kib() { awk -v k="$2:" '$1 == k {print $2}' /proc/"$1"/status; }

echo "soak: ${seconds}s at ${rate} connections/s on $addr (load named $name)" >&2
"$rw" trace --events all --comm "$name" >"$work/events.ndjson" 2>"$work/rstwatch.err" &
rw_pid=$!
for _ in $(seq 100); do
    [ -s "$work/events.ndjson" ] && break
    sleep 0.1
done
grep -q '"session_start"' "$work/events.ndjson" || {
    echo "soak: rstwatch did not start:" >&2
    cat "$work/rstwatch.err" >&2
    exit 1
}
echo '{}' >"$work/maps.start"

map_counts "$rw_pid" 0 0.0.0.0 >"$work/maps.start"
"$load" --seconds "$seconds" --rate "$rate" --addr "$addr" --name "$name" >"$work/load.out" &
load_pid=$!
pid_of_load=$load_pid
# Warm-up: the first tenth (at least 5 s) fills caches and touches the ring
# buffer's pages; the heap is measured from there.
warm=$((seconds / 10 > 5 ? seconds / 10 : 5))
sleep "$warm"
rss_start=$(rss_kib "$rw_pid" VmRSS)
anon_start=$(rss_kib "$rw_pid" RssAnon)
map_counts "$rw_pid" "$pid_of_load" "$addr" >"$work/maps.during"
wait "$load_pid"
load_pid=
sleep 2 # let the last closes and the ring buffer drain
rss_end=$(rss_kib "$rw_pid" VmRSS)
anon_end=$(rss_kib "$rw_pid" RssAnon)
map_counts "$rw_pid" "$pid_of_load" "$addr" >"$work/maps.end"
kill -INT "$rw_pid"
wait "$rw_pid" || { echo "soak: rstwatch exited with $?" >&2; cat "$work/rstwatch.err" >&2; exit 1; }
rw_pid=

$py - "$work" "$max_growth_kib" "$map_slack" "$rss_start" "$rss_end" "$anon_start" "$anon_end" <<'EOF'
import json, sys
work, max_growth, slack = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rss_start, rss_end, anon_start, anon_end = map(int, sys.argv[4:8])
load = open(f"{work}/load.out").read().split()
done = dict(zip(load[load.index("done") + 1::2], map(int, load[load.index("done") + 2::2])))
counts, summary, lost_events = {}, None, 0
for line in open(f"{work}/events.ndjson"):
    e = json.loads(line)
    counts[e["event"]] = counts.get(e["event"], 0) + 1
    if e["event"] == "session_summary":
        summary = e
    if e["event"] == "lost":
        lost_events += e.get("count", 1)
start, during, end = (json.load(open(f"{work}/maps.{w}")) for w in ("start", "during", "end"))
fail = []
print(f"load:    {done['connections']} connections, {done['refused']} refused connects, "
      f"{done['sockopts']} keepalive setsockopt calls")
print("events:  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
print(f"lost:    summary {summary['lost'] if summary else '?'}, lost events {lost_events}")
print(f"rss:     VmRSS {rss_start} -> {rss_end} KiB, RssAnon {anon_start} -> {anon_end} KiB "
      f"(growth {anon_end - anon_start} KiB, limit {max_growth})")
print("maps:    entries of the load (during -> after it ended); all entries on the host "
      "(start -> end)")
for name in sorted(end):
    d, e = during.get(name, [0, 0])[1], end[name][1]
    # Per-process summary counters stay for the session; everything per socket goes.
    allowed = 1 if name == "rw_proc_stats" else 0
    ok = e <= allowed and d <= slack
    print(f"map:     {name:20} ours {d:5} -> {e:3}   host {start.get(name, [0])[0]:6} -> "
          f"{end[name][0]:6}{'' if ok else '   NOT RETURNED'}")
    if not ok:
        fail.append(f"map {name}: {d} entries of the load during the run, {e} after it ended")
if summary is None:
    fail.append("no session_summary")
elif summary["lost"] or lost_events:
    fail.append(f"{summary['lost']} events lost")
if summary and (summary["write_dropped"] or summary["malformed"]):
    fail.append("write_dropped/malformed not 0")
if anon_end - anon_start > max_growth:
    fail.append(f"heap grew {anon_end - anon_start} KiB")
resets = counts.get("tcp_reset", 0)
if resets < done["connections"]:
    fail.append(f"only {resets} tcp_reset events for {done['connections']} aborted connections")
if fail:
    print("soak: FAIL: " + "; ".join(fail))
    sys.exit(1)
print("soak: ok")
EOF
