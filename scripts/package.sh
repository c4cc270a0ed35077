#!/usr/bin/env bash
# Builds the two release artefacts from this checkout (docs/packaging.md):
#   dist/rstwatch_<version>_amd64.deb                 Debian package (lintian-checked)
#   dist/rstwatch-<version>-x86_64-linux-static.tar.gz one static binary + unit, config, docs
#   dist/rstwatch-<version>-x86_64-linux-static.tar.gz.sha256
# Both carry the same static binary (RW_STATIC, with simdjson and cpp-httplib
# compiled from their Debian sources, so `report` and /metrics are in it).
#
#   scripts/package.sh            # build into build-static/, write dist/
#   OUT_DIR=/tmp/x scripts/package.sh
#   RW_LINTIAN=0 scripts/package.sh   # skip the lintian run
#
# The version has one source: project(rstwatch VERSION ...) in CMakeLists.txt,
# which `rstwatch --version` prints too. Timestamps come from the last commit
# (SOURCE_DATE_EPOCH) and build paths are mapped away, so two runs on the same
# commit give the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build_dir=$(realpath -m "${BUILD_DIR:-build-static}")
out_dir=$(realpath -m "${OUT_DIR:-dist}")
arch=amd64

die() {
    echo "package.sh: $*" >&2
    exit 1
}
for tool in dpkg-deb help2man gzip tar sha256sum strip readelf; do
    command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-deps.sh test"
done

version=$(sed -n 's/^project(rstwatch VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)
[ -n "$version" ] || die "no project(rstwatch VERSION x.y.z) in CMakeLists.txt"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# ---- the static binary ----
static_src=$(scripts/fetch-static-sources.sh "$build_dir-src")
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DRW_STATIC=ON -DRW_BUILD_TESTS=OFF \
    -DRW_BUILD_BENCH=OFF -DRW_STATIC_SOURCES="$static_src" \
    "-DCMAKE_CXX_FLAGS=-ffile-prefix-map=$src=. -ffile-prefix-map=$static_src=." \
    "-DCMAKE_C_FLAGS=-ffile-prefix-map=$src=." >/dev/null
cmake --build "$build_dir" -j"${JOBS:-2}" --target rstwatch
bin="$build_dir/rstwatch"
readelf -l "$bin" | grep -q "program interpreter" && die "$bin is not statically linked"
got=$("$bin" --version)
[ "$got" = "rstwatch $version" ] || die "$bin --version says '$got', CMakeLists.txt says $version"
"$bin" report --help >/dev/null || die "$bin has no \`report\` (RW_STATIC_SOURCES)"

stage=$(mktemp -d /tmp/rw-package.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out_dir"

install -m 0755 "$bin" "$stage/rstwatch"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/rstwatch"

# The unit in deploy/ points at the from-source install path (/usr/local/sbin).
unit_for() { sed "s|/usr/local/sbin/rstwatch|$1|g" deploy/systemd/rstwatch.service; }

# ---- man page: rstwatch(8) from --help (help2man, with the subcommands' help) ----
man_include="$stage/man.h2m"
{
    echo "[DESCRIPTION]"
    echo "rstwatch explains TCP resets and idle-connection deaths: eBPF programs attribute every"
    echo "reset and timeout to a process, and \\fBrstwatch report\\fR turns the events into verdicts"
    echo "and remedies."
    echo
    for cmd in trace report audit enforce doctor; do
        echo "[>COMMANDS]"
        echo ".SS \"rstwatch $cmd\""
        echo ".nf"
        # \ and leading dots are roff syntax; the help text is plain.
        "$stage/rstwatch" "$cmd" --help | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./'
        echo ".fi"
    done
    cat <<'EOF'
[FILES]
.TP
.I /etc/rstwatch/rstwatch.conf
settings of the host agent (rstwatch.service), keys are the long flags of \fBrstwatch trace\fR
.TP
.I /var/log/rstwatch/events.ndjson
the agent's events (NDJSON), rotated by /etc/logrotate.d/rstwatch
[SEE ALSO]
/usr/share/doc/rstwatch/ (README, agent, deploy, events, report, enforce, security)
EOF
} >"$man_include"
mkdir -p "$stage/man"
help2man --section=8 --no-info --no-discard-stderr --version-string="$version" \
    --name="explain TCP resets and idle-connection deaths with eBPF" \
    --include="$man_include" --output="$stage/man/rstwatch.8" "$stage/rstwatch"

# ---- tarball ----
tar_name=rstwatch-$version-x86_64-linux-static
t="$stage/$tar_name"
mkdir -p "$t/examples/systemd" "$t/examples/logrotate" "$t/docs"
cp "$stage/rstwatch" "$t/rstwatch"
cp README.md LICENSE "$t/"
cp -r LICENSES "$t/"
cp "$stage/man/rstwatch.8" "$t/docs/rstwatch.8"
cp docs/*.md "$t/docs/"
unit_for /usr/local/sbin/rstwatch >"$t/examples/systemd/rstwatch.service"
cp deploy/rstwatch.conf "$t/examples/rstwatch.conf"
cp deploy/logrotate/rstwatch "$t/examples/logrotate/rstwatch"
(cd "$t" && sha256sum rstwatch >rstwatch.sha256)
find "$t" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
tarball="$out_dir/$tar_name.tar.gz"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --mode=u+rw,go+r,go-w -C "$stage" -cf - "$tar_name" | gzip -9n >"$tarball"
(cd "$out_dir" && sha256sum "$tar_name.tar.gz" >"$tar_name.tar.gz.sha256")

# ---- Debian package ----
r="$stage/deb"
doc="$r/usr/share/doc/rstwatch"
install -D -m 0755 "$stage/rstwatch" "$r/usr/sbin/rstwatch"
install -d "$r/lib/systemd/system"
unit_for /usr/sbin/rstwatch >"$r/lib/systemd/system/rstwatch.service"
chmod 0644 "$r/lib/systemd/system/rstwatch.service"
install -D -m 0644 deploy/rstwatch.conf "$r/etc/rstwatch/rstwatch.conf"
install -D -m 0644 deploy/logrotate/rstwatch "$r/etc/logrotate.d/rstwatch"
install -D -m 0644 "$stage/man/rstwatch.8" "$r/usr/share/man/man8/rstwatch.8"
gzip -9n "$r/usr/share/man/man8/rstwatch.8"
install -d "$doc"
install -m 0644 deploy/debian/copyright "$doc/copyright"
install -m 0644 README.md "$doc/README.md"
install -m 0644 docs/*.md "$doc/"
install -m 0644 deploy/debian/changelog "$doc/changelog"
gzip -9n "$doc/changelog" "$doc"/*.md
install -D -m 0644 deploy/debian/lintian-overrides "$r/usr/share/lintian/overrides/rstwatch"

install -d "$r/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "deploy/debian/$s" "$r/DEBIAN/$s"; done
install -m 0644 deploy/debian/conffiles "$r/DEBIAN/conffiles"
# Built-Using (Policy 7.8): the Debian sources statically linked into the binary.
built_using=$(
    for p in simdjson:libsimdjson-dev cpp-httplib:libcpp-httplib-dev libbpf:libbpf-dev \
        elfutils:libelf-dev zlib:zlib1g-dev libzstd:libzstd-dev glibc:libc6-dev \
        gcc-12:libstdc++-12-dev; do
        printf '%s (= %s), ' "${p%%:*}" "$(dpkg-query -W -f='${source:Version}' "${p#*:}")"
    done | sed 's/, $//'
)
installed_kb=$(du -sk --exclude=DEBIAN "$r" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@BUILT_USING@/$built_using/" \
    -e "s/@INSTALLED_SIZE@/$installed_kb/" deploy/debian/control.in >"$r/DEBIAN/control"
(cd "$r" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$r/DEBIAN/md5sums"
find "$r" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$out_dir/rstwatch_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$r" "$deb" >/dev/null

if [ "${RW_LINTIAN:-1}" != 0 ] && command -v lintian >/dev/null; then
    # Errors fail the build; warnings are listed in docs/packaging.md with the reason.
    lintian --fail-on error --display-info "$deb" >&2 || die "lintian found errors in $deb"
fi
echo "$deb"
echo "$tarball"
