#!/usr/bin/env bash
# README command 1: install what the build needs, build, and trace live.
#   sudo scripts/run.sh                 # rstwatch trace: NDJSON on stdout, Ctrl-C to stop
#   sudo scripts/run.sh --format text   # any `rstwatch trace` flags
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
BUILD_DIR=${BUILD_DIR:-build} scripts/build.sh -DRW_BUILD_TESTS=OFF >&2
exec "${BUILD_DIR:-build}/rstwatch" trace "$@"
