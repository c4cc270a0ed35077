#!/usr/bin/env bash
# README's lab command on a build that has no traffic helper (as after the
# README's first command, scripts/run.sh, which builds without tests):
# `scripts/lab.sh demo` must build rw_peer itself and run the incident.
#   lab_fresh_build_test.sh SOURCE_DIR RSTWATCH_BIN
# Exit 77 (skipped) with the reason when not root or the lab tools are missing.
set -euo pipefail
src=$1 rstwatch=$2
if [[ $(id -u) -ne 0 ]]; then
    echo "skipped: the lab creates network namespaces (run as root)"
    exit 77
fi
for t in ip nft c++; do
    command -v "$t" >/dev/null || { echo "skipped: '$t' missing (scripts/install-deps.sh test)"; exit 77; }
done
work=$(mktemp -d /tmp/rw-labfresh.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A build directory with rstwatch but no helper: exactly what run.sh leaves
# (the demo is pointed at the already built rstwatch to save a full build).
mkdir -p "$work/build"
cp "$rstwatch" "$work/build/rstwatch"
out=$work/demo.out
rc=0
BUILD_DIR=$work/build timeout 170 "$src/scripts/lab.sh" --name "rwfresh$$" demo >"$out" 2>&1 || rc=$?
cat "$out"
fail() { echo "FAIL: $*"; exit 1; }
[[ $rc -eq 0 ]] || fail "lab.sh demo exited $rc"
grep -q "rw_peer not found" "$out" && fail "the demo still asks for rw_peer to be built by hand"
[[ -x $work/build/lab-helpers/rw_peer ]] || fail "the helper was not built into the build directory"
grep -q "building the lab's traffic helper" "$out" || fail "no note that the helper is being built"
grep -q "ECONNRESET" "$out" || fail "the incident (ECONNRESET) did not happen"
grep -q "keepalive_disabled" "$out" || fail "rstwatch did not diagnose keepalive_disabled"
grep -q "the write went through" "$out" || fail "the keepalive fix did not survive"
echo "PASS"
