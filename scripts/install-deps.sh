#!/usr/bin/env bash
# Installs the Debian packages rstwatch needs. Idempotent: runs `apt-get update` and
# `apt-get install` only when something is missing, so a warm machine pays nothing.
#
#   scripts/install-deps.sh build   # compile and run the agent
#   scripts/install-deps.sh test    # build + everything the test suite drives for real
set -euo pipefail

mode=${1:-build}

build_pkgs=(
    build-essential cmake pkg-config
    clang llvm                       # BPF compiler (clang -target bpf) and llvm-strip
    bpftool                          # vmlinux.h and skeleton generation
    libbpf-dev libelf-dev zlib1g-dev libzstd-dev
    nlohmann-json3-dev libcli11-dev
    libsimdjson-dev                  # `rstwatch report` streaming parser
    libcpp-httplib-dev               # Prometheus /metrics endpoint
)

test_pkgs=(
    libgtest-dev libgmock-dev libbenchmark-dev
    python3 python3-jsonschema python3-yaml
    iproute2 nftables conntrack      # the middlebox lab
    libcap2-bin                      # capsh, for least-privilege tests
    libclang-rt-dev                  # libFuzzer + clang sanitizer runtimes (scripts/fuzz.sh)
    procps util-linux                # ps, nsenter, unshare, prlimit
    prometheus                       # promtool + a real scrape in the metrics test
    rsyslog logrotate                # a real log pipeline for the file sink
    systemd                          # systemd-analyze verify for the unit file
    bpftrace libbpf-tools            # peers, used by the bench smoke test
    gzip
    postgresql openssh-server openssh-client golang-go  # real clients through the lab firewall
    qemu-system-x86 busybox-static cpio  # the kernel matrix (scripts/vm-matrix.sh)
    dpkg-dev lintian help2man adduser    # scripts/package.sh and the package tests
)

case "$mode" in
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
*)
    echo "usage: $0 build|test" >&2
    exit 2
    ;;
esac

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]}; run as root (sudo $0 $mode)" >&2
        exit 3
    fi
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Services that packages start on install (prometheus, rsyslog) are not wanted here:
    # the tests start their own instances with their own configs.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
