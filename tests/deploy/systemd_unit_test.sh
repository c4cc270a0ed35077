#!/usr/bin/env bash
# deploy/systemd/rstwatch.service: `systemd-analyze verify` accepts it without a
# single warning (with ExecStart pointed at the binary just built, since verify
# checks that it exists and is executable), the verifier really does catch the
# mistakes this test exists for, and `systemd-analyze security` keeps the
# exposure at or below what docs/deploy.md documents.
#   systemd_unit_test.sh SOURCE_DIR RSTWATCH_BINARY
set -euo pipefail
src=$1
bin=$2
unit=$src/deploy/systemd/rstwatch.service
max_exposure=1.8 # docs/deploy.md

command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (apt-get install systemd)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# verify: any output is a finding (unknown keys, bad capability names, ...).
check() { # NAME FILE -> prints verify's output, returns verify's status
    local out rc=0
    out=$(systemd-analyze verify "$2" 2>&1) || rc=$?
    [ -z "$out" ] || echo "$out"
    [ $rc -eq 0 ] && [ -z "$out" ]
}

sed "s|^ExecStart=/usr/local/sbin/rstwatch|ExecStart=$bin|" "$unit" >"$tmp/rstwatch.service"
grep -q "^ExecStart=$bin trace --config /etc/rstwatch/rstwatch.conf$" "$tmp/rstwatch.service"
check unit "$tmp/rstwatch.service" || { echo "FAIL: systemd-analyze verify complains about $unit"; exit 1; }
echo "ok: systemd-analyze verify is silent"

# The verifier catches a broken copy: a misspelt hardening key (systemd would
# ignore it and run unprotected), a missing binary. (It does not check
# capability names: the exact set is compared below.)
mkdir -p "$tmp/typo" "$tmp/missing"
sed 's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "$tmp/rstwatch.service" >"$tmp/typo/rstwatch.service"
if check typo "$tmp/typo/rstwatch.service" >/dev/null; then echo "FAIL: verify missed a misspelt key"; exit 1; fi
sed "s|^ExecStart=$bin|ExecStart=$tmp/no-such-rstwatch|" "$tmp/rstwatch.service" >"$tmp/missing/rstwatch.service"
if check missing "$tmp/missing/rstwatch.service" >/dev/null; then echo "FAIL: verify missed a missing binary"; exit 1; fi
echo "ok: verify rejects a misspelt key and a missing binary"

# The privileges are exactly the documented set.
for key in CapabilityBoundingSet AmbientCapabilities; do
    have=$(sed -n "s/^$key=//p" "$unit")
    [ "$have" = "CAP_BPF CAP_PERFMON CAP_NET_ADMIN" ] || { echo "FAIL: $key=$have"; exit 1; }
done
for want in NoNewPrivileges=yes ProtectSystem=strict LogsDirectory=rstwatch Restart=on-failure \
    MemoryMax= CPUQuota= User=rstwatch; do
    grep -q "^$want" "$unit" || { echo "FAIL: $unit lacks $want"; exit 1; }
done
echo "ok: capabilities and hardening keys as documented"

# Exposure score (lower is better): fail if it regresses past the documented one.
out=$(systemd-analyze security --offline=true "$tmp/rstwatch.service" 2>&1)
score=$(sed -n 's/.*Overall exposure level for rstwatch.service: \([0-9.]*\).*/\1/p' <<<"$out")
[ -n "$score" ] || { echo "$out"; echo "FAIL: no exposure score"; exit 1; }
awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }' || {
    grep "✗" <<<"$out"
    echo "FAIL: exposure $score > documented $max_exposure"
    exit 1
}
echo "ok: systemd-analyze security exposure $score (documented: $max_exposure)"

# The config the unit reads (deploy/rstwatch.conf) is valid for this rstwatch.
mkdir -p "$tmp/log"
sed "s|/var/log/rstwatch/|$tmp/log/|" "$src/deploy/rstwatch.conf" >"$tmp/rstwatch.conf"
chmod 0644 "$tmp/rstwatch.conf"
grep -q "^ExecStart=.* --config /etc/rstwatch/rstwatch.conf$" "$unit"
"$bin" trace --config "$tmp/rstwatch.conf" --check-config
echo "ok: deploy/rstwatch.conf passes --check-config"
