#!/usr/bin/env bash
# Builds rstwatch and the bench programs, then runs every benchmark section in
# one invocation, interleaved, and prints the tables of docs/PERFORMANCE.md.
#
#   sudo bench/run.sh --reps 4              # everything: about 11 min on 2 cores (docs/PERFORMANCE.md)
#   sudo bench/run.sh --sections storm --reps 3
#   sudo bench/run.sh --smoke               # each section once, a few hundred events
#
# Arguments go to bench/run.py (--help lists them). BUILD_DIR picks the build
# directory (default build). Raw results: BUILD_DIR/bench-results/TIMESTAMP/.
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD_DIR=${BUILD_DIR:-build}
scripts/install-deps.sh test
scripts/build.sh -DRW_BUILD_BENCH=ON >&2
exec /usr/bin/python3 bench/run.py --build-dir "$BUILD_DIR" "$@"
