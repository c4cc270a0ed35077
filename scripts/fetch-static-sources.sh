#!/usr/bin/env bash
# Fetches the Debian source packages of simdjson and cpp-httplib for the static
# build (RW_STATIC). Debian ships both only as shared libraries, so without them
# the static binary would have neither `rstwatch report` nor /metrics. The exact
# versions installed here (libsimdjson-dev, libcpp-httplib-dev) are fetched, so
# the static and the dynamic build compile the same code.
#
# The machine's apt configuration is never touched: apt-get runs against a
# private directory (its own sources list with deb-src lines, its own lists and
# cache), signed by the Debian archive keyring already on the machine.
#
#   scripts/fetch-static-sources.sh [DEST]   # default: build-static-src
# Prints nothing on success but the DEST path; DEST/simdjson and DEST/cpp-httplib
# are the unpacked sources (CMake: -DRW_STATIC_SOURCES=DEST).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$(realpath -m "${1:-build-static-src}")

if [ -f "$dest/simdjson/singleheader/simdjson.cpp" ] && [ -f "$dest/cpp-httplib/httplib.h" ]; then
    echo "$dest"
    exit 0
fi

need() {
    command -v "$1" >/dev/null || {
        echo "fetch-static-sources: $1 not found; run scripts/install-deps.sh build" >&2
        exit 3
    }
}
need apt-get
need dpkg-source

installed_version() {
    dpkg-query -W -f='${Version}' "$1" 2>/dev/null || {
        echo "fetch-static-sources: $1 is not installed; run scripts/install-deps.sh build" >&2
        exit 3
    }
}
simdjson_v=$(installed_version libsimdjson-dev)
httplib_v=$(installed_version libcpp-httplib-dev)

# shellcheck source=/dev/null
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
apt_dir=$(mktemp -d /tmp/rw-apt.XXXXXX)
trap 'rm -rf "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/etc"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt_dir/etc/sources.list" <<EOF
deb-src [signed-by=$keyring] http://deb.debian.org/debian $codename main
deb-src [signed-by=$keyring] http://deb.debian.org/debian $codename-updates main
deb-src [signed-by=$keyring] http://deb.debian.org/debian-security $codename-security main
EOF
apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/etc/none"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::State::status=/var/lib/dpkg/status"
    -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -qq update >&2
mkdir -p "$dest"
work=$(mktemp -d "$dest/.fetch.XXXXXX")
(cd "$work" && apt-get "${apt_opts[@]}" -qq source --download-only \
    "simdjson=$simdjson_v" "cpp-httplib=$httplib_v" >&2)
# apt-get already checked every file against the hashes of the signed Sources
# index; the uploader's own .dsc signature would need debian-keyring.
for dsc in "$work"/*.dsc; do
    name=$(basename "$dsc" | cut -d_ -f1)
    rm -rf "${dest:?}/$name"
    dpkg-source --no-check -x "$dsc" "$dest/$name" >&2
done
rm -rf "$work"

[ -f "$dest/simdjson/singleheader/simdjson.cpp" ] || {
    echo "fetch-static-sources: simdjson source has no singleheader/simdjson.cpp" >&2
    exit 1
}
[ -f "$dest/cpp-httplib/httplib.h" ] || {
    echo "fetch-static-sources: cpp-httplib source has no httplib.h" >&2
    exit 1
}
echo "$dest"
