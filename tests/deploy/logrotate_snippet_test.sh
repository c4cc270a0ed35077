#!/usr/bin/env bash
# deploy/logrotate/rstwatch parses, and rotates a file in create mode keeping
# its owner and mode 0640 (logrotate -f against a copy pointed at a temp dir;
# the postrotate command is replaced, there is no systemd here). The same
# snippet drives the rsyslog pipeline test (tests/integration/log_pipeline_test.cpp).
#   logrotate_snippet_test.sh SOURCE_DIR
set -euo pipefail
snippet=$1/deploy/logrotate/rstwatch
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/events.ndjson
sed -e "s|/var/log/rstwatch/events.ndjson|$out|" \
    -e "s|systemctl kill .*|touch $tmp/hup-sent|" "$snippet" >"$tmp/conf"
grep -q "create 0640" "$tmp/conf"
printf '{"v":1}\n' >"$out"
chown nobody:nogroup "$out" 2>/dev/null || true
owner=$(stat -c %U:%G "$out")
/usr/sbin/logrotate -s "$tmp/state" -f "$tmp/conf"
[ -f "$out.1" ] || { echo "FAIL: not rotated"; exit 1; }
[ -f "$out" ] || { echo "FAIL: create mode did not create $out"; exit 1; }
[ "$(stat -c %a "$out")" = 640 ] || { echo "FAIL: mode $(stat -c %a "$out")"; exit 1; }
[ "$(stat -c %U:%G "$out")" = "$owner" ] || { echo "FAIL: owner $(stat -c %U:%G "$out") != $owner"; exit 1; }
[ -f "$tmp/hup-sent" ] || { echo "FAIL: postrotate did not run"; exit 1; }
echo "ok: create mode keeps owner $owner and mode 0640, postrotate runs"
