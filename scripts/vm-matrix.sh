#!/usr/bin/env bash
# Kernel matrix: runs the real rstwatch (static build) on other Debian kernels
# under qemu (software emulation, no KVM needed) against scripted loopback
# traffic, and checks its events on the host with the expectations of the host
# integration tests (scripts/vm/check.py).
#
#   scripts/vm-matrix.sh [--kernels 5.10,6.1] [--keep] [--cache DIR] [--update-docs]
#                        [--timeout SECONDS] [--no-build] [--verbose] [--fetch-only]
#
# --fetch-only resolves and caches the kernels and stops (no build, no qemu):
# it warms the cache, e.g. while other work runs.
#
# Kernel packages come from Debian with `apt-get download`, resolved through
# meta-packages (never a pinned version), unpacked with `dpkg -x` and cached per
# version in ${XDG_CACHE_HOME:-/var/cache}/rstwatch-vm (~/.cache when not root). A suite other than the
# host's is read through a private apt configuration inside the cache, built
# from the host's own apt sources with the suite swapped; the system's apt
# configuration is never changed. Exit status: 0 all kernels passed, 1 a check
# failed, 2 usage, 3 environment (missing tool, download failed).
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- The matrix: one row per kernel. Adding a kernel is one line. ----
# name  Debian-suite  image  expectations (scripts/vm/check.py):
#   image: a meta-package that depends on the current image package, or `newest`:
#   the highest-versioned linux-image-<version>-cloud-amd64 of the suite (the
#   -unsigned twin when only that exists; -dbg never), for the rolling suite
#   whose newest image can be ahead of its meta-package.
#   reason=0|1      tcp_send_reset passes `enum sk_rst_reason` (6.10+) -> kernel_reason
#   closed_rst=0|1  tcp_send_reset fires for an RST answering a closed port (sk NULL)
#   caller=0|1      cgroup/setsockopt programs may call bpf_get_current_pid_tgid
#   enf_caller=0|1  sockops programs may call bpf_get_current_pid_tgid/_uid_gid/_comm
#   enf_existing=0|1  iter/tcp programs may call bpf_setsockopt (enforce --existing)
#   enf_seed=0|1    bpf_sock_from_file exists (enforce finds owners of earlier sockets)
#   left_out=-|object:program+...  programs `rstwatch verify` leaves out on this
#                   kernel (optional ones the verifier refuses); any other
#                   program must load
KERNELS=(
    "5.10 bullseye linux-image-cloud-amd64      reason=0 closed_rst=0 caller=0 enf_caller=0 enf_existing=0 enf_seed=0 left_out=enforce:rw_enf_clamp+enforce:rw_enf_seed+enforce:rw_enf_existing"
    "6.1  bookworm linux-image-cloud-amd64      reason=0 closed_rst=0 caller=1 enf_caller=0 enf_existing=1 enf_seed=1"
    "6.12 bookworm linux-image-6.12-cloud-amd64 reason=1 closed_rst=1 caller=1 enf_caller=0 enf_existing=1 enf_seed=1"
    "sid  unstable newest                      reason=1 closed_rst=1 caller=1 enf_caller=1 enf_existing=1 enf_seed=1"
)

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
}

want=""
keep=0
update_docs=0
build=1
fetch_only=0
verbose=0
vm_timeout=300
if [ "$(id -u)" -eq 0 ]; then
    cache=${XDG_CACHE_HOME:-/var/cache}/rstwatch-vm
else
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/rstwatch-vm
fi
build_dir=${VM_BUILD_DIR:-build-static}
while (($#)); do
    case "$1" in
    --kernels) want=${2:?--kernels needs a list, e.g. 6.1,6.12}; shift ;;
    --kernels=*) want=${1#*=} ;;
    --keep) keep=1 ;;
    --cache) cache=${2:?--cache needs a directory}; shift ;;
    --cache=*) cache=${1#*=} ;;
    --update-docs) update_docs=1 ;;
    --timeout) vm_timeout=${2:?--timeout needs seconds}; shift ;;
    --timeout=*) vm_timeout=${1#*=} ;;
    --no-build) build=0 ;;
    --fetch-only) fetch_only=1 ;;
    --verbose | -v) verbose=1 ;;
    -h | --help) usage ;;
    *) echo "vm-matrix: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $vm_timeout =~ ^[0-9]+$ ]] || { echo "vm-matrix: --timeout '$vm_timeout' is not a number of seconds" >&2; exit 2; }

rows=()
if [ -z "$want" ]; then
    rows=("${KERNELS[@]}")
else
    IFS=, read -ra names <<<"$want"
    for n in "${names[@]}"; do
        found=""
        for r in "${KERNELS[@]}"; do
            [ "${r%% *}" = "$n" ] && found=$r
        done
        if [ -z "$found" ]; then
            echo "vm-matrix: --kernels: no row named '$n' (known: $(printf '%s ' "${KERNELS[@]%% *}"))" >&2
            exit 2
        fi
        rows+=("$found")
    done
fi
if ((update_docs)) && ((${#rows[@]} != ${#KERNELS[@]})); then
    echo "vm-matrix: --update-docs documents the whole matrix: run it without --kernels" >&2
    exit 2
fi

die_env() {
    echo "vm-matrix: $*" >&2
    exit 3
}
log() { echo "vm-matrix: $*" >&2; }

# ---- Tools ----
# install-deps.sh is idempotent: on a prepared machine it only checks.
if [ "$(id -u)" -eq 0 ]; then
    scripts/install-deps.sh test
fi
for t in qemu-system-x86_64 cpio gzip dpkg apt-get apt-cache timeout strip readelf /usr/bin/python3; do
    command -v "$t" >/dev/null || die_env "'$t' is missing (scripts/install-deps.sh test installs it)"
done
busybox=/bin/busybox
is_static() { [ -x "$1" ] && readelf -h "$1" >/dev/null 2>&1 && ! readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; }
if ! is_static "$busybox"; then
    die_env "$busybox is not a static busybox (install busybox-static)"
fi

mkdir -p "$cache" || die_env "cannot create the cache directory $cache (use --cache DIR)"
cache=$(cd "$cache" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/rstwatch-vm.XXXXXX")
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    if ((keep)); then
        log "kept the work directory: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_all=$(date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
secs() { local d=$((($1 + 50) / 100)); printf '%d.%ds' $((d / 10)) $((d % 10)); }

# ---- apt: where each suite's packages come from ----
# shellcheck disable=SC1091
host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$host_suite" ] || die_env "cannot read VERSION_CODENAME from /etc/os-release"

# The host's apt sources (one-line *.list and deb822 *.sources) rewritten for
# another suite: every entry whose suite is the host's (bookworm,
# bookworm-updates, bookworm-security) becomes the same URI with the new suite.
# Entries of other repositories are dropped.
swapped_sources() {
    local to=$1 f files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && files+=("$f"); done
    for f in "${files[@]}"; do
        awk -v from="$host_suite" -v to="$to" '
            /^[ \t]*deb[ \t]/ {
                opts = ""; i = 2
                if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ }; opts = opts " " $i; i++ }
                uri = $i; suite = $(i + 1); comps = ""
                for (j = i + 2; j <= NF; j++) comps = comps " " $j
                if (suite == from || index(suite, from "-") == 1) {
                    sub("^" from, to, suite); print "deb" opts " " uri " " suite comps
                }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v from="$host_suite" -v to="$to" '
            function flush(   n, u, s, i, j, us, ss, sb) {
                if (types ~ /(^| )deb( |$)/ && enabled != "no") {
                    n = split(uris, us, " "); split(suites, ss, " ")
                    sb = signed != "" ? " [signed-by=" signed "]" : ""
                    for (i = 1; i <= n; i++) for (j in ss) {
                        s = ss[j]
                        if (s == from || index(s, from "-") == 1) {
                            sub("^" from, to, s); print "deb" sb " " us[i] " " s " " comps
                        }
                    }
                }
                types = uris = suites = comps = signed = enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                if (key == "types") types = val; else if (key == "uris") uris = val
                else if (key == "suites") suites = val; else if (key == "components") comps = val
                else if (key == "signed-by") signed = val; else if (key == "enabled") enabled = tolower(val)
            }
            END { flush() }' "$f"
    done
}

# Sets apt_opts to the options that select the configuration for a suite:
# nothing for the host's own suite, else -c with a private config confined to
# the cache.
declare -A apt_ready=()
apt_opts=()
apt_opts_for() {
    local suite=$1 d conf
    apt_opts=()
    if [ "$suite" = "$host_suite" ]; then
        return 0
    fi
    d=$cache/apt-$suite
    conf=$d/apt.conf
    if [ -z "${apt_ready[$suite]:-}" ]; then
        mkdir -p "$d/sources.list.d" "$d/preferences.d" "$d/state/lists/partial" "$d/cache/archives/partial"
        : >"$d/state/status"
        if [ "$suite" = unstable ] || [ "$suite" = sid ]; then
            # unstable has no -updates or -security suite: their 404s would fail the update.
            swapped_sources "$suite" | { grep -v -E " $suite-[a-z]+( |\$)" || true; } >"$d/sources.list.new"
        else
            swapped_sources "$suite" >"$d/sources.list.new"
        fi
        [ -s "$d/sources.list.new" ] ||
            die_env "no apt source of suite '$host_suite' on this system to derive '$suite' from"
        mv "$d/sources.list.new" "$d/sources.list"
        cat >"$conf" <<EOF
// Private apt configuration of scripts/vm-matrix.sh for $suite (generated).
Dir::Etc::sourcelist "$d/sources.list";
Dir::Etc::sourceparts "$d/sources.list.d";
Dir::Etc::preferences "$d/preferences";
Dir::Etc::preferencesparts "$d/preferences.d";
Dir::State "$d/state";
Dir::State::status "$d/state/status";
Dir::Cache "$d/cache";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
APT::Sandbox::User "root";
EOF
        # Index files are refreshed twice a day at most; a warm run needs no network.
        if [ -z "$(find "$d/state/lists" -maxdepth 1 -name '*_Packages*' -mmin -720 2>/dev/null | head -n1)" ]; then
            log "apt-get update for $suite (private lists in $d)"
            if ! apt-get -c "$conf" -qq update >"$d/update.log" 2>&1; then
                log "apt-get update for $suite failed:"
                sed 's/^/    /' "$d/update.log" >&2
            fi
        fi
        apt_ready[$suite]=1
    fi
    apt_opts=(-c "$conf")
}

# ---- Kernels: resolve, download, unpack, cache ----
# The candidate version of a package in the selected apt configuration.
candidate_version() {
    apt-cache "${apt_opts[@]}" show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n1
}

# The newest cloud image of the selected suite: the highest Version among
# linux-image-<version>-cloud-amd64 and its unsigned twins
# (linux-image-<version>-cloud-amd64-unsigned, or linux-binary-unsigned-<version>-cloud-amd64
# for split packages): the signed package wins a tie; unstable may carry the
# unsigned build before the signed one. -dbg packages carry no kernel and are
# never candidates.
newest_cloud_image() {
    local p v best="" best_v="" names
    names=$(apt-cache "${apt_opts[@]}" pkgnames linux-image- 2>/dev/null |
        grep -E '^(linux-image-[0-9][^ ]*-cloud-amd64(-unsigned)?|linux-binary-unsigned-[0-9][^ ]*-cloud-amd64)$') || return 0
    # One apt-cache call for all candidates (each call parses the whole index).
    # shellcheck disable=SC2086 # one package name per word
    while read -r p v; do
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best_v" ||
            { dpkg --compare-versions "$v" eq "$best_v" && [[ $best == *-unsigned* && $p != *-unsigned* ]]; }; then
            best=$p
            best_v=$v
        fi
    done < <(apt-cache "${apt_opts[@]}" show --no-all-versions $names 2>/dev/null |
        awk '/^Package: / { p = $2 } /^Version: / && p != "" { print p, $2; p = "" }')
    echo "$best"
}

# The kernel and its config in an unpacked package tree: boot/vmlinuz-REL and
# boot/config-REL, or usr/lib/modules/REL/{vmlinuz,config} (the split packages
# of newer kernels). Sets kf_vmlinuz, kf_config, kf_release; fails if absent.
kernel_files() {
    local x=$1 c
    for c in "$x"/boot/config-* "$x"/usr/lib/modules/*/config; do
        [ -f "$c" ] || continue
        if [[ $c == */boot/config-* ]]; then
            kf_release=${c##*/config-}
            kf_vmlinuz=$x/boot/vmlinuz-$kf_release
        else
            kf_release=$(basename "$(dirname "$c")")
            kf_vmlinuz=$(dirname "$c")/vmlinuz
        fi
        kf_config=$c
        [ -f "$kf_vmlinuz" ] && return 0
    done
    return 1
}

# Sets k_dir (cache dir with vmlinuz, config-RELEASE, info), k_pkg, k_ver, k_rel.
fetch_kernel() {
    local name=$1 suite=$2 meta=$3 rowdir tmp deb t0
    apt_opts_for "$suite"
    rowdir=$cache/kernels/$name
    mkdir -p "$rowdir"
    if [ "$meta" = newest ]; then
        k_pkg=$(newest_cloud_image)
    else
        k_pkg=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$meta" 2>/dev/null |
            sed -n 's/^Depends: //p' | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -n1) || true
    fi
    k_ver=""
    [ -n "$k_pkg" ] && k_ver=$(candidate_version "$k_pkg")
    if [ -z "$k_pkg" ] || [ -z "$k_ver" ]; then
        # Offline or the index is gone: the newest cached image of this row still works.
        k_dir=$(find "$rowdir" -mindepth 2 -maxdepth 2 -name info -printf '%T@ %h\n' 2>/dev/null | sort -rn | head -n1 | cut -d' ' -f2-)
        [ -n "$k_dir" ] || die_env "$name: cannot resolve ${meta/#newest/the newest cloud image} in $suite (apt-get update?) and nothing is cached"
        log "$name: cannot resolve ${meta/#newest/the newest cloud image} in $suite now; using the cached $(basename "$k_dir")"
    else
        k_dir=$rowdir/${k_pkg}_${k_ver//:/%3a}
    fi
    if [ ! -f "$k_dir/info" ]; then
        t0=$(date +%s%N)
        tmp=$work/dl-$name
        mkdir -p "$tmp"
        log "$name: downloading $k_pkg $k_ver ($suite)"
        if ! (cd "$tmp" && apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root -qq download "$k_pkg=$k_ver") >"$tmp/log" 2>&1; then
            # Stale host lists name a version the mirror no longer has: refresh
            # them once and resolve again.
            if ((${#apt_opts[@]} == 0)) && [ "$(id -u)" -eq 0 ] && [ -z "${host_lists_refreshed:-}" ]; then
                host_lists_refreshed=1
                log "$name: download failed; apt-get update and retry"
                apt-get -qq update >>"$tmp/log" 2>&1 || true
                rm -rf "$tmp"
                fetch_kernel "$@"
                return
            fi
            sed 's/^/    /' "$tmp/log" >&2
            die_env "$name: apt-get download $k_pkg=$k_ver failed"
        fi
        deb=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n1)
        dpkg -x "$deb" "$tmp/x"
        if ! kernel_files "$tmp/x"; then
            # Newer Debian kernels (unstable since 7.x) split the image: the
            # linux-image-* package is a stub depending on linux-binary-<rel>
            # (vmlinuz, signed) and linux-base-<rel> (config) under
            # /usr/lib/modules/<rel>/. Fetch those parts; the -unsigned binary
            # when the signed one is not (yet) in the suite.
            local part parts=()
            while read -r part; do
                if [[ $part == linux-binary-* && $part != linux-binary-unsigned-* ]] &&
                    [ -z "$(candidate_version "$part")" ]; then
                    part=linux-binary-unsigned-${part#linux-binary-}
                fi
                parts+=("$part")
            done < <(apt-cache "${apt_opts[@]}" show --no-all-versions "$k_pkg" 2>/dev/null | sed -n 's/^Depends: //p' |
                tr ',' '\n' | sed -n 's/^ *\(linux-\(binary\|base\)-[^ ]*\).*/\1/p')
            ((${#parts[@]})) || die_env "$name: $deb has no kernel and names no linux-binary-*/linux-base-* parts"
            log "$name: $k_pkg is split; downloading ${parts[*]}"
            rm -f "$deb"
            if ! (cd "$tmp" && apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root -qq download "${parts[@]}") >>"$tmp/log" 2>&1; then
                sed 's/^/    /' "$tmp/log" >&2
                die_env "$name: apt-get download ${parts[*]} failed"
            fi
            for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/x"; done
            kernel_files "$tmp/x" ||
                die_env "$name: neither $k_pkg nor ${parts[*]} have a vmlinuz and config (boot/ or usr/lib/modules/<release>/)"
        fi
        rm -rf "$k_dir.new"
        mkdir -p "$k_dir.new"
        cp "$kf_vmlinuz" "$k_dir.new/vmlinuz"
        cp "$kf_config" "$k_dir.new/config-$kf_release"
        printf 'package=%s\nversion=%s\nrelease=%s\nsuite=%s\n' "$k_pkg" "$k_ver" "$kf_release" "$suite" >"$k_dir.new/info"
        rm -rf "$k_dir" "$tmp"
        mv "$k_dir.new" "$k_dir"
        log "$name: cached in $k_dir ($(ms_since "$t0") ms)"
        # Older versions of this row are of no further use.
        find "$rowdir" -mindepth 1 -maxdepth 1 -type d ! -path "$k_dir" -exec rm -rf {} +
    fi
    k_pkg=$(sed -n 's/^package=//p' "$k_dir/info")
    k_ver=$(sed -n 's/^version=//p' "$k_dir/info")
    k_rel=$(sed -n 's/^release=//p' "$k_dir/info")
}

if ((fetch_only)); then
    for row in "${rows[@]}"; do
        read -r name suite meta _ <<<"$row"
        fetch_kernel "$name" "$suite" "$meta"
        log "$name: $k_pkg $k_ver ($k_rel) in $k_dir"
    done
    exit 0
fi

# ---- Static rstwatch + traffic helper, and the common initramfs ----
t_build=$(date +%s%N)
if ((build)); then
    log "building the static agent in $build_dir"
    if ! BUILD_DIR=$build_dir scripts/build.sh -DRW_STATIC=ON -DRW_BUILD_TESTS=OFF >"$work/build.log" 2>&1; then
        tail -n 40 "$work/build.log" >&2
        mkdir -p "$cache/failed"
        cp "$work/build.log" "$cache/failed/build.log"
        echo "vm-matrix: the static build failed (full log: $cache/failed/build.log)" >&2
        exit 1
    fi
fi
for b in rstwatch rw_peer rw_ka_probe; do
    is_static "$build_dir/$b" ||
        die_env "$build_dir/$b is missing or not static (run without --no-build)"
done
build_ms=$(ms_since "$t_build")
# The programs of each BPF object as built: `rstwatch verify` in every guest
# must report exactly these (scripts/vm/check.py --programs).
# The objects are the linked ones, each beside the skeleton generated from it
# (NAME.bpf.o and NAME.skel.h; cmake/BpfObject.cmake).
bpf_objects=()
while read -r skel; do
    [ -f "${skel%.skel.h}.bpf.o" ] && bpf_objects+=("${skel%.skel.h}.bpf.o")
done < <(find "$build_dir" -name '*.skel.h' | sort)
((${#bpf_objects[@]})) || die_env "no BPF objects (NAME.bpf.o beside NAME.skel.h) under $build_dir"
/usr/bin/python3 scripts/vm/check.py --list-programs "${bpf_objects[@]}" >"$work/programs.json" ||
    die_env "cannot list the programs of ${bpf_objects[*]}"
# The checker checks itself first (a second): a check that cannot fail would
# pass every kernel.
if ! /usr/bin/python3 scripts/vm/test_check.py "${bpf_objects[@]}" >"$work/test_check.log" 2>&1; then
    cat "$work/test_check.log" >&2
    echo "vm-matrix: the self-test of scripts/vm/check.py failed" >&2
    exit 1
fi

t_pack=$(date +%s%N)
root=$work/initramfs
mkdir -p "$root"/{bin,dev,proc,sys,tmp,boot,run}
cp "$busybox" "$root/bin/busybox"
strip --strip-debug -o "$root/bin/rstwatch" "$build_dir/rstwatch"
strip --strip-debug -o "$root/bin/rw_peer" "$build_dir/rw_peer"
strip --strip-debug -o "$root/bin/rw_ka_probe" "$build_dir/rw_ka_probe"
install -m 0755 scripts/vm/guest-init.sh "$root/init"
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$work/common.cpio.gz"
pack_ms=$(ms_since "$t_pack")

# ---- Run each kernel ----
results=()
failed=0
summary=()
for row in "${rows[@]}"; do
    read -r name suite meta expect <<<"$row"
    expect=$(echo "$expect" | tr -s ' ')
    t_k=$(date +%s%N)
    fetch_kernel "$name" "$suite" "$meta"
    fetch_ms=$(ms_since "$t_k")
    kw=$work/k-$name
    mkdir -p "$kw/root/boot"
    # libbpf resolves CONFIG_HZ (__kconfig) from /boot/config-$(uname -r).
    cp "$k_dir/config-$k_rel" "$kw/root/boot/"
    (cd "$kw/root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$kw/kconfig.cpio.gz"
    # Concatenated cpio archives: the kernel unpacks them in order.
    cat "$work/common.cpio.gz" "$kw/kconfig.cpio.gz" >"$kw/initrd.gz"
    hz=$(sed -n 's/^CONFIG_HZ=//p' "$k_dir/config-$k_rel")

    log "$name: booting $k_rel under qemu (tcg, limit ${vm_timeout}s)"
    t_vm=$(date +%s%N)
    set +e
    # --foreground: Ctrl-C reaches qemu instead of waiting for the time limit.
    timeout --foreground --kill-after=10 "$vm_timeout" qemu-system-x86_64 -accel tcg -cpu max -m 1024 \
        -nodefaults -display none -serial stdio -net none -no-reboot \
        -kernel "$k_dir/vmlinuz" -initrd "$kw/initrd.gz" \
        -append "console=ttyS0 panic=-1 rdinit=/init" </dev/null >"$kw/serial.log" 2>"$kw/qemu.err"
    qrc=$?
    set -e
    vm_ms=$(ms_since "$t_vm")
    total_ms=$(ms_since "$t_k")

    args=(--name "$name" --serial "$kw/serial.log" --expect "$expect hz=$hz release=$k_rel"
        --package "$k_pkg" --version "$k_ver" --suite "$suite" --qemu-rc "$qrc" --vm-ms "$vm_ms"
        --fetch-ms "$fetch_ms" --json "$kw/result.json" --programs "$work/programs.json")
    ((verbose)) && args+=(--verbose)
    set +e
    /usr/bin/python3 scripts/vm/check.py "${args[@]}"
    crc=$?
    set -e
    if ((crc != 0)); then
        failed=1
        if ((qrc == 124 || qrc == 137)); then log "$name: qemu did not finish within ${vm_timeout}s"; fi
        log "$name: FAILED; last lines of the serial console:"
        tail -n 30 "$kw/serial.log" | tr -d '\r' | sed 's/^/    /' >&2
        [ -s "$kw/qemu.err" ] && sed 's/^/    qemu: /' "$kw/qemu.err" | grep -v 'TCG doesn.t support' >&2
        # The work directory goes; the evidence stays (small).
        mkdir -p "$cache/failed"
        cp "$kw/serial.log" "$cache/failed/$name.serial.log"
        log "$name: full serial log: $cache/failed/$name.serial.log (--verbose lists every check)"
    else
        rm -f "$cache/failed/$name.serial.log"
    fi
    results+=("$kw/result.json")
    verdict=PASS
    ((crc == 0)) || verdict=FAIL
    summary+=("$(printf '%-6s %-30s %-20s %7s %7s %7s  %s' "$name" "$k_rel" "$k_ver" \
        "$(secs "$fetch_ms")" "$(secs "$vm_ms")" "$(secs "$total_ms")" "$verdict")")
done

echo
echo "Kernel matrix ($(date -u +%Y-%m-%dT%H:%MZ)); static build $(secs "$build_ms"), initramfs $(secs "$pack_ms")"
printf '%-6s %-30s %-20s %7s %7s %7s  %s\n' kernel release "package version" "fetch" "vm" "total" result
for s in "${summary[@]}"; do echo "$s"; done
echo "matrix total: $(secs "$(ms_since "$t_all")") (fetch = resolve, + download and unpack when not cached;" \
    "vm = boot + scenario + power-off under qemu)"

if ((update_docs)); then
    if ((failed)); then
        log "not updating the docs: the matrix failed"
    else
        /usr/bin/python3 scripts/vm/check.py --docs docs/kernels.md --readme README.md "${results[@]}"
        log "wrote docs/kernels.md and the Supported kernels block of README.md"
    fi
fi
exit "$failed"
