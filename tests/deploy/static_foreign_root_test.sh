#!/usr/bin/env bash
# ctest package.static_runs_in_a_busybox_root (label package): the static
# binary of the release tarball, alone in a root that holds nothing of
# bookworm (busybox-static, as the kernel matrix's initramfs), traces a reset:
# a loopback connect to a closed port gives a tcp_reset owned by the pid that
# connected; its /metrics endpoint and `report` work there too. Needs root
# (chroot, mounts, BPF); exits 77 (skip) otherwise.
#
#   tests/deploy/static_foreign_root_test.sh DIST_DIR   (the binary comes from its tarball)
set -euo pipefail
dist=$(realpath "$1")

skip() {
    echo "SKIP: $*"
    exit 77
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || skip "chroot and BPF need root"
# In a private mount namespace: nothing mounted for the chroot (an rbind of /sys
# with its bpffs and tracefs) can propagate back to the host, whatever the
# cleanup does; the namespace and its mounts go when this script exits.
if [ -z "${RW_PRIVATE_MNTNS:-}" ]; then
    exec env RW_PRIVATE_MNTNS=1 unshare --mount --propagation private "$0" "$@"
fi
[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF"
busybox=/bin/busybox
[ -x "$busybox" ] && readelf -l "$busybox" | grep -q "program interpreter" && busybox=""
[ -n "$busybox" ] && [ -x "$busybox" ] || fail "busybox-static not installed (scripts/install-deps.sh test)"

tarball=$(ls "$dist"/rstwatch-*-x86_64-linux-static.tar.gz 2>/dev/null | head -1)
[ -n "$tarball" ] || fail "no static tarball in $dist (ctest package.build runs scripts/package.sh)"
root=$(mktemp -d /tmp/rw-root.$$.XXXXXX)
mounted=()
cleanup() {
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -l "${mounted[i]}" 2>/dev/null || true
    done
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT

# The root: busybox, the binary, the kernel interfaces BPF tracing reads.
mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc}
cp "$busybox" "$root/bin/busybox"
for a in sh nc sleep cat kill wget grep; do ln -s busybox "$root/bin/$a"; done
tar -xzf "$tarball" -C "$root/tmp" --wildcards --strip-components=1 '*/rstwatch'
mv "$root/tmp/rstwatch" "$root/bin/rstwatch"
readelf -l "$root/bin/rstwatch" | grep -q "program interpreter" && fail "the tarball's binary is not static"
mknod -m 666 "$root/dev/null" c 1 3
echo "rw-foreign-root" >"$root/etc/hostname"
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --rbind /sys "$root/sys" && mounted+=("$root/sys")
mount --make-rslave "$root/sys"
# Nothing of the host's userland is visible: no libc, no loader, no /usr.
[ ! -e "$root/lib" ] && [ ! -e "$root/usr" ] || fail "the root is not minimal"

# A closed loopback port: bound by nobody in the test's own window (chosen
# from the pid, then checked in /proc/net/tcp).
port=$((20000 + $$ % 20000))
mport=$((port + 2))
hexport=$(printf ':%04X ' "$port")
grep -q "$hexport" /proc/net/tcp && port=$((port + 1))

chroot "$root" /bin/sh -c "
    /bin/rstwatch trace --duration 6s --events reset --metrics-listen 127.0.0.1:$mport \
        >/tmp/trace.ndjson 2>/tmp/trace.err &
    tpid=\$!
    # session_start is written once the programs are attached.
    i=0; while [ \$i -lt 50 ] && ! /bin/busybox grep -q session_start /tmp/trace.ndjson; do
        /bin/sleep 0.1; i=\$((i+1)); done
    /bin/nc 127.0.0.1 $port </dev/null >/dev/null 2>&1 &
    echo \$! >/tmp/nc.pid
    wait \$!
    # /metrics (cpp-httplib, compiled in from its Debian source) answers.
    /bin/wget -q -O /tmp/metrics.txt http://127.0.0.1:$mport/metrics
    wait \$tpid
    # and so does \`report\` (simdjson, likewise).
    /bin/rstwatch report --format json /tmp/trace.ndjson >/tmp/report.ndjson
" || fail "trace in the root failed: $(cat "$root/tmp/trace.err" 2>/dev/null)"
nc_pid=$(cat "$root/tmp/nc.pid")
python3 - "$root/tmp/trace.ndjson" "$nc_pid" "$port" <<'EOF' || fail "no tcp_reset for nc: $(cat "$root/tmp/trace.err")"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pid, port = int(sys.argv[2]), int(sys.argv[3])
assert events and events[0]["event"] == "session_start", events[:1]
resets = [e for e in events if e["event"] == "tcp_reset" and e["remote"]["port"] == port
          and e["direction"] == "received"]
assert resets, [e["event"] for e in events]
r = resets[0]
assert r["process"] and r["process"]["pid"] == pid, (r["process"], pid)
assert r["process"]["comm"] == "nc", r["process"]
print(f"tcp_reset from 127.0.0.1:{port} received by nc (pid {pid}) in a busybox root")
EOF
grep -q '^rstwatch_build_info{' "$root/tmp/metrics.txt" || fail "no /metrics from the static binary"
grep -q '"event":"report_summary"' "$root/tmp/report.ndjson" || fail "no report from the static binary"
echo "PASS (and /metrics, report)"
