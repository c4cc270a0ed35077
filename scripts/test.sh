#!/usr/bin/env bash
# README command 2: install everything the tests drive, build, run every test.
# Privileged tests (real BPF programs, real kernel traffic) run when this is
# root on a kernel with BTF, and skip with a printed reason otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
export BUILD_DIR=${BUILD_DIR:-build}
scripts/build.sh -DRW_BUILD_TESTS=ON
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 300 "$@"
