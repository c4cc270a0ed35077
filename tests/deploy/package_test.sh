#!/usr/bin/env bash
# ctest package.deb_installs_runs_and_purges (label package): checks the
# release artefacts scripts/package.sh wrote (ctest package.build), then
# installs the .deb on this machine, runs the installed agent, removes and
# purges it, and checks that nothing is left but what Debian policy keeps (the
# system user). The machine is left as it was, on failure too: the package is
# purged and a user this test created is deleted. Needs root; exits 77 (skip)
# otherwise.
#
#   tests/deploy/package_test.sh SOURCE_DIR DIST_DIR
set -euo pipefail
src=$(realpath "$1")
dist=$(realpath "$2")

skip() {
    echo "SKIP: $*"
    exit 77
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || skip "installing a .deb needs root"
[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF: the installed agent cannot trace here"
for t in dpkg dpkg-deb lintian help2man adduser python3; do
    command -v "$t" >/dev/null || fail "$t not found: scripts/install-deps.sh test installs it"
done
if dpkg-query -W -f='${Status}' rstwatch 2>/dev/null | grep -qv "not-installed"; then
    skip "a rstwatch package is already installed here; this test will not replace it"
fi

user_existed=0
getent passwd rstwatch >/dev/null && user_existed=1
tmp=$(mktemp -d /tmp/rw-pkgtest.XXXXXX)
cleanup() {
    dpkg --purge rstwatch >/dev/null 2>&1 || true
    if [ "$user_existed" = 0 ] && getent passwd rstwatch >/dev/null; then
        userdel rstwatch 2>/dev/null || true
        getent group rstwatch >/dev/null && groupdel rstwatch 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

version=$(sed -n 's/^project(rstwatch VERSION \([0-9][0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
deb=$dist/rstwatch_${version}_amd64.deb
tarball=$dist/rstwatch-$version-x86_64-linux-static.tar.gz
[ -f "$deb" ] || fail "no $deb (ctest package.build runs scripts/package.sh)"
[ -f "$tarball" ] || fail "no $tarball"
echo "built $deb and $tarball"

# ---- the tarball: its files, both checksums, a static binary that runs ----
(cd "$(dirname "$tarball")" && sha256sum -c --quiet "$(basename "$tarball").sha256") ||
    fail "tarball checksum"
tar -C "$tmp" -xzf "$tarball"
t="$tmp/rstwatch-$version-x86_64-linux-static"
for f in rstwatch rstwatch.sha256 README.md LICENSE LICENSES/BSD-2-Clause.txt LICENSES/LGPL-2.1.txt \
    examples/systemd/rstwatch.service examples/rstwatch.conf examples/logrotate/rstwatch \
    docs/rstwatch.8; do
    [ -f "$t/$f" ] || fail "tarball lacks $f"
done
(cd "$t" && sha256sum -c --quiet rstwatch.sha256) || fail "binary checksum"
readelf -l "$t/rstwatch" | grep -q "program interpreter" && fail "tarball binary is dynamic"
[ "$("$t/rstwatch" --version)" = "rstwatch $version" ] || fail "tarball --version"
"$t/rstwatch" report --help >/dev/null || fail "the static binary has no report"

# ---- lintian: no errors (package.sh already fails on them; this shows the tags) ----
lintian --fail-on error "$deb" || fail "lintian errors"

# ---- install ----
dpkg -i "$deb"
[ "$(/usr/sbin/rstwatch --version)" = "rstwatch $version" ] || fail "installed --version"
conffiles=$(dpkg-query -W -f='${Conffiles}' rstwatch)
for f in /etc/rstwatch/rstwatch.conf /etc/logrotate.d/rstwatch; do
    grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile: $conffiles"
done
pw=$(getent passwd rstwatch) || fail "postinst created no rstwatch user"
uid=$(cut -d: -f3 <<<"$pw")
[ "$uid" -lt 1000 ] || fail "rstwatch is not a system user: $pw"
case "$(cut -d: -f7 <<<"$pw")" in */nologin | */false) ;; *) fail "rstwatch has a login shell: $pw" ;; esac
unit=/lib/systemd/system/rstwatch.service
grep -qx "ExecStart=/usr/sbin/rstwatch trace --config /etc/rstwatch/rstwatch.conf" "$unit" ||
    fail "unit ExecStart: $(grep ExecStart "$unit")"
wants=/etc/systemd/system/multi-user.target.wants/rstwatch.service
[ "$(readlink "$wants")" = "$unit" ] || fail "the unit is not enabled ($wants)"
# Enabled, not started: no process runs the installed binary.
for exe in /proc/[0-9]*/exe; do
    [ "$(readlink "$exe" 2>/dev/null)" != /usr/sbin/rstwatch ] || fail "the agent was started: $exe"
done
zcat /usr/share/man/man8/rstwatch.8.gz | grep -q '^\.TH RSTWATCH "8"' || fail "no rstwatch(8)"
[ -f /usr/share/doc/rstwatch/copyright ] || fail "no copyright file"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
fi

# ---- the installed agent works ----
/usr/sbin/rstwatch trace --config /etc/rstwatch/rstwatch.conf --check-config ||
    fail "the shipped config does not pass --check-config"
/usr/sbin/rstwatch doctor >"$tmp/doctor.txt" || true
grep -q . "$tmp/doctor.txt" || fail "doctor printed nothing"
doctor_rc=0
/usr/sbin/rstwatch doctor --format json >"$tmp/doctor.ndjson" || doctor_rc=$?
[ "$doctor_rc" -le 1 ] || fail "doctor exited $doctor_rc"
/usr/sbin/rstwatch trace --duration 1s >"$tmp/trace.ndjson" || fail "trace --duration 1s failed"
python3 - "$tmp/doctor.ndjson" "$tmp/trace.ndjson" "$version" <<'EOF'
import json, sys
checks = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert checks and all(c["event"] == "doctor_check" for c in checks), checks[:2]
events = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert events and events[0]["event"] == "session_start", events[:1]
assert events[0]["version"] == sys.argv[3], events[0]
print(f"doctor: {len(checks)} checks; trace: {len(events)} events, session_start first")
EOF

# A log the agent would have written, for purge to remove.
[ "$(stat -c %U:%a /var/log/rstwatch)" = rstwatch:750 ] || fail "postinst made no /var/log/rstwatch"
echo '{}' >/var/log/rstwatch/events.ndjson

# ---- remove: conffiles stay; purge: everything goes but the user ----
dpkg -r rstwatch
[ ! -e /usr/sbin/rstwatch ] || fail "remove left /usr/sbin/rstwatch"
[ -f /etc/rstwatch/rstwatch.conf ] || fail "remove deleted the conffile (only purge may)"
dpkg --purge rstwatch
dpkg-query -W -f='${Status}' rstwatch 2>/dev/null | grep -q "install ok" && fail "still installed"
left=()
for p in /usr/sbin/rstwatch /etc/rstwatch /etc/logrotate.d/rstwatch "$unit" "$wants" \
    /var/log/rstwatch /usr/share/doc/rstwatch /usr/share/man/man8/rstwatch.8.gz \
    /usr/share/lintian/overrides/rstwatch /var/lib/dpkg/info/rstwatch.list; do
    [ -e "$p" ] || [ -L "$p" ] && left+=("$p")
done
for p in /var/lib/systemd/deb-systemd-helper-enabled/rstwatch.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-masked/rstwatch.service; do
    [ -e "$p" ] && left+=("$p")
done
((${#left[@]} == 0)) || fail "purge left: ${left[*]}"
# Debian keeps system users on purge (their files may outlive the package).
getent passwd rstwatch >/dev/null || fail "purge removed the rstwatch user (policy keeps it)"
echo "PASS: installed, ran doctor and trace, removed and purged cleanly"
